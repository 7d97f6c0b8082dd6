"""From word pieces to model rows: the options of a call, pairs and batches (texts or pre-split
words), special tokens, truncation (with stride windows) and padding, on either side. Framework-free
and tokenizer-free: both tokenizers hand their word pieces (a ``Piece`` per text) to these functions,
saying whether to cut as transformers' slow class or as the `tokenizers` library (the fast class) does.

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
SIDES = ("right", "left")

# What padding puts in each key of a row (input_ids gets the tokenizer's pad id).
_PAD_FILL = {
    "token_type_ids": 0,
    "attention_mask": 0,
    "special_tokens_mask": 1,
    "offset_mapping": (0, 0),
    "word_ids": None,
    "sequence_ids": None,
}


def check_side(value, name: str) -> str:
    if value not in SIDES:
        raise ValueError(f"{name} must be 'right' or 'left', got {value!r}")
    return value


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


def split_inputs(text, text_pair, is_split_into_words: bool = False):
    """A text, a pair, a batch of texts or of pairs -> (first texts, second texts or None each, batched?).

    With is_split_into_words, a "text" is a list of words (kept as a tuple): one list is one sample, a list
    of lists a batch, and a batch item whose first element is itself a list is a (words, pair words) pair."""
    if is_split_into_words:
        return _split_word_inputs(text, text_pair)
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


def _words(value, what: str) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{what} must be a list of words (str) with is_split_into_words=True, got {type(value).__name__}: {value!r:.60}")
    return tuple(check_text(w, f"{what}[{i}]") for i, w in enumerate(value))


def _split_word_inputs(text, text_pair):
    if not isinstance(text, (list, tuple)):
        raise ValueError(f"with is_split_into_words=True, text must be a list of words or a batch of such lists, got "
                         f"{type(text).__name__}: {text!r:.60}")
    batched = len(text) > 0 and isinstance(text[0], (list, tuple))
    if not batched:
        return [_words(text, "text")], [None if text_pair is None else _words(text_pair, "text_pair")], False
    if text_pair is not None:
        if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text):
            raise ValueError(f"text is a batch of {len(text)} word lists, so text_pair must be a list of as many, got {text_pair!r:.60}")
        return ([_words(t, f"text[{i}]") for i, t in enumerate(text)],
                [_words(t, f"text_pair[{i}]") for i, t in enumerate(text_pair)], True)
    firsts, seconds = [], []
    for i, item in enumerate(text):
        if item and isinstance(item[0], (list, tuple)):  # a (words, pair words) item
            if len(item) != 2:
                raise ValueError(f"text[{i}] must be a list of words or a (words, pair words) pair, got {len(item)} items")
            firsts.append(_words(item[0], f"text[{i}][0]"))
            seconds.append(_words(item[1], f"text[{i}][1]"))
        else:
            firsts.append(_words(item, f"text[{i}]"))
            seconds.append(None)
    return firsts, seconds, True


def join_words(pieces: List[Piece]) -> Piece:
    """The pieces of a text's pre-split words -> one Piece: word index = the word's place in the list,
    offsets within each word (as the `tokenizers` library gives them for pre-tokenized input)."""
    ids, offsets, words = [], [], []
    for index, (p_ids, p_offsets, _) in enumerate(pieces):
        ids += p_ids
        offsets += p_offsets
        words += [index] * len(p_ids)
    return ids, offsets, words


def sample_rows(a: Piece, b: Optional[Piece], cls_id: int, sep_id: int, add_special: bool, truncation, max_length,
                stride: int, overflow: bool, side: str = "right", fast: bool = True) -> List[dict]:
    """The model rows of one sample (a text or a pair), cut to max_length from ``side``.

    fast (the `tokenizers` library, transformers' fast class): with ``overflow``, every window of the text
    that is cut, overlapping by ``stride`` tokens, is a row of its own. Otherwise (transformers' slow class)
    there is one row, and with ``overflow`` it carries the cut tokens (with ``stride`` more) as
    ``overflowing_tokens`` and their count as ``num_truncated_tokens``."""
    if b is None and truncation == "only_second":
        raise ValueError("truncation='only_second' needs a pair of texts (text_pair=); use truncation=True for one text")

    def row(x, y):
        return build_row(x, y, cls_id, sep_id, add_special)

    specials = (2 if b is None else 3) if add_special else 0
    total = len(a[0]) + (len(b[0]) if b else 0) + specials
    if not truncation or total <= max_length:
        rows = [row(a, b)]
        if overflow and not fast:
            rows[0].update(overflowing_tokens=[], num_truncated_tokens=0 if max_length is None else total - max_length)
        return rows
    room = max_length - specials  # tokens left for the texts
    if room < 1:
        raise ValueError(
            f"max_length={max_length} leaves no room for text: {specials} special tokens "
            f"({'[CLS] a [SEP] b [SEP]' if b is not None else '[CLS] a [SEP]'}) need max_length > {specials}"
        )
    if b is not None and truncation == "longest_first":
        if overflow and not fast:
            raise ValueError(
                "return_overflowing_tokens with a pair of texts needs truncation='only_second' (or 'only_first'): "
                "with 'longest_first' transformers' slow tokenizer returns no overflowing tokens"
            )
        n_a, n_b = longest_first_lengths(len(a[0]), len(b[0]), room, odd_to_first=not fast)
        firsts, seconds = windows(a, n_a, stride, overflow, side), windows(b, n_b, stride, overflow, side)
        if not fast:
            return [row(firsts[0], seconds[0])]
        return [row(x, y) for x, y in window_pairs(firsts, seconds)]
    cut_first = b is None or truncation == "only_first"
    target, other = (a, b) if cut_first else (b, a)
    keep = room - (len(other[0]) if other else 0)  # tokens of the cut text that fit
    if keep < 1:
        strategy, other_name = ("only_first", "second") if cut_first else ("only_second", "first")
        raise ValueError(
            f"truncation={strategy!r} cannot fit max_length={max_length}: the {other_name} text alone takes "
            f"{len(other[0])} tokens plus {specials} special tokens; use truncation='longest_first' or "
            f"{'only_second' if cut_first else 'only_first'!r}"
        )
    if fast:
        return [row(w, b) if cut_first else row(a, w) for w in windows(target, keep, stride, overflow, side)]
    removed = len(target[0]) - keep
    kept = cut(target, 0, keep) if side == "right" else cut(target, removed, len(target[0]))
    r = row(kept, b) if cut_first else row(a, kept)
    if overflow:
        width = min(len(target[0]), stride + removed)  # the cut tokens, and ``stride`` kept ones beside them
        ids = target[0]
        r.update(overflowing_tokens=ids[-width:] if side == "right" else ids[:width], num_truncated_tokens=total - max_length)
    return [r]


def longest_first_lengths(n_a: int, n_b: int, room: int, odd_to_first: bool) -> Tuple[int, int]:
    """Tokens kept of each text of a pair cut to ``room`` with "longest_first": the longer text is cut down
    towards the shorter one; where that is not enough both keep half the room, and an odd token stays with
    the first text (transformers' slow class) or with the longer one, the second on a tie (`tokenizers`)."""
    short = min(n_a, n_b)
    if room - short >= short:  # cutting the longer text alone is enough
        return (n_a, room - n_a) if n_a <= n_b else (room - n_b, n_b)
    half, odd = room // 2, room % 2
    return (half + odd, half) if odd_to_first or n_a > n_b else (half, half + odd)


def window_pairs(firsts: List[Piece], seconds: List[Piece]) -> List[Tuple[Piece, Piece]]:
    """The rows of a pair whose texts were both cut into windows, in the `tokenizers` library's order: the
    first windows together, then each later first window with every second window, then the first window
    with each later second window."""
    pairs = [(firsts[0], seconds[0])]
    for x in firsts[1:]:
        pairs += [(x, y) for y in seconds]
    return pairs + [(firsts[0], y) for y in seconds[1:]]


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


def pad_rows(rows: List[dict], padding, max_length: Optional[int], multiple: Optional[int], pad_id: Optional[int],
             side: str = "right") -> None:
    """Pad every row in place, on ``side``, to the batch's longest or to max_length (rows already longer stay)."""
    if not padding:
        return
    if pad_id is None:
        raise ValueError("this tokenizer has no pad_token to pad with; set one, e.g. tokenizer.pad_token = '[PAD]'")
    target = max_length if padding == "max_length" else max(len(r["input_ids"]) for r in rows)
    if multiple:
        target = -(-target // multiple) * multiple
    fill = {"input_ids": pad_id, **_PAD_FILL}
    for r in rows:
        n = target - len(r["input_ids"])
        if n > 0:
            for key, value in fill.items():
                if key in r:
                    r[key] = r[key] + [value] * n if side == "right" else [value] * n + r[key]


def windows(piece: Piece, size: int, stride: int, overflow: bool, side: str = "right") -> List[Piece]:
    """The ``size`` tokens kept at ``side``'s far end (the first ones when cutting on the right), or with
    ``overflow`` every window of ``size`` tokens, each overlapping the one before by ``stride`` tokens, from
    that end until the text is covered (the `tokenizers` library's windows)."""
    n = len(piece[0])
    if n <= size:
        return [piece]
    if size == 0:  # nothing fits: an empty row, and the whole text overflows
        return [cut(piece, 0, 0)] + ([piece] if overflow else [])
    if not overflow:
        return [cut(piece, 0, size) if side == "right" else cut(piece, n - size, n)]
    if stride >= size:
        raise ValueError(f"stride ({stride}) must be smaller than the tokens per window ({size}) so that windows advance")
    if side == "right":
        starts = [0]
        while starts[-1] + size < n:
            starts.append(starts[-1] + size - stride)
        return [cut(piece, s, s + size) for s in starts]
    stops = [n]
    while stops[-1] - size > 0:
        stops.append(stops[-1] - (size - stride))
    return [cut(piece, max(0, s - size), s) for s in stops]


def cut(piece: Piece, start: int, end: int) -> Piece:
    return piece[0][start:end], piece[1][start:end], piece[2][start:end]
