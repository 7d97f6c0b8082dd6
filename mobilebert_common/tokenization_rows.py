"""From word pieces to model rows: the options of a call, pairs and batches, special tokens,
truncation (with stride windows), padding. Framework-free and tokenizer-free: both tokenizers
hand their word pieces (a ``Piece`` per text) to these functions.

A row is a dict of equal-length lists: input_ids, token_type_ids, attention_mask,
special_tokens_mask, offset_mapping, word_ids, sequence_ids.
"""

from __future__ import annotations

import warnings
from typing import List, Optional, Tuple

from mobilebert_common.tokenization_batch import TENSOR_TYPES, check_text, is_int

Piece = Tuple[List[int], List[Tuple[int, int]], List[int]]  # (ids, (start, end) characters, word index) of one text

PADDING_VALUES = (False, True, "longest", "max_length", "do_not_pad")
TRUNCATION_VALUES = (False, True, "longest_first", "only_first", "only_second", "do_not_truncate")

# What padding puts in each key of a row (input_ids gets the tokenizer's pad id).
_PAD_FILL = {
    "token_type_ids": 0,
    "attention_mask": 0,
    "special_tokens_mask": 1,
    "offset_mapping": (0, 0),
    "word_ids": None,
    "sequence_ids": None,
}


def check_options(padding, truncation, max_length, stride, pad_to_multiple_of, return_tensors, model_max_length):
    """Validate a call's options -> (padding, truncation, max_length) in canonical form:
    padding False / "longest" / "max_length", truncation False / "longest_first" / "only_first" /
    "only_second", max_length an int or None. Called straight from the tokenizer's public method,
    so that a warning points (stacklevel=3) at the user's line."""
    if padding not in PADDING_VALUES or not isinstance(padding, (bool, str)):
        raise ValueError(f"padding must be one of {PADDING_VALUES}, got {padding!r}")
    padding = {True: "longest", "do_not_pad": False}.get(padding, padding)
    if truncation is None:
        truncation = False
        if max_length is not None and padding is False:
            # max_length alone means "cut to it", as transformers reads it; say so.
            warnings.warn(
                "max_length is given but truncation is not: cutting with truncation='longest_first'; "
                "pass truncation=True (or another strategy) to say so explicitly",
                UserWarning,
                stacklevel=3,
            )
            truncation = "longest_first"
    if truncation not in TRUNCATION_VALUES or not isinstance(truncation, (bool, str)):
        raise ValueError(f"truncation must be one of {TRUNCATION_VALUES}, got {truncation!r}")
    truncation = {True: "longest_first", "do_not_truncate": False}.get(truncation, truncation)
    if max_length is not None and (not is_int(max_length) or max_length < 1):
        raise ValueError(f"max_length must be a positive int, got {max_length!r}")
    if padding == "max_length" and max_length is None:
        raise ValueError("padding='max_length' needs max_length= (the length every row is padded to)")
    if truncation and max_length is None:
        max_length = model_max_length
    if not is_int(stride) or stride < 0:
        raise ValueError(f"stride must be an int >= 0, got {stride!r}")
    if pad_to_multiple_of is not None and (not is_int(pad_to_multiple_of) or pad_to_multiple_of < 1):
        raise ValueError(f"pad_to_multiple_of must be a positive int, got {pad_to_multiple_of!r}")
    if return_tensors not in TENSOR_TYPES:
        raise ValueError(f"return_tensors must be one of {TENSOR_TYPES}, got {return_tensors!r}")
    return padding, truncation, None if max_length is None else int(max_length)


def split_inputs(text, text_pair):
    """A text, a pair, a batch of texts or of pairs -> (first texts, second texts or None each, batched?)"""
    if isinstance(text, str):
        if text_pair is not None and not isinstance(text_pair, str):
            raise ValueError(f"text is one str, so text_pair must be one str too, got {type(text_pair).__name__}")
        return [text], [text_pair], False
    if not isinstance(text, (list, tuple)):
        check_text(text, "text")
    if len(text) == 0:
        raise ValueError("text is an empty list; pass a str or a non-empty list of str")
    if text_pair is None:
        firsts, seconds = [], []
        for i, t in enumerate(text):
            if isinstance(t, (list, tuple)):  # a batch of (text, text_pair)
                if len(t) != 2:
                    raise ValueError(f"text[{i}] must be a str or a (text, text_pair) pair, got {len(t)} items")
                firsts.append(check_text(t[0], f"text[{i}][0]"))
                seconds.append(check_text(t[1], f"text[{i}][1]"))
            else:
                firsts.append(check_text(t, f"text[{i}]"))
                seconds.append(None)
        return firsts, seconds, True
    if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text):
        raise ValueError(
            f"text is a batch of {len(text)}, so text_pair must be a list of as many str, got {text_pair!r:.60}"
        )
    firsts = [check_text(t, f"text[{i}]") for i, t in enumerate(text)]
    seconds = [check_text(t, f"text_pair[{i}]") for i, t in enumerate(text_pair)]
    return firsts, seconds, True


