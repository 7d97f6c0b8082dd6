"""numpy helpers shared by the readers, writers and the CLI: bfloat16, dtype casts, file checks."""

from __future__ import annotations

import os
from typing import Dict, Optional

import numpy as np

try:  # bfloat16 for numpy (installed with tensorflow / jax); optional
    from ml_dtypes import bfloat16 as BF16
except ImportError:  # pragma: no cover - depends on the environment
    BF16 = None

DTYPES = ("float32", "float16", "bfloat16")


def need_file(path) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such weights file: {path}")
    return path


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
