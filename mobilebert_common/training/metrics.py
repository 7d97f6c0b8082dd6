"""The tasks' usual metrics, from sums that add up across processes (all_reduce of sums and counts).

    confusion(gold, pred, n) -> (n, n) counts      classification_scores(confusion) -> accuracy, macro_f1
    iob2_entities(tags) -> {(type, start, end)}    entity_scores(tp, n_pred, n_gold) -> precision, recall, f1
    normalize_answer(text), squad_exact(pred, golds), squad_f1(pred, golds)    (SQuAD's official rules)
    perplexity(nll_sum, count)
"""

from __future__ import annotations

import collections
import math
import re
import string
from typing import Iterable, List, Sequence, Set, Tuple

import numpy as np


def confusion(gold: Sequence[int], pred: Sequence[int], n: int) -> np.ndarray:
    """counts[g, p]: examples of class g predicted as p."""
    out = np.zeros((n, n), dtype=np.float64)
    np.add.at(out, (np.asarray(gold, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return out


def classification_scores(counts: np.ndarray) -> dict:
    """accuracy, and macro-F1 over the classes that occur (in the gold labels or the predictions)."""
    total = counts.sum()
    tp = np.diag(counts)
    gold, pred = counts.sum(axis=1), counts.sum(axis=0)
    present = (gold + pred) > 0
    f1 = np.divide(2 * tp, gold + pred, out=np.zeros_like(tp), where=present)
    return {"accuracy": float(tp.sum() / total) if total else 0.0,
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0}


def _split(tag: str) -> Tuple[str, str]:
    """("B", "PER") for "B-PER"; ("O", "") for "O"; a bare label "PER" reads as ("I", "PER")."""
    if tag == "O" or not tag:
        return "O", ""
    if len(tag) > 1 and tag[1] in "-_" and tag[0] in "BIESLU":
        return tag[0], tag[2:]
    return "I", tag


def iob2_entities(tags: Sequence[str]) -> Set[Tuple[str, int, int]]:
    """Entity spans (type, first word, last word) of an IOB2 sequence, with conlleval's (and seqeval's
    default) rules: an I- that does not continue an entity of its type starts a new one."""
    entities, start, kind = set(), None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, label = _split(tag)
        ends = start is not None and (prefix in ("O", "B", "S", "U") or label != kind)
        if ends:
            entities.add((kind, start, i - 1))
            start = kind = None
        if prefix != "O" and start is None:
            start, kind = i, label
        if prefix in ("E", "L", "S", "U") and start is not None:  # IOBES endings close the entity here
            entities.add((kind, start, i))
            start = kind = None
    return entities


def entity_counts(gold: Iterable[Sequence[str]], pred: Iterable[Sequence[str]]) -> np.ndarray:
    """[true positives, predicted entities, gold entities] over sentences of word tags."""
    out = np.zeros(3, dtype=np.float64)
    for g, p in zip(gold, pred):
        g, p = iob2_entities(g), iob2_entities(p)
        out += (len(g & p), len(p), len(g))
    return out


def entity_scores(tp: float, n_pred: float, n_gold: float) -> dict:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles (a, an, the), single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _f1(pred: str, gold: str) -> float:
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    if not p or not g:  # no-answer: right only when both are empty
        return float(p == g)
    common = sum((collections.Counter(p) & collections.Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def squad_exact(pred: str, golds: List[str]) -> float:
    """Best exact match over the gold answers ([""] for a question without answer)."""
    return max(float(normalize_answer(pred) == normalize_answer(g)) for g in golds)


def squad_f1(pred: str, golds: List[str]) -> float:
    return max(_f1(pred, g) for g in golds)


def perplexity(nll_sum: float, count: float) -> float:
    """exp(mean negative log-likelihood per predicted token); inf past float range, nan with no token."""
    if not count:
        return float("nan")
    mean = nll_sum / count
    return math.exp(mean) if mean < 709 else float("inf")
