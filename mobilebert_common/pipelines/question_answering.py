"""question-answering: find the span of the context that answers the question.

Each input becomes one or more rows ``[CLS] question [SEP] context window [SEP]``: a context longer
than max_seq_len is cut into windows that overlap by doc_stride tokens. Per window, start and end
logits are turned into probabilities over the context tokens (plus [CLS], whose start*end product
is the "no answer" score), a span (i, j) scores p_start[i] * p_end[j] with i <= j < i + max_answer_len,
and the best spans over all windows are mapped back to characters of the context (equal answer
texts merged: see QuestionAnswering.postprocess).
"""

from __future__ import annotations

import warnings

import numpy as np

from mobilebert_common.pipelines.encode import build_feature, check_text, encode_text
from mobilebert_common.pipelines.task import Task, is_stream, positive_int

_HOW = 'pass question=..., context=..., or {"question": ..., "context": ...} (or a list of such dicts)'


def check_example(item) -> dict:
    if not isinstance(item, dict):
        raise ValueError(f"question-answering takes dicts with a question and a context; got {type(item).__name__}. {_HOW}")
    if "context" not in item or item["context"] is None:
        raise ValueError(f"question-answering input has no context (keys: {sorted(item)}); {_HOW}")
    if "question" not in item or item["question"] is None:
        raise ValueError(f"question-answering input has no question (keys: {sorted(item)}); {_HOW}")
    check_text(item["question"], "question")
    check_text(item["context"], "context")
    return item


