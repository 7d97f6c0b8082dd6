"""Examples -> model rows, through the pipelines' encoders (so training sees exactly what inference sees).

    encode(task, examples, tokenizer, max_length, label2id=None, doc_stride=None) -> Encoded
    collate(task, features, pad_id, cap, masking=None) -> {name: int64 array}   one padded micro-batch
    MaskedLM(tokenizer, seed, vocab_size).mask(ids, key) -> (ids, labels)      BERT's 15% masking, 80/10/10
    check_vocabulary(encoded, vocab_size)                                       every id indexes the model's table
    target_count(task, batch) -> int                                            what the loss averages over

A feature is a dict of lists: input_ids, token_type_ids (multiple choice: one list per choice) and
the labels (labels, or start_positions / end_positions), plus "example": the index of the example
it came from (question answering cuts a long context into several windows, each a feature).
Rows are padded on the right; the frameworks give padded positions zero word embeddings, as the
pipelines do, so a row trains the same whatever it is batched with.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Dict, List, Optional, Sequence

import numpy as np

from mobilebert_common.labels import IGNORE_INDEX
from mobilebert_common.pipelines.encode import build_feature, encode_text, truncate
from mobilebert_common.pipelines.question_answering import QuestionAnswering
from mobilebert_common.training.data import Example, class_id, check_same_choice_count
from mobilebert_common.training.options import TOKEN_LEVEL, label_keys

MASK_PROBABILITY = 0.15  # BERT: 15% of the tokens are predicted; of those 80% [MASK], 10% random, 10% kept
PAD_MULTIPLE = 8  # rows padded to a multiple of 8 tokens: fewer distinct shapes (Keras traces, GPU kernels)


@dataclass
class Encoded:
    features: List[dict]
    examples: List[Example]
    rows: Dict[int, list] = field(default_factory=dict)  # question answering: example index -> its pipeline rows (windows)
    truncated: int = 0  # examples cut to max_length


def encode(task: str, examples: Sequence[Example], tokenizer, max_length: int, label2id: Optional[dict] = None,
           doc_stride: Optional[int] = None) -> Encoded:
    """Every example encoded; errors name the example's file and line. One warning counts the truncated ones."""
    out, first = Encoded([], list(examples)), None
    if task == "multiple-choice":
        check_same_choice_count(examples)
    encoder = _ENCODERS[task]
    for index, ex in enumerate(examples):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                features = encoder(ex, tokenizer, max_length, label2id, doc_stride, out, index)
            except ValueError as err:
                raise ValueError(f"{ex.where}: {err}") from None
        if caught:  # the encoders warn only when they cut a text (or a question) to fit
            out.truncated += 1
            first = first if out.truncated > 1 else f"{ex.where}: {caught[0].message}"
        for feature in features:
            feature["example"] = index
        out.features.extend(features)
    if out.truncated:
        warnings.warn(f"{out.truncated} of the {len(examples)} examples in {examples[0].source} were cut to fit "
                      f"max_length={max_length} tokens (the first: {first})", UserWarning, stacklevel=2)
    return out


def check_vocabulary(encoded: Encoded, vocab_size: int) -> None:
    """Every id must index the model's word embeddings: the frameworks look them up themselves (to zero
    the padding), where an id past the table is an IndexError on the CPU and a device assert on a GPU."""
    for feature in encoded.features:
        ids = feature["input_ids"]
        largest = max(max(r) for r in ids) if isinstance(ids[0], list) else max(ids)
        if largest >= vocab_size:
            example = encoded.examples[feature["example"]]
            raise ValueError(f"{example.where}: the tokenizer gives id {largest}, but the model has only {vocab_size} "
                             "word embeddings (config.vocab_size): use the tokenizer saved with the model")


def _row(feature) -> dict:
    return {"input_ids": feature.input_ids, "token_type_ids": feature.token_type_ids}


def _text_classification(ex, tok, max_length, label2id, doc_stride, out, index) -> List[dict]:
    a = encode_text(tok, ex.data["text"], "text")
    b = encode_text(tok, ex.data["text_pair"], "text_pair") if "text_pair" in ex.data else None
    a, b = truncate(a, b, max_length, True)
    return [{**_row(build_feature(tok, a, b)), "labels": class_id(ex.data["label"], label2id, ex.where)}]


def _token_classification(ex, tok, max_length, label2id, doc_stride, out, index) -> List[dict]:
    """Words encoded one by one (the data's own word split); only a word's first piece is labelled."""
    ids, labels = [tok.cls_token_id], [IGNORE_INDEX]
    pieces = tok(list(ex.data["tokens"]), add_special_tokens=False)["input_ids"]  # one list per word
    for word_pieces, label in zip(pieces, ex.data["labels"]):
        label = class_id(label, label2id, ex.where)
        ids += list(word_pieces)
        labels += [label] + [IGNORE_INDEX] * (len(word_pieces) - 1) if word_pieces else []
    if len(ids) + 1 > max_length:
        warnings.warn(f"{len(ids) + 1} tokens truncated to {max_length}", UserWarning)
        ids, labels = ids[:max_length - 1], labels[:max_length - 1]
    ids.append(tok.sep_token_id)
    labels.append(IGNORE_INDEX)
    return [{"input_ids": ids, "token_type_ids": [0] * len(ids), "labels": labels}]


