"""Google's original TF1 MobileBERT checkpoints (google-research/mobilebert) -> PyTorch / TF names.

The only module of `conversion` that imports tensorflow (for its checkpoint reader), and only
when a checkpoint is read.

    read_tf1_checkpoint(path, skipped=None) -> {TF1 variable name: array}   optimizer state left out
    tf1_to_pt(tf1_weights, config, architecture=None, skipped=None) -> {PT name: array}
    tf1_to_tf(tf1_weights, config, architecture=None, skipped=None) -> {TF h5 name: array}

TF1 names (weight_map.Entry.tf1_name): bert/embeddings/word_embeddings (V, E), bert/encoder/layer_N/
attention/self/query/kernel (in, out), ffn_layer_i, FakeLayerNorm/{gamma,beta} for NoNorm,
cls/predictions/extra_output_weights (V, H - E), cls/seq_relationship/output_weights (2, H),
cls/squad/output_weights (2, H) for SQuAD fine-tunes (-> the question-answering head), and the
classifier fine-tunes' top-level output_weights (num_labels, H) / output_bias.
"""

from __future__ import annotations

import os
import re
from typing import Dict, Optional

import numpy as np

from mobilebert_common import MobileBertConfig

from .convert import ConversionError, _check, _names, pt_to_tf
from .weight_map import Entry, detect_architecture, entries, normalize_architecture

# Optimizer state and bookkeeping in training checkpoints: Adam/LAMB slots, step counters.
_OPTIMIZER = re.compile(r"(^|/)(adam_[mv]|lamb_[mv]|Adam(_\d+)?|LAMB(_\d+)?|Momentum|AdamWeightDecayOptimizer\w*|"
                        r"LAMBOptimizer\w*)(/|$)|(^|/)global_step$|(^|/)beta[12]_power$|^good_steps$|^loss_scale$")


def is_optimizer_state(name: str) -> bool:
    return bool(_OPTIMIZER.search(name))


def read_tf1_checkpoint(path, skipped: Optional[dict] = None) -> Dict[str, np.ndarray]:
    """Model variables of a TF1 checkpoint (a prefix like model.ckpt-5000, or a directory holding one)."""
    import tensorflow as tf  # only here: conversion stays importable without tensorflow

    path = os.fspath(path)
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            index = sorted(f for f in os.listdir(path) if f.endswith(".index"))
            if not index:
                raise FileNotFoundError(f"no TF1 checkpoint in {path}: expected a 'checkpoint' file or <prefix>.index")
            latest = os.path.join(path, index[0][: -len(".index")])
        path = latest
    elif path.endswith(".index") or ".data-" in path:
        path = path[: path.index(".data-")] if ".data-" in path else path[: -len(".index")]
    if not os.path.isfile(path + ".index"):
        raise FileNotFoundError(f"no TF1 checkpoint at {path}: {path}.index does not exist")
    try:
        reader = tf.train.load_checkpoint(path)
        shapes = reader.get_variable_to_shape_map()
        out = {}
        for name in sorted(shapes):
            if is_optimizer_state(name):
                if skipped is not None:
                    skipped[name] = "optimizer state"
                continue
            out[name] = np.asarray(reader.get_tensor(name))
    except (tf.errors.OpError, ValueError) as err:
        raise ValueError(f"{path} is not a readable TF1 checkpoint (truncated or corrupt?): {str(err).splitlines()[0]}") from None
    return out


def _tf1_name(entry: Entry) -> Optional[str]:
    if entry.tf1_name:
        return entry.tf1_name
    # run_classifier.py fine-tunes: top-level output_weights (num_labels, H) / output_bias
    return {"classifier.weight": "output_weights", "classifier.bias": "output_bias"}.get(entry.pt_name)


def _to_pt_layout(tf1_name: str, array: np.ndarray) -> np.ndarray:
    # Dense kernels are (in, out) as in Keras; extra_output_weights is (V, H - E) where PT has (H - E, V);
    # output_weights (2 or num_labels, H) already have PT's layout.
    if tf1_name.endswith("/kernel") or tf1_name.endswith("extra_output_weights"):
        return np.ascontiguousarray(array.T)
    return array


def tf1_to_pt(tf1_weights: Dict[str, np.ndarray], config: MobileBertConfig, architecture: Optional[str] = None,
              skipped: Optional[dict] = None) -> Dict[str, np.ndarray]:
    """{TF1 name: array} -> {PT state-dict name: array}, strict like convert.tf_to_pt."""
    weights = {k: v for k, v in tf1_weights.items() if not is_optimizer_state(k)}
    skip = {k: "optimizer state" for k in tf1_weights if k not in weights}
    arch = normalize_architecture(architecture) if architecture else detect_architecture(weights, "tf1")
    table = [e for e in entries(config, arch) if e.transform != "tie"]  # the decoder is the embeddings
    by_tf1 = {_tf1_name(e): e for e in table}
    if None in by_tf1:
        raise ConversionError(f"{arch} has tensors without a TF1 name: {_names(e.pt_name for e in table if not _tf1_name(e))}")
    for name in list(weights):
        if name.startswith("bert/pooler/") and name not in by_tf1:
            # fine-tuned checkpoints keep the pre-training pooler that heads without one never use
            skip[name] = f"{arch} has no pooler (or classifier_activation is off)"
            del weights[name]
    missing = [n for n in by_tf1 if n not in weights]
    unexpected = [n for n in weights if n not in by_tf1]
    mismatched = []
    for name, entry in by_tf1.items():
        if name in weights:
            got = _to_pt_layout(name, weights[name]).shape
            if tuple(got) != tuple(entry.shape):
                mismatched.append(f"{name} has shape {tuple(weights[name].shape)} "
                                  f"(as PT {tuple(got)}), the config implies PT {tuple(entry.shape)} for {entry.pt_name}")
    _check("TF1", arch, missing, unexpected, mismatched)
    if skipped is not None:
        skipped.update(skip)
    return {e.pt_name: _to_pt_layout(name, weights[name]) for name, e in by_tf1.items()}


def tf1_to_tf(tf1_weights: Dict[str, np.ndarray], config: MobileBertConfig, architecture: Optional[str] = None,
              skipped: Optional[dict] = None) -> Dict[str, np.ndarray]:
    """{TF1 name: array} -> {TF h5 name: array} (through the PT names; the decoder copy is the embeddings)."""
    arch = normalize_architecture(architecture) if architecture else detect_architecture(
        [k for k in tf1_weights if not is_optimizer_state(k)], "tf1")
    return pt_to_tf(tf1_to_pt(tf1_weights, config, arch, skipped), config, arch)
