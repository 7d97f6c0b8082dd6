"""Turning pipeline inputs into model inputs, framework-free.

The pipelines ask the tokenizer for word pieces WITHOUT special tokens (ids, character offsets,
word indices), then build ``[CLS] a [SEP] (b [SEP])`` themselves: truncation, question-answering
windows and the bookkeeping that maps tokens back to characters then live in one place, the same
for the PyTorch and the Keras pipelines and for both tokenizers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import List, Optional, Tuple

Offset = Tuple[int, int]


@dataclass
class Encoded:
    """Word pieces of one text, without special tokens."""

    ids: List[int]
    offsets: Optional[List[Offset]]  # (start, end) characters of each piece in the text; None if the tokenizer has none
    words: List[int]  # index of the word each piece belongs to (a "##" piece continues the previous word)

    def __len__(self) -> int:
        return len(self.ids)

    def slice(self, start: int, stop: int) -> "Encoded":
        offsets = None if self.offsets is None else self.offsets[start:stop]
        return Encoded(self.ids[start:stop], offsets, self.words[start:stop])


def check_text(text, what: str = "input") -> str:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a string, got {type(text).__name__}: {text!r:.80}")
    if not text.strip():
        raise ValueError(f"{what} is an empty string; pass some text")
    return text


def _get(encoding, key):
    try:
        return encoding[key]
    except (KeyError, TypeError):
        return getattr(encoding, key, None)


def _flat(values):
    # Some tokenizers return [[...]] for one text; we want the flat list.
    if values is not None and len(values) and isinstance(values[0], (list, tuple)) and not _is_pair(values[0]):
        return values[0]
    return values


def _is_pair(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value)


def encode_text(tokenizer, text: str, what: str = "input") -> Encoded:
    """Word pieces of ``text`` with character offsets when the tokenizer can give them."""
    check_text(text, what)
    ids, offsets = None, None
    try:
        # verbose=False: the tokenizer would warn that a text longer than model_max_length "will result
        # in indexing errors" (it does not know that truncate() cuts it next, with its own warning).
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        ids, offsets = _get(enc, "input_ids"), _get(enc, "offset_mapping")
    except (NotImplementedError, TypeError, ValueError):
        # A pure-Python tokenizer may not track offsets: fall back to pieces without them.
        ids, offsets = None, None
    if ids is None:
        ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))
    ids = [int(i) for i in _flat(list(ids))]
    if offsets is not None:
        offsets = [(int(s), int(e)) for s, e in _flat(list(offsets))]
        if len(offsets) != len(ids):
            offsets = None
    if not ids:
        raise ValueError(f"{what} {text!r:.80} gives no tokens (only whitespace or control characters?)")
    tokens = tokenizer.convert_ids_to_tokens(ids)
    unk = getattr(tokenizer, "unk_token_id", None)
    words, word = [], -1
    for i, (tid, tok) in enumerate(zip(ids, tokens)):
        # WordPiece marks a continuation of the previous word with "##"; [UNK] always starts a word.
        continues = i > 0 and tid != unk and isinstance(tok, str) and tok.startswith("##")
        word += 0 if continues else 1
        words.append(word)
    return Encoded(ids, offsets, words)


@dataclass
class Feature:
    """One model input row before padding, with what postprocessing needs to map it back."""

    input_ids: List[int]
    token_type_ids: List[int]
    sequence_ids: List[Optional[int]]  # None for [CLS]/[SEP], 0 for the first text, 1 for the second
    offsets: List[Optional[Offset]]  # character span in its own text, None for special tokens
    words: List[Optional[int]]  # word index in its own text, None for special tokens
    meta: dict  # task-specific bookkeeping (e.g. the question-answering window)

    def __len__(self) -> int:
        return len(self.input_ids)


def build_feature(tokenizer, a: Encoded, b: Optional[Encoded] = None, meta: Optional[dict] = None) -> Feature:
    """``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]`` with segment ids 0 then 1."""
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    ids = [cls] + a.ids + [sep]
    types = [0] * len(ids)
    seq = [None] + [0] * len(a) + [None]
    offs = [None] + (a.offsets or [None] * len(a)) + [None]
    words = [None] + list(a.words) + [None]
    if b is not None:
        ids += b.ids + [sep]
        types += [1] * (len(b) + 1)
        seq += [1] * len(b) + [None]
        offs += (b.offsets or [None] * len(b)) + [None]
        words += list(b.words) + [None]
    return Feature(ids, types, seq, offs, words, dict(meta or {}))


def truncate(a: Encoded, b: Optional[Encoded], max_length: int, truncation: bool, what: str = "input"):
    """Fit ``a`` (and ``b``) plus special tokens into ``max_length``: longest first, from the end.

    Warns when it cuts; raises ValueError when it would have to cut and truncation is False.
    """
    specials = 2 if b is None else 3
    total = len(a) + (0 if b is None else len(b)) + specials
    if total <= max_length:
        return a, b
    if not truncation:
        raise ValueError(
            f"{what} has {total} tokens (with [CLS]/[SEP]); this model takes at most {max_length}. "
            "Shorten it or pass truncation=True to cut it"
        )
    budget = max_length - specials
    if budget < (1 if b is None else 2):
        raise ValueError(f"max_length {max_length} leaves no room for text after the special tokens")
    la, lb = len(a), 0 if b is None else len(b)
    while la + lb > budget:  # remove one piece at a time from the longer text ("longest_first")
        if la >= lb:
            la -= 1
        else:
            lb -= 1
    warnings.warn(
        f"{what} has {total} tokens (with [CLS]/[SEP]); truncated to this model's maximum of {max_length}. "
        "Pass truncation=False to get an error instead",
        UserWarning,
        stacklevel=4,
    )
    return a.slice(0, la), (None if b is None else b.slice(0, lb))
