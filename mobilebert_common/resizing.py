"""Vocabulary resizing shared by both frameworks (resize_token_embeddings): the new size, and the rows
for added tokens, with transformers' rule (4.57, ``mean_resizing=True``) so that code written for it
gets the same kind of model.

Tables are numpy (V, D) arrays, one row per token; the masked-LM head's (D, V) dense weight is passed
transposed. numpy only: the frameworks convert their tensors at the boundary.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

# transformers draws added rows from N(mean, SCALE * covariance of the old rows): all but equal to the
# mean (so an added token starts as an "average" token, not as noise the model has never seen), and
# still distinct from each other.
COVARIANCE_SCALE = 1e-9


def new_vocab_size(new_num_tokens, pad_to_multiple_of, pad_token_id: int) -> int:
    """The checked target size, rounded up to a multiple of pad_to_multiple_of when given (as transformers)."""
    for name, value in (("new_num_tokens", new_num_tokens), ("pad_to_multiple_of", pad_to_multiple_of)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    size = int(new_num_tokens)
    if pad_to_multiple_of is not None:
        size = -(-size // int(pad_to_multiple_of)) * int(pad_to_multiple_of)
    if size <= pad_token_id:
        raise ValueError(f"new_num_tokens={size} would drop the padding id {pad_token_id} (config.pad_token_id)")
    return size


def added_rows(old: np.ndarray, count: int, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """(count, D) float32 rows for tokens added to the (V, D) table ``old``.

    Drawn from N(mean, COVARIANCE_SCALE * covariance) of the old rows when that covariance is positive
    definite; otherwise (fewer rows than D + 1, a constant column) every added row is the mean.
    """
    old = np.asarray(old, dtype=np.float64)
    mean = old.mean(axis=0)  # (D,)
    centered = old - mean
    covariance = centered.T @ centered / len(old) * COVARIANCE_SCALE  # (D, D)
    try:
        factor = np.linalg.cholesky(covariance)  # fails exactly when the covariance is not positive definite
    except np.linalg.LinAlgError:
        return np.repeat(mean[None, :], count, axis=0).astype(np.float32)
    rng = rng if rng is not None else np.random.default_rng()
    return (mean + rng.standard_normal((count, len(mean))) @ factor.T).astype(np.float32)


def resized_table(old: np.ndarray, new_size: int, rng: Optional[np.random.Generator] = None,
                  mean_resizing: bool = True, init=None) -> np.ndarray:
    """(new_size, D): the first min(V, new_size) rows of ``old`` kept; added rows by ``added_rows``, or, with
    mean_resizing=False, ``init(count, D)`` (the model's own initialiser, as transformers)."""
    old = np.asarray(old)
    keep = min(len(old), new_size)
    count = new_size - keep
    if count == 0:
        return old[:keep].astype(np.float32)
    extra = added_rows(old, count, rng) if mean_resizing else np.asarray(init((count, old.shape[1])), np.float32)
    return np.concatenate([old[:keep].astype(np.float32), extra], axis=0)


def resized_bias(old: np.ndarray, new_size: int) -> np.ndarray:
    """(new_size,): the masked-LM output bias; added tokens get 0, as transformers pads the bias that is
    tied to the decoder (MobileBERT's ``decoder.bias``)."""
    old = np.asarray(old, dtype=np.float32)
    keep = min(len(old), new_size)
    return np.concatenate([old[:keep], np.zeros(new_size - keep, np.float32)])


def require_tied_decoder(config) -> None:
    """The masked-LM decoder IS the word-embedding table here (the hub's layout); an untied one is refused at
    build time rather than silently tied."""
    if not config.tie_word_embeddings:
        raise ValueError(
            "tie_word_embeddings=False is not supported by the masked-LM heads: their decoder is the word-embedding "
            "table (the released checkpoints' layout, where the decoder is not stored apart). Use "
            "tie_word_embeddings=True (the default), or a model class without a masked-LM head")
