"""One small adapter per framework, so equivalence tests read the same for PyTorch and Keras.

Weights travel as {name: numpy array} in each framework's own naming (PyTorch state-dict keys,
Keras weight names without the model prefix), outputs as {field: numpy array} with tuples
flattened ("hidden_states.0", "attentions.1", ...). Torch and TensorFlow are imported lazily so
that a machine with only one of them can still run the half it has.
"""

from __future__ import annotations

import zlib

import numpy as np

from mobilebert_common import weights as weight_table
from mobilebert_common import MobileBertConfig
from tests.helpers import random_inputs

ARCHITECTURES = list(weight_table.ARCHITECTURES)  # "MobileBertModel", "MobileBertForPreTraining", ...


def model_inputs(config: MobileBertConfig, architecture: str, seed: int = 0) -> dict:
    """int64 numpy inputs; multiple choice gets (batch=2, choices=3, seq=7), the others (2, 7)."""
    if architecture != "MobileBertForMultipleChoice":
        return random_inputs(config, seed=seed)
    choices = [random_inputs(config, seed=seed + c) for c in range(3)]
    return {k: np.stack([c[k] for c in choices], axis=1) for k in choices[0]}


def random_weights(config: MobileBertConfig, architecture: str, kind: str, seed: int = 0) -> dict:
    """Weights of order-one scale in `kind` ("pt" or "tf") naming, for numbers that test something.

    Initialisers at std 0.02 give activations near zero, where any two implementations agree;
    here dense weights have std 1/sqrt(fan_in), embeddings std 1, norms 1 + N(0, 0.1).
    """
    rng = np.random.default_rng(zlib.crc32(f"{architecture}/{seed}".encode()))
    out = {}
    for entry in weight_table.entries(config, architecture):
        if entry.transform == "tie":
            continue
        shape = entry.shape
        if entry.pt_name.endswith(("LayerNorm.weight",)):
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        elif entry.transform == "transpose":
            value = rng.standard_normal(shape) / np.sqrt(shape[1])
            # Hidden states reach ~100 here. Keep the inputs of tanh and of the attention softmax
            # O(1): saturated, they would hide errors, and they would amplify float32 noise past 1e-5.
            if entry.pt_name.endswith("pooler.dense.weight"):
                value *= 0.05
            elif entry.pt_name.endswith("attention.self.query.weight"):
                value *= 0.2
        elif len(shape) == 1:
            value = 0.1 * rng.standard_normal(shape)
        else:
            value = rng.standard_normal(shape) * (0.2 if entry.pt_name.endswith("predictions.dense.weight") else 1.0)
        value = value.astype(np.float32)
        if kind == "pt":
            out[entry.pt_name] = value
        else:
            out[entry.tf_name] = value.T.copy() if entry.transform == "transpose" else value
    if kind == "tf":
        # The Keras file layout stores the masked-LM decoder, tied to the word embeddings.
        for entry in weight_table.entries(config, architecture):
            if entry.transform == "tie":
                tied = next(e for e in weight_table.entries(config, architecture) if e.pt_name == entry.tied_to)
                out[entry.tf_name] = out[tied.tf_name]
    return out


def flatten_output(out) -> dict:
    """ModelOutput -> {field: np.ndarray}; tuples become field.0, field.1, ..."""
    arrays = {}
    for key, value in out.items():
        if value is None:
            continue
        if isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                arrays[f"{key}.{i}"] = np.asarray(item)
        else:
            arrays[key] = np.asarray(value)
    return arrays


# ---------------------------------------------------------------------------------------- PyTorch


def build_pt(architecture: str, config: MobileBertConfig, weights: dict | None = None):
    import torch

    import mobilebert_pt

    torch.manual_seed(0)
    model = getattr(mobilebert_pt, architecture)(config).eval()
    if weights is not None:
        state = model.state_dict()
        missing = [k for k in state if k not in weights and not k.endswith("decoder.weight")]
        unexpected = [k for k in weights if k not in state]
        assert not missing and not unexpected, f"missing {missing}, unexpected {unexpected}"
        with torch.no_grad():
            for name, value in weights.items():
                state[name].copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return model


def pt_weights(model) -> dict:
    """The model's weights under the hub's PyTorch key names (the tied decoder left out, as in files)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items() if not k.endswith("decoder.weight")}


def run_pt(model, inputs: dict, device: str = "cpu", **kwargs) -> dict:
    import torch

    model = model.to(device)
    tensors = {k: torch.from_numpy(v).to(device) for k, v in inputs.items()}
    with torch.no_grad():
        out = model(**tensors, **kwargs)
    return {k: v.float().cpu().numpy() if hasattr(v, "cpu") else v for k, v in _torch_flat(out).items()}


def _torch_flat(out) -> dict:
    flat = {}
    for key, value in out.items():
        if value is None:
            continue
        if isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                flat[f"{key}.{i}"] = item
        else:
            flat[key] = value
    return flat


# ------------------------------------------------------------------------------------------ Keras


def build_tf(architecture: str, config: MobileBertConfig, weights: dict | None = None):
    import mobilebert_tf
    from mobilebert_tf.pretrained import weights_by_name

    model = getattr(mobilebert_tf, "TF" + architecture)(config)
    model(model.dummy_inputs, training=False)  # creates every variable
    if weights is not None:
        variables = weights_by_name(model)
        weights = {k: v for k, v in weights.items() if "/decoder/" not in k}  # tied to the word embeddings
        missing = [k for k in variables if k not in weights]
        unexpected = [k for k in weights if k not in variables]
        assert not missing and not unexpected, f"missing {missing}, unexpected {unexpected}"
        for name, value in weights.items():
            variables[name].assign(value)
    return model


def tf_weights(model) -> dict:
    """The model's weights in the tf_model.h5 layout: the masked-LM decoder stored, equal to the word embeddings."""
    from mobilebert_tf.pretrained import weights_by_name

    weights = {k: v.numpy().copy() for k, v in weights_by_name(model).items()}
    if any(k.startswith("predictions___cls/") for k in weights):
        weights["predictions___cls/predictions/decoder/weight:0"] = weights["mobilebert/embeddings/word_embeddings/weight:0"]
    return weights


def run_tf(model, inputs: dict, **kwargs) -> dict:
    import tensorflow as tf

    tensors = {k: tf.constant(v) for k, v in inputs.items()}
    out = model(**tensors, training=False, **kwargs)
    return {k: np.asarray(tf.cast(v, tf.float32)) for k, v in flatten_output(out).items()}