def _question_answering(ex, tok, max_length, label2id, doc_stride, out, index) -> List[dict]:
    """The pipeline's windows; each is labelled with the first answer's tokens, or [CLS] (0, 0) when the
    window does not hold the whole answer (or the question has none)."""
    task = QuestionAnswering()
    params = {**task.defaults, "max_seq_len": max_length, "doc_stride": doc_stride}
    rows = task.preprocess(SimpleNamespace(tokenizer=tok, max_length=max_length), ex.data, params)
    out.rows[index] = rows
    answers = ex.data["answers"]
    features = []
    for row in rows:
        start = end = 0
        if answers["text"]:
            first, last = answers["answer_start"][0], answers["answer_start"][0] + len(answers["text"][0])
            inside = [i for i, s in enumerate(row.sequence_ids) if s == 1]  # the window's context tokens
            if row.offsets[inside[0]][0] <= first and last <= row.offsets[inside[-1]][1]:
                start = next(i for i in inside if row.offsets[i][1] > first)
                end = next(i for i in reversed(inside) if row.offsets[i][0] < last)
        features.append({**_row(row), "start_positions": start, "end_positions": end})
    return features


def _fill_mask(ex, tok, max_length, label2id, doc_stride, out, index) -> List[dict]:
    a, _ = truncate(encode_text(tok, ex.data["text"], "text"), None, max_length, True)
    return [_row(build_feature(tok, a))]  # masked when batched: a new draw every epoch


def _multiple_choice(ex, tok, max_length, label2id, doc_stride, out, index) -> List[dict]:
    question = encode_text(tok, ex.data["question"], "question") if "question" in ex.data else None
    rows = []
    for i, choice in enumerate(ex.data["choices"]):
        b = encode_text(tok, choice, f"choice {i}")
        a, b = truncate(question, b, max_length, True) if question is not None else truncate(b, None, max_length, True)
        rows.append(build_feature(tok, a, b))
    return [{"input_ids": [r.input_ids for r in rows], "token_type_ids": [r.token_type_ids for r in rows],
             "labels": ex.data["label"]}]


_ENCODERS = {
    "text-classification": _text_classification,
    "token-classification": _token_classification,
    "question-answering": _question_answering,
    "fill-mask": _fill_mask,
    "multiple-choice": _multiple_choice,
}


class MaskedLM:
    """BERT's masking, drawn from (seed, key): the same example gets the same masks in every process
    and in a resumed run, and new ones every epoch (key = (epoch, example))."""

    def __init__(self, tokenizer, seed: int, vocab_size: int):
        self.seed = seed
        self.mask_id = tokenizer.mask_token_id
        self.vocab_size = vocab_size  # the model's: random replacements must index its embeddings
        self.special = np.asarray(sorted(set(tokenizer.all_special_ids)), dtype=np.int64)

    def mask(self, ids: Sequence[int], key: Sequence[int]):
        """(masked ids, labels): labels hold the original id where a prediction is asked, -100 elsewhere."""
        rng = np.random.default_rng([self.seed, *key])
        ids = np.asarray(ids, dtype=np.int64)
        chosen = (rng.random(len(ids)) < MASK_PROBABILITY) & ~np.isin(ids, self.special)
        labels = np.where(chosen, ids, IGNORE_INDEX)
        action = rng.random(len(ids))  # < 0.8: [MASK]; 0.8-0.9: a random token; else kept
        random_ids = rng.integers(0, self.vocab_size, len(ids))
        masked = np.where(chosen & (action < 0.8), self.mask_id, ids)
        masked = np.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, masked)
        return masked.tolist(), labels.tolist()


def collate(task: str, features: Sequence[dict], pad_id: int, cap: int, masking=None) -> Dict[str, np.ndarray]:
    """One micro-batch: rows padded on the right to the longest (rounded up to a multiple of 8, at most
    ``cap`` tokens). masking: (MaskedLM, epoch key) for fill-mask."""
    if task == "fill-mask":
        masker, key = masking
        features = [dict(zip(("input_ids", "labels"), masker.mask(f["input_ids"], (*key, f["example"]))),
                         token_type_ids=f["token_type_ids"]) for f in features]
    choices = task == "multiple-choice"
    rows = [r for f in features for r in (f["input_ids"] if choices else [f["input_ids"]])]
    width = min(cap, -(-max(len(r) for r in rows) // PAD_MULTIPLE) * PAD_MULTIPLE)

    def pad(lists, value):  # (N, width)
        out = np.full((len(lists), width), value, dtype=np.int64)
        for i, row in enumerate(lists):
            out[i, :len(row)] = row
        return out

    types = [r for f in features for r in (f["token_type_ids"] if choices else [f["token_type_ids"]])]
    batch = {"input_ids": pad(rows, pad_id), "attention_mask": pad([[1] * len(r) for r in rows], 0),
             "token_type_ids": pad(types, 0)}
    if choices:  # (B * C, T) -> (B, C, T)
        batch = {k: v.reshape(len(features), -1, width) for k, v in batch.items()}
    for key in label_keys(task):
        values = [f[key] for f in features]
        batch[key] = pad(values, IGNORE_INDEX) if task in TOKEN_LEVEL else np.asarray(values, dtype=np.int64)
    return batch


def target_count(task: str, batch: Dict[str, np.ndarray]) -> int:
    """How many targets the model's loss averages over: labelled tokens, or examples."""
    if task in TOKEN_LEVEL:
        return int((batch["labels"] != IGNORE_INDEX).sum())
    return int(batch["input_ids"].shape[0])
