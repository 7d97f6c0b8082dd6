"""PyTorch <-> TF weight conversion, strict, numpy only.

    pt_to_tf(pt_weights, config, architecture=None, skipped=None) -> {TF name: array}
    tf_to_pt(tf_weights, config, architecture=None, skipped=None) -> {PT name: array}

Strict: every source tensor is used (except the ones weights.unused_by_design lists: they are
skipped and, when `skipped` is a dict, reported there as {name: reason}), every target tensor is
filled, shapes are checked against the config, every weight is floating point (as the model's are).
Any violation raises ConversionError naming the tensors; nothing is returned half-done. The source dtype is kept; arrays are not copied unless a
transpose requires it.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional

import numpy as np

from mobilebert_common import MobileBertConfig

from .arrays import is_floating
from mobilebert_common.weights import Entry, entries, resolve_architecture, unused_by_design

DECODER_BIAS_PT = "cls.predictions.decoder.bias"  # older PT files also saved the decoder bias (= cls.predictions.bias)


class ConversionError(ValueError):
    """A checkpoint does not match the model the config describes; the message names the tensors."""


def _names(names: Iterable[str], limit: int = 8) -> str:
    names = sorted(names)
    more = f" (and {len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _check(source_kind: str, arch: str, missing: List[str], unexpected: List[str], mismatched: List[str],
           not_float: List[str]) -> None:
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensor(s): {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} tensor(s) that {arch} does not have: {_names(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch: {_names(mismatched, 5)}")
    if not_float:
        problems.append(f"{len(not_float)} tensor(s) not floating point, as every MobileBERT weight is: {_names(not_float, 5)}")
    if problems:
        raise ConversionError(f"the {source_kind} weights do not match {arch} with this config: " + "; ".join(problems))


def _shape_problem(name: str, array: np.ndarray, expected: tuple) -> Optional[str]:
    if tuple(np.shape(array)) != tuple(expected):
        return f"{name} has shape {tuple(np.shape(array))}, the config implies {tuple(expected)}"
    return None


def _require_tied(decoder_name: str, decoder: np.ndarray, embeddings_name: str, embeddings: np.ndarray) -> None:
    if np.shape(decoder) != np.shape(embeddings) or not np.array_equal(decoder, embeddings):
        raise ConversionError(
            f"{decoder_name} differs from the word embeddings {embeddings_name}; MobileBERT ties the masked-LM "
            "decoder to the word embeddings, so an untied decoder cannot be converted")


def _transform(entry: Entry, array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.T) if entry.transform == "transpose" else array


def pt_to_tf(pt_weights: Dict[str, np.ndarray], config: MobileBertConfig, architecture: Optional[str] = None,
             skipped: Optional[dict] = None) -> Dict[str, np.ndarray]:
    """{PT state-dict name: array} -> {TF h5 name without model prefix: array}."""
    arch = resolve_architecture(pt_weights, "pt", config, architecture)
    table = entries(config, arch)
    unused = unused_by_design(config, arch, "pt")
    by_pt = {e.pt_name: e for e in table}
    missing = [e.pt_name for e in table if e.transform != "tie" and e.pt_name not in pt_weights]
    unexpected, mismatched, not_float, skip = [], [], [], {}
    for name, array in pt_weights.items():
        entry = by_pt.get(name)
        if entry is None:
            if name in unused:
                skip[name] = unused[name]
            elif name == DECODER_BIAS_PT and "cls.predictions.bias" in by_pt:
                skip[name] = "the decoder bias is cls.predictions.bias"
            else:
                unexpected.append(name)
        elif entry.transform == "tie":
            skip[name] = f"tied to {entry.tied_to}"  # checked equal below
        else:
            problem = _shape_problem(name, array, entry.shape)
            if problem:
                mismatched.append(problem)
            if not is_floating(np.asarray(array)):
                not_float.append(f"{name} ({np.asarray(array).dtype})")
    _check("PyTorch", arch, missing, unexpected, mismatched, not_float)
    out = {}
    for e in table:
        if e.transform == "tie":
            if e.pt_name in pt_weights:
                _require_tied(e.pt_name, pt_weights[e.pt_name], e.tied_to, pt_weights[e.tied_to])
            out[e.tf_name] = pt_weights[e.tied_to]
        else:
            out[e.tf_name] = _transform(e, pt_weights[e.pt_name])
    if DECODER_BIAS_PT in pt_weights and not np.array_equal(pt_weights[DECODER_BIAS_PT], pt_weights["cls.predictions.bias"]):
        raise ConversionError(f"{DECODER_BIAS_PT} differs from cls.predictions.bias; they are one tensor in MobileBERT")
    if skipped is not None:
        skipped.update(skip)
    return out


def tf_to_pt(tf_weights: Dict[str, np.ndarray], config: MobileBertConfig, architecture: Optional[str] = None,
             skipped: Optional[dict] = None) -> Dict[str, np.ndarray]:
    """{TF h5 name without model prefix: array} -> {PT state-dict name: array} (no decoder: PT ties it)."""
    arch = resolve_architecture(tf_weights, "tf", config, architecture)
    table = entries(config, arch)
    unused = unused_by_design(config, arch, "tf")
    by_tf = {e.tf_name: e for e in table}
    # The decoder copy may be absent: the PT model ties it anyway. When present it must equal the embeddings.
    missing = [e.tf_name for e in table if e.transform != "tie" and e.tf_name not in tf_weights]
    unexpected, mismatched, not_float, skip = [], [], [], {}
    for name, array in tf_weights.items():
        entry = by_tf.get(name)
        if entry is None:
            if name in unused:
                skip[name] = unused[name]
            else:
                unexpected.append(name)
        else:
            problem = _shape_problem(name, array, entry.tf_shape)
            if problem:
                mismatched.append(problem)
            if not is_floating(np.asarray(array)):
                not_float.append(f"{name} ({np.asarray(array).dtype})")
    _check("TF", arch, missing, unexpected, mismatched, not_float)
    by_pt = {e.pt_name: e for e in table}
    out = {}
    for e in table:
        if e.transform == "tie":
            if e.tf_name in tf_weights:
                source = by_pt[e.tied_to].tf_name
                _require_tied(e.tf_name, tf_weights[e.tf_name], source, tf_weights[source])
                skip[e.tf_name] = f"tied to {source} (PyTorch ties the decoder; it is not stored)"
            continue
        out[e.pt_name] = _transform(e, tf_weights[e.tf_name])
    if skipped is not None:
        skipped.update(skip)
    return out
