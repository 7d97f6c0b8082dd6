"""token-classification (alias "ner"): a label per word piece, optionally merged into words and entities.

aggregation_strategy:
  none     one dict per word piece: entity, score, index, word, start, end
  simple   adjacent pieces with the same entity (B-X then I-X..., or the same bare label) -> one entity_group
  first    each word takes the label of its first piece, then grouped as in simple
  average  each word averages its pieces' probabilities, then takes the best label
  max      each word takes the label of its most confident piece
Pieces belong to one word when the tokenizer says so (WordPiece "##" continuations). Labels in
ignore_labels (default ["O"]) are dropped at the end.
"""

from __future__ import annotations

import numpy as np

from mobilebert_common.pipelines.encode import build_feature, encode_text, truncate
from mobilebert_common.pipelines.task import Task, softmax
from mobilebert_common.tokenization_base import clean_up_tokenization

STRATEGIES = ("none", "simple", "first", "average", "max")


def tokens_to_string(tokenizer, tokens) -> str:
    """Word pieces -> text, "##" glued, then the spaces before punctuation removed when the tokenizer
    cleans up (its default): "new york , hello" -> "new york, hello", as transformers' fast
    tokenizers (the WordPiece decoder) give it."""
    if hasattr(tokenizer, "convert_tokens_to_string"):
        text = tokenizer.convert_tokens_to_string(tokens)
    else:
        text = " ".join(tokens).replace(" ##", "").strip()
    if getattr(tokenizer, "clean_up_tokenization_spaces", True):
        text = clean_up_tokenization(text)
    return text


def split_tag(label: str):
    """("B", "PER") for "B-PER", ("I", "PER") for "I-PER", ("I", label) for a bare label."""
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


def group_entities(tokenizer, entities: list) -> list:
    """Merge runs of the same tag; a "B-" starts a new group. Score = mean of the members' scores."""
    groups, run = [], []
    for entity in entities:
        bi, tag = split_tag(entity["entity"])
        if run and tag == split_tag(run[-1]["entity"])[1] and bi != "B":
            run.append(entity)
            continue
        if run:
            groups.append(run)
        run = [entity]
    if run:
        groups.append(run)
    return [
        {
            "entity_group": split_tag(run[0]["entity"])[1],
            "score": float(np.mean([e["score"] for e in run])),
            "word": tokens_to_string(tokenizer, [e["_token"] for e in run]),
            "start": run[0]["start"],
            "end": run[-1]["end"],
        }
        for run in groups
    ]


def aggregate_word(tokenizer, pieces: list, strategy: str, id2label: dict) -> dict:
    """One entity for the word made of ``pieces`` (each with its probability row "probs")."""
    if strategy == "first":
        probs = pieces[0]["probs"]
        best = int(probs.argmax())
        score = probs[best]
    elif strategy == "max":
        probs = max(pieces, key=lambda p: p["probs"].max())["probs"]
        best = int(probs.argmax())
        score = probs[best]
    elif strategy == "average":
        probs = np.mean([p["probs"] for p in pieces], axis=0)
        best = int(probs.argmax())
        score = probs[best]
    else:
        raise ValueError(f"aggregation_strategy {strategy!r} does not merge words")
    return {
        "entity": id2label[best],
        "score": float(score),
        "_token": tokens_to_string(tokenizer, [p["_token"] for p in pieces]),
        "start": pieces[0]["start"],
        "end": pieces[-1]["end"],
    }


class TokenClassification(Task):
    name = "token-classification"
    head = "token_classification"
    defaults = {"aggregation_strategy": "none", "ignore_labels": ["O"], "truncation": True}

    def check_param(self, pipe, name, value):
        if name == "aggregation_strategy":
            strategy = str(getattr(value, "value", value) if value is not None else "none").lower()
            if strategy not in STRATEGIES:
                raise ValueError(f"aggregation_strategy must be one of {', '.join(STRATEGIES)}; got {value!r}")
            return strategy
        if name == "ignore_labels":
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"ignore_labels must be a list of label strings, got {value!r}")
            return list(value)
        return super().check_param(pipe, name, value)

    def preprocess(self, pipe, text, params):
        enc = encode_text(pipe.tokenizer, text)
        enc, _ = truncate(enc, None, pipe.max_length, params["truncation"])
        return [build_feature(pipe.tokenizer, enc, meta={"text": text})]

    def pieces(self, pipe, text, row, logits) -> list:
        """One dict per word piece (special tokens skipped), with its probabilities over the labels."""
        tok = pipe.tokenizer
        probs = softmax(logits[: len(row)])  # (T, num_labels)
        tokens = tok.convert_ids_to_tokens(row.input_ids)
        unk = getattr(tok, "unk_token_id", None)
        out, prev_word = [], None
        for idx, (token, word, offset) in enumerate(zip(tokens, row.words, row.offsets)):
            if word is None:  # [CLS] / [SEP]
                continue
            start, end = (None, None) if offset is None else offset
            if row.input_ids[idx] == unk and offset is not None:
                token = text[start:end]  # show the characters, not "[UNK]"
            out.append(
                {"_token": token, "probs": probs[idx], "index": idx, "start": start, "end": end, "subword": word == prev_word}
            )
            prev_word = word
        return out

    def postprocess(self, pipe, text, rows, outputs, params):
        id2label = pipe.config.id2label
        strategy = params["aggregation_strategy"]
        pieces = self.pieces(pipe, text, rows[0], outputs[0]["logits"])
        if strategy in ("none", "simple"):
            entities = []
            for p in pieces:
                best = int(p["probs"].argmax())
                entities.append(
                    {
                        "entity": id2label[best],
                        "score": float(p["probs"][best]),
                        "index": p["index"],
                        "_token": p["_token"],
                        "start": p["start"],
                        "end": p["end"],
                    }
                )
        else:
            words, current = [], []
            for p in pieces:
                if current and not p["subword"]:
                    words.append(current)
                    current = []
                current.append(p)
            if current:
                words.append(current)
            entities = [aggregate_word(pipe.tokenizer, w, strategy, id2label) for w in words]
        if strategy == "none":
            result = [
                {"entity": e["entity"], "score": e["score"], "index": e["index"], "word": e["_token"], "start": e["start"], "end": e["end"]}
                for e in entities
            ]
            return [e for e in result if e["entity"] not in params["ignore_labels"]]
        groups = group_entities(pipe.tokenizer, entities)
        return [g for g in groups if g["entity_group"] not in params["ignore_labels"]]