class QuestionAnswering(Task):
    name = "question-answering"
    head = "question_answering"
    input_kwargs = ("question", "context")
    defaults = {
        "top_k": 1,
        "doc_stride": None,  # None: min(max_seq_len // 2, 128), shrunk to fit a long question
        "max_answer_len": 15,  # tokens
        "max_seq_len": None,  # None: min(384, the model's maximum)
        "max_question_len": 64,  # tokens; a longer question is cut, with a warning
        "handle_impossible_answer": False,  # also offer the empty answer, scored by [CLS]
        "align_to_words": True,  # widen an answer to whole words
    }

    def check_param(self, pipe, name, value):
        if name in ("top_k", "max_answer_len", "max_question_len"):
            return positive_int(name, value)
        if name == "max_seq_len" and value is not None:
            value = positive_int(name, value)
            if value > pipe.max_length:
                raise ValueError(f"max_seq_len {value} exceeds this model's maximum of {pipe.max_length} tokens")
            return value
        if name == "doc_stride" and value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"doc_stride must be a non-negative integer, got {value!r}")
            return value
        if name in ("handle_impossible_answer", "align_to_words") and not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")
        return value

    def collect(self, inputs, args, input_kwargs):
        question, context = input_kwargs.get("question"), input_kwargs.get("context")
        if inputs is not None and args:  # pipe("question?", "context")
            if len(args) > 1 or question is not None or context is not None:
                raise ValueError(f"question-answering takes (question, context) or keywords; {_HOW}")
            question, context, inputs = inputs, args[0], None
        elif args:
            raise ValueError(f"question-answering got unexpected positional arguments; {_HOW}")
        if inputs is not None:
            if question is not None or context is not None:
                raise ValueError(f"pass the input either positionally or as question=/context=, not both; {_HOW}")
            if isinstance(inputs, dict):
                return [check_example(inputs)], "single"
            if isinstance(inputs, (list, tuple)):
                if not inputs:
                    raise ValueError("question-answering got an empty list of inputs")
                return [check_example(x) for x in inputs], "list"
            if is_stream(inputs):
                return (check_example(x) for x in inputs), "iter"
            if isinstance(inputs, str):
                raise ValueError(f"question-answering input has no context (got only the string {inputs!r:.60}); {_HOW}")
            raise ValueError(f"question-answering cannot read a {type(inputs).__name__}; {_HOW}")
        if question is None and context is None:
            raise ValueError(f"question-answering needs an input; {_HOW}")
        if context is None:
            raise ValueError(f"question-answering input has no context; {_HOW}")
        if question is None:
            raise ValueError(f"question-answering input has no question; {_HOW}")
        if isinstance(question, str) and isinstance(context, str):
            return [check_example({"question": question, "context": context})], "single"
        questions = [question] if isinstance(question, str) else list(question)
        contexts = [context] if isinstance(context, str) else list(context)
        if len(questions) != len(contexts) and 1 not in (len(questions), len(contexts)):
            raise ValueError(f"got {len(questions)} questions and {len(contexts)} contexts; pass as many of each, or one of either")
        n = max(len(questions), len(contexts))
        questions, contexts = questions * (n // len(questions)), contexts * (n // len(contexts))
        return [check_example({"question": q, "context": c}) for q, c in zip(questions, contexts)], "list"

    def preprocess(self, pipe, item, params):
        tok = pipe.tokenizer
        question = encode_text(tok, item["question"], "question")
        context = encode_text(tok, item["context"], "context")
        if context.offsets is None:
            raise ValueError("question-answering needs a tokenizer that gives character offsets (MobileBertTokenizerFast)")
        if len(question) > params["max_question_len"]:
            warnings.warn(
                f"question has {len(question)} tokens; cut to max_question_len={params['max_question_len']}",
                UserWarning,
                stacklevel=5,
            )
            question = question.slice(0, params["max_question_len"])
        max_seq_len = params["max_seq_len"] or min(384, pipe.max_length)
        room = max_seq_len - len(question) - 3  # context tokens per window, after [CLS] q [SEP] ... [SEP]
        if room < 1:
            raise ValueError(
                f"the question takes {len(question)} tokens, leaving no room for the context in max_seq_len={max_seq_len}; "
                "shorten the question or lower max_question_len"
            )
        stride = params["doc_stride"]
        if stride is None:
            stride = min(max_seq_len // 2, 128, room - 1)
        elif stride >= room and len(context) > room:
            raise ValueError(
                f"doc_stride ({stride}) must be smaller than the context tokens per window ({room} = max_seq_len "
                f"{max_seq_len} - {len(question)} question tokens - 3 special tokens)"
            )
        starts = [0]
        while starts[-1] + room < len(context):
            starts.append(starts[-1] + room - stride)
        return [build_feature(tok, question, context.slice(s, s + room), meta={"context": context}) for s in starts]

    def postprocess(self, pipe, item, rows, outputs, params):
        """The top_k answers over all windows.

        Several token spans can give the same answer text: two pieces of one word widened to the
        word (align_to_words), or the same words at two places. Transformers' QuestionAnsweringPipeline
        (4.57) SUMS the scores of equal texts (compared case-insensitively; the first, best-scoring
        position is reported) among each window's top (2 * top_k + 10) spans, and it sums across
        windows too. We follow it within a window, so that a context that fits one window (the
        common case) gets transformers' scores; across windows we keep the best window's score
        instead of the sum: overlapping windows see the same tokens twice, and their sum counts one
        reading twice (it can exceed 1).
        """
        text = item["context"]
        top_k = params["top_k"]
        pool = top_k * 2 + 10 if params["align_to_words"] else top_k  # spans per window, as transformers
        best = {}  # lower-cased answer text -> the answer of the window that scores it highest
        null_score = 1.0e6
        for row, out in zip(rows, outputs):
            n = len(row)
            allowed = np.array([s == 1 for s in row.sequence_ids])  # context tokens
            allowed[0] = True  # [CLS] takes part in the softmax: it scores "no answer"
            start = _masked_softmax(out["start_logits"][:n], allowed)
            end = _masked_softmax(out["end_logits"][:n], allowed)
            null_score = min(null_score, float(start[0] * end[0]))
            allowed[0] = False
            i, j = np.nonzero(
                np.triu(np.outer(allowed, allowed)) & ~np.triu(np.ones((n, n), dtype=bool), params["max_answer_len"])
            )
            scores = start[i] * end[j]
            window = {}
            for k in np.argsort(-scores, kind="stable")[:pool]:
                a, b = self.char_span(row, int(i[k]), int(j[k]), params["align_to_words"])
                key = text[a:b].lower()
                if key in window:
                    window[key]["score"] += float(scores[k])
                else:
                    window[key] = {"score": float(scores[k]), "start": a, "end": b, "answer": text[a:b]}
            for key, answer in window.items():
                if key not in best or best[key]["score"] < answer["score"]:
                    best[key] = answer
        answers = list(best.values())
        if params["handle_impossible_answer"]:
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers.sort(key=lambda x: -x["score"])
        answers = answers[:top_k]
        return answers[0] if top_k == 1 else answers

    @staticmethod
    def char_span(row, i: int, j: int, align_to_words: bool):
        """Characters of the context covered by tokens i..j of this row (widened to whole words)."""
        start, end = row.offsets[i][0], row.offsets[j][1]
        if align_to_words:
            context = row.meta["context"]
            first_word, last_word = row.words[i], row.words[j]
            starts = [o[0] for o, w in zip(context.offsets, context.words) if w == first_word]
            ends = [o[1] for o, w in zip(context.offsets, context.words) if w == last_word]
            start, end = min(starts), max(ends)
        return start, end


def _masked_softmax(logits, allowed) -> np.ndarray:
    x = np.where(allowed, np.asarray(logits, dtype=np.float64), -10000.0)
    e = np.exp(x - x.max())
    return e / e.sum()
