"""numpy helpers shared by the readers, writers and the CLI: bfloat16, dtype casts, file and shape checks."""

from __future__ import annotations

import math
import os
from typing import Dict, Optional

import numpy as np

try:  # bfloat16 for numpy (installed with tensorflow / jax); optional
    from ml_dtypes import bfloat16 as BF16
except ImportError:  # pragma: no cover - depends on the environment
    BF16 = None

DTYPES = ("float32", "float16", "bfloat16")

# What a weights file may declare, checked before numpy sees it: numpy handles 64 dimensions (32 before
# numpy 2) and overflows past 2**63 bytes; no weight comes near either.
MAX_RANK = 32
MAX_ELEMENTS = 2**48


def need_file(path) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such weights file: {path}")
    return path


def is_int(value) -> bool:
    """A Python or numpy integer, not a bool (JSON and pickles say True where they mean 1)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def shape_problem(shape, what: str = "shape") -> Optional[str]:
    """Why ``shape`` (a list or tuple as a file declares it; also strides) is not a usable tensor shape, or None.

    Allowed: at most MAX_RANK integers >= 0 whose product, zero dimensions left out, is at most MAX_ELEMENTS.
    """
    if not isinstance(shape, (list, tuple)):
        return f"{what} {shape!r} is not a list of integers"
    if len(shape) > MAX_RANK:
        return f"{what} has {len(shape)} dimensions; at most {MAX_RANK} are read"
    if not all(is_int(n) and n >= 0 for n in shape):
        return f"{what} {list(shape)!r} must hold integers >= 0"
    if math.prod(int(n) for n in shape if n) > MAX_ELEMENTS:
        return f"{what} {list(shape)} is absurdly large (over {MAX_ELEMENTS} elements)"
    return None


def is_floating(array: np.ndarray) -> bool:
    """float16/32/64 and ml_dtypes' bfloat16 (a numpy 'V' kind dtype)."""
    return np.issubdtype(array.dtype, np.floating) or (BF16 is not None and array.dtype == BF16)


def cast_floats(weights: Dict[str, np.ndarray], dtype: Optional[str]) -> Dict[str, np.ndarray]:
    """The floating tensors as ``dtype`` ("float32", "float16", "bfloat16"; None: unchanged); integer buffers keep theirs.

    Arrays already of that dtype are not copied.
    """
    if dtype is None:
        return weights
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
    if dtype == "bfloat16":
        if BF16 is None:
            raise ImportError("bfloat16 weights need the ml_dtypes package (pip install ml_dtypes)")
        target = np.dtype(BF16)
    else:
        target = np.dtype(dtype)
    return {k: v.astype(target, copy=False) if is_floating(v) else v for k, v in weights.items()}
