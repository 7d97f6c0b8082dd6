"""Google's original TF1 MobileBERT checkpoints (google-research/mobilebert) -> PyTorch / TF names.

The only module of `conversion` that imports tensorflow (for its checkpoint reader), and only
when a checkpoint is read.

    read_tf1_checkpoint(path, skipped=None) -> {TF1 variable name: array}   optimizer state left out
    tf1_to_pt(tf1_weights, config, architecture=None, skipped=None, filled=None) -> {PT name: array}
    tf1_to_tf(tf1_weights, config, architecture=None, skipped=None, filled=None) -> {TF h5 name: array}

Names and layouts come from the table (weights.Entry.tf1_name, .tf1_transform): bert/embeddings/
word_embeddings (V, E), bert/encoder/layer_N/attention/self/query/kernel (in, out), ffn_layer_i,
FakeLayerNorm/{gamma,beta} for NoNorm, cls/predictions/extra_output_weights (V, H - E),
cls/seq_relationship/output_weights (2, H), cls/squad/output_weights (2, H) for SQuAD fine-tunes
(-> the question-answering head), and run_classifier fine-tunes' top-level output_weights
(num_labels, H) / output_bias.
"""

from __future__ import annotations

import os
import re
from typing import Dict, Optional

import numpy as np

from mobilebert_common import MobileBertConfig

from .arrays import is_floating
from .convert import _check, pt_to_tf
from mobilebert_common.weights import Entry, detect_architecture, entries, normalize_architecture

# Optimizer state and bookkeeping in training checkpoints: Adam/LAMB slots (BERT's optimizers name them
# <var>/adam_m, <var>/adam_v; TF1 tf.train optimizers <var>/<Name>, <var>/<Name>_1, e.g. <var>/LAMB_1),
# their beta powers, step counters and loss-scale state.
_OPTIMIZER = re.compile(r"(^|/)(adam_[mv]|lamb_[mv]|Adam(_\d+)?|LAMB(_\d+)?|Momentum|AdamWeightDecayOptimizer\w*|"
                        r"LAMBOptimizer\w*)(/|$)|(^|/)global_step$|(^|/)beta[12]_power$|^good_steps$|^loss_scale$")
FILLED_REASON = "not in the TF1 checkpoint, and unused by this config (forward never reads it): filled with zeros"


def is_optimizer_state(name: str) -> bool:
    return bool(_OPTIMIZER.search(name))


def read_tf1_checkpoint(path, skipped: Optional[dict] = None) -> Dict[str, np.ndarray]:
    """Model variables of a TF1 checkpoint (a prefix like model.ckpt-5000, or a directory holding one)."""
    path = os.fspath(path)
    if not (os.path.isdir(path) or os.path.isfile(path) or os.path.isfile(path + ".index")):
        # Before importing tensorflow: a wrong path fails at once.
        raise FileNotFoundError(f"no TF1 checkpoint at {path}: neither {path}.index nor a directory holding one exists "
                                "(TF1 checkpoints are read from local files)")
    import tensorflow as tf  # only here: conversion stays importable without tensorflow

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


def _to_pt_layout(entry: Entry, array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.T) if entry.tf1_transform == "transpose" else array


def tf1_to_pt(tf1_weights: Dict[str, np.ndarray], config: MobileBertConfig, architecture: Optional[str] = None,
              skipped: Optional[dict] = None, filled: Optional[dict] = None) -> Dict[str, np.ndarray]:
    """{TF1 name: array} -> {PT state-dict name: array}, strict like convert.tf_to_pt.

    ``skipped`` gets {TF1 name: reason} of the source tensors left out (optimizer state, an unused
    pooler), ``filled`` {PT name: reason} of the tensors filled with zeros (see below).
    """
    weights = {k: v for k, v in tf1_weights.items() if not is_optimizer_state(k)}
    skip = {k: "optimizer state" for k in tf1_weights if k not in weights}
    arch = normalize_architecture(architecture) if architecture else detect_architecture(weights, "tf1")
    table = [e for e in entries(config, arch) if e.transform != "tie"]  # the decoder is the embeddings
    by_tf1 = {e.tf1_name: e for e in table}
    for name in list(weights):
        if name.startswith("bert/pooler/") and name not in by_tf1:
            # fine-tuned checkpoints keep the pre-training pooler that heads without one never use
            skip[name] = f"{arch} has no pooler (or classifier_activation is off)"
            del weights[name]
    # Google's TF1 code builds embedding_transformation only with trigram_input or E != H, and the shared
    # q/k bottleneck only where attention reads it; the hub's models (and ours) build both always, so its
    # checkpoints lack tensors that this config never reads (Entry.unused). Zeros fill them: deterministic,
    # and no output depends on them. Reported, never silent.
    fill = [name for name, e in by_tf1.items() if e.unused and name not in weights]
    missing = [n for n in by_tf1 if n not in weights and n not in fill]
    unexpected = [n for n in weights if n not in by_tf1]
    mismatched = [f"{name} has shape {tuple(np.shape(weights[name]))}, the config implies {e.tf1_shape} (PT {e.pt_name})"
                  for name, e in by_tf1.items() if name in weights and tuple(np.shape(weights[name])) != e.tf1_shape]
    not_float = [f"{name} ({weights[name].dtype})" for name in by_tf1
                 if name in weights and not is_floating(np.asarray(weights[name]))]
    _check("TF1", arch, missing, unexpected, mismatched, not_float)
    dtype = next((v.dtype for v in weights.values() if np.issubdtype(v.dtype, np.floating)), np.dtype(np.float32))
    out = {e.pt_name: np.zeros(e.shape, dtype) if name in fill else _to_pt_layout(e, weights[name])
           for name, e in by_tf1.items()}
    if skipped is not None:
        skipped.update(skip)
    if filled is not None:
        filled.update((by_tf1[name].pt_name, FILLED_REASON) for name in fill)
    return out


def tf1_to_tf(tf1_weights: Dict[str, np.ndarray], config: MobileBertConfig, architecture: Optional[str] = None,
              skipped: Optional[dict] = None, filled: Optional[dict] = None) -> Dict[str, np.ndarray]:
    """{TF1 name: array} -> {TF h5 name: array} (through the PT names; the decoder copy is the embeddings)."""
    arch = normalize_architecture(architecture) if architecture else detect_architecture(
        [k for k in tf1_weights if not is_optimizer_state(k)], "tf1")
    return pt_to_tf(tf1_to_pt(tf1_weights, config, arch, skipped, filled), config, arch)
