"""The tokenizers' output, BatchEncoding, and the value conversions both tokenizers share.

BatchEncoding is a dict of rows (lists, or int64 tensors of shape (batch, seq)) that also reads as
attributes and remembers, per row, which word and which text of a pair each token came from.
"""

from __future__ import annotations

import importlib
from typing import List, Optional

import numpy as np

TENSOR_TYPES = (None, "np", "pt", "tf")


class BatchEncoding(dict):
    """The tokenizer's output: a dict (``enc["input_ids"]``) that also reads as attributes
    (``enc.input_ids``), moves torch tensors with ``.to(device)``, and tells for every row which
    word (``word_ids(i)``) and which text of a pair (``sequence_ids(i)``) each token comes from."""

    def __init__(self, data=None, words=None, sequences=None, batched=True):
        super().__init__(data or {})
        self._words = words or []  # per row: word index or None, for every token
        self._sequences = sequences or []  # per row: 0 / 1 / None, for every token
        self._batched = batched

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key {name!r}; it holds {sorted(self)}") from None

    def __getstate__(self):
        return {"data": dict(self), "words": self._words, "sequences": self._sequences, "batched": self._batched}

    def __setstate__(self, state):
        self.update(state["data"])
        self._words, self._sequences, self._batched = state["words"], state["sequences"], state["batched"]

    def _row(self, table, i):
        if not table:
            raise ValueError("this BatchEncoding carries no word/sequence information")
        if not -len(table) <= i < len(table):
            raise IndexError(f"row {i} out of range: this batch has {len(table)} rows")
        return list(table[i])

    def word_ids(self, batch_index: int = 0) -> List[Optional[int]]:
        """Word index (within its own text) of every token of a row; None for special and padding tokens."""
        return self._row(self._words, batch_index)

    def sequence_ids(self, batch_index: int = 0) -> List[Optional[int]]:
        """0 for tokens of the first text, 1 for the second, None for special and padding tokens."""
        return self._row(self._sequences, batch_index)

    def to(self, device) -> "BatchEncoding":
        """Move every torch tensor to ``device`` (in place; returns self, as users chain it)."""
        for key, value in self.items():
            if hasattr(value, "to") and type(value).__module__.startswith("torch"):
                self[key] = value.to(device)
        return self

    def convert_to_tensors(self, tensor_type):
        for key, value in self.items():
            self[key] = to_tensor(value, tensor_type, key)
        return self


def to_tensor(rows, tensor_type: Optional[str], key: str = "values"):
    """Lists of equal-length rows -> numpy / torch / TensorFlow tensor: int64 for integers (ids, masks, labels),
    float32 for floats (e.g. regression labels passed through pad)."""
    if tensor_type is None:
        return rows
    if tensor_type not in TENSOR_TYPES:
        raise ValueError(f"return_tensors must be one of {TENSOR_TYPES}, got {tensor_type!r}")
    try:
        array = np.asarray(as_lists(rows))
    except ValueError:
        array = None
    if array is None or array.dtype == object:
        raise ValueError(
            f"{key} rows have different lengths and cannot form one tensor; pass padding=True (or "
            f"padding='max_length' with max_length=) together with return_tensors={tensor_type!r}"
        )
    if array.dtype.kind not in "iubf":
        raise ValueError(f"{key} holds {array.dtype} values, which cannot form a tensor of numbers")
    array = array.astype(np.float32 if array.dtype.kind == "f" else np.int64)
    if tensor_type == "np":
        return array
    module = {"pt": "torch", "tf": "tensorflow"}[tensor_type]
    try:
        framework = importlib.import_module(module)
    except ImportError:
        raise ImportError(f"return_tensors={tensor_type!r} needs {module}, which is not installed; use return_tensors='np'") from None
    return framework.from_numpy(array) if tensor_type == "pt" else framework.constant(array)


def check_text(value, what):
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str (or a list of str for a batch), got {type(value).__name__}: {value!r:.60}")
    return value


def is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def to_ids(ids, what: str = "token_ids") -> List[int]:
    """One id, or a list / tuple / numpy array / tensor of ids -> a list of Python ints.

    Only integers are ids (Python, numpy or framework integers): a float is refused even when integral,
    as transformers' fast tokenizer does (int(1.5) would quietly give token 1), and so are bools,
    strings and None."""
    if type(ids) is list and all(type(v) is int for v in ids):
        return list(ids)  # the common case, plain ints (type() is int excludes bool): no per-item checks below
    if is_int(ids):
        return [int(ids)]
    if not isinstance(ids, (list, tuple, np.ndarray)) and not hasattr(ids, "numpy"):
        raise ValueError(f"{what} must be a token id or a sequence of ids (list, numpy array, tensor), "
                         f"got {type(ids).__name__}: {ids!r:.60}")
    try:
        ids = _numpy(ids)
    except TypeError as err:  # e.g. a bfloat16 torch tensor, which numpy cannot hold
        raise ValueError(f"{what} must hold integer token ids ({err})") from None
    if isinstance(ids, np.ndarray) and ids.dtype.kind not in "iuO":
        raise ValueError(f"{what} has dtype {ids.dtype}; token ids must be integers")
    values = to_list(ids)
    for i, value in enumerate(values):
        if isinstance(value, (list, tuple)):
            raise ValueError(f"{what} must be one sequence of ids, got a nested one; use batch_decode for a batch")
        if not is_int(value):
            raise ValueError(f"{what}[{i}] is {value!r} ({type(value).__name__}); token ids must be integers "
                             "(int, numpy or tensor integers), not floats, bools, strings or None")
    return [int(v) for v in values]


def _numpy(ids):
    """A framework tensor -> numpy array; anything else as it is."""
    if hasattr(ids, "numpy") and not isinstance(ids, np.ndarray):
        return ids.numpy() if not hasattr(ids, "detach") else ids.detach().cpu().numpy()
    return ids


def as_lists(value):
    """Tensors, arrays and (nested) lists of them -> nested Python lists of ints; tuples stay tuples (offsets)."""
    value = _numpy(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return type(value)(as_lists(v) for v in value)
    return int(value) if isinstance(value, np.integer) else value


def to_list(ids):
    """A list, tuple, numpy array or framework tensor of ids -> a Python list (a 0-d one -> [id])."""
    ids = _numpy(ids)
    if isinstance(ids, np.ndarray):
        return ids.tolist() if ids.ndim else [ids.item()]
    return list(ids)