def sample_rows(a: Piece, b: Optional[Piece], cls_id: int, sep_id: int, add_special: bool, truncation, max_length,
                stride: int, overflow: bool) -> List[dict]:
    """The model rows of one sample: one, or several overlapping windows when overflow is asked."""
    if b is None and truncation == "only_second":
        raise ValueError("truncation='only_second' needs a pair of texts (text_pair=); use truncation=True for one text")

    def row(x, y):
        return build_row(x, y, cls_id, sep_id, add_special)

    specials = (2 if b is None else 3) if add_special else 0
    if not truncation or len(a[0]) + (len(b[0]) if b else 0) + specials <= max_length:
        return [row(a, b)]
    room = max_length - specials  # tokens left for the texts
    if room < 1:
        raise ValueError(
            f"max_length={max_length} leaves no room for text: {specials} special tokens "
            f"({'[CLS] a [SEP] b [SEP]' if b is not None else '[CLS] a [SEP]'}) need max_length > {specials}"
        )
    if b is None or truncation == "only_first":
        keep = room - (len(b[0]) if b else 0)  # tokens of the first text that fit
        if keep < 1:
            raise ValueError(
                f"truncation='only_first' cannot fit max_length={max_length}: the second text alone takes "
                f"{len(b[0])} tokens plus {specials} special tokens; use truncation='longest_first' or 'only_second'"
            )
        return [row(w, b) for w in windows(a, keep, stride, overflow)]
    if truncation == "only_second":
        keep = room - len(a[0])
        if keep < 1:
            raise ValueError(
                f"truncation='only_second' cannot fit max_length={max_length}: the first text alone takes "
                f"{len(a[0])} tokens plus {specials} special tokens; use truncation='longest_first' or 'only_first'"
            )
        return [row(a, w) for w in windows(b, keep, stride, overflow)]
    if overflow:
        raise ValueError(
            "return_overflowing_tokens with a pair of texts needs truncation='only_second' (or 'only_first'): "
            "with 'longest_first' it is unclear which text the windows slide over"
        )
    # longest_first, as the `tokenizers` library (transformers' default fast tokenizer) does it:
    # the shorter text stays whole if the longer one can absorb the cut; otherwise both get
    # half the room and an odd token goes to the longer one (to the second on a tie).
    short = min(len(a[0]), len(b[0]))
    n_short, n_long = short, max(short, room - short)
    if n_short + n_long > room:
        n_short, n_long = room // 2, room // 2 + room % 2
    n_a, n_b = (n_long, n_short) if len(a[0]) > len(b[0]) else (n_short, n_long)
    return [row(cut(a, 0, n_a), cut(b, 0, n_b))]


def build_row(a: Piece, b: Optional[Piece], cls_id: int, sep_id: int, add_special: bool) -> dict:
    """[CLS] a [SEP] (b [SEP]) with segment ids, offsets, word and sequence ids."""
    cls, sep = ([cls_id], [sep_id]) if add_special else ([], [])
    s = 1 if add_special else 0
    ids = cls + a[0] + sep
    types = [0] * len(ids)
    offsets = [(0, 0)] * s + list(a[1]) + [(0, 0)] * s
    words = [None] * s + list(a[2]) + [None] * s
    seqs = [None] * s + [0] * len(a[0]) + [None] * s
    if b is not None:
        ids += b[0] + sep
        types += [1] * (len(b[0]) + s)
        offsets += list(b[1]) + [(0, 0)] * s
        words += list(b[2]) + [None] * s
        seqs += [1] * len(b[0]) + [None] * s
    return {
        "input_ids": ids,
        "token_type_ids": types,
        "attention_mask": [1] * len(ids),
        "special_tokens_mask": [1 if q is None else 0 for q in seqs],
        "offset_mapping": offsets,
        "word_ids": words,
        "sequence_ids": seqs,
    }


def pad_rows(rows: List[dict], padding, max_length: Optional[int], multiple: Optional[int], pad_id: int) -> None:
    """Pad every row in place on the right (absolute positions) to the batch's longest or to max_length."""
    if not padding:
        return
    target = max_length if padding == "max_length" else max(len(r["input_ids"]) for r in rows)
    if multiple:
        target = -(-target // multiple) * multiple
    fill = {"input_ids": pad_id, **_PAD_FILL}
    for r in rows:
        n = target - len(r["input_ids"])
        if n > 0:
            for key, value in fill.items():
                if key in r:
                    r[key] = r[key] + [value] * n


def windows(piece: Piece, size: int, stride: int, overflow: bool) -> List[Piece]:
    """The first ``size`` tokens, or with ``overflow`` every window of ``size`` tokens that
    overlaps the previous one by ``stride`` tokens until the text is covered."""
    n = len(piece[0])
    if not overflow:
        return [cut(piece, 0, size)]
    if stride >= size:
        raise ValueError(f"stride ({stride}) must be smaller than the tokens per window ({size}) so that windows advance")
    starts = [0]
    while starts[-1] + size < n:
        starts.append(starts[-1] + size - stride)
    return [cut(piece, s, s + size) for s in starts]


def cut(piece: Piece, start: int, end: int) -> Piece:
    return piece[0][start:end], piece[1][start:end], piece[2][start:end]
