"""Tiny MobileBERT configs that together cover every option of the config, small utilities, and one
small adapter per framework (build, run, weights) so that contracts read the same for PyTorch and Keras.

Each variant is small enough that a forward pass takes milliseconds, yet keeps MobileBERT's
shape relations (embedding_size < hidden_size, a bottleneck narrower than hidden_size).
"""

from __future__ import annotations

import importlib
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mobilebert_common import MobileBertConfig
from mobilebert_common import weights as weight_table

SHARED_VOCAB = Path(__file__).resolve().parents[3] / "shared" / "data" / "vocab-uncased.txt"

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    embedding_size=16,
    intra_bottleneck_size=16,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=24,
    num_feedforward_networks=2,
    max_position_embeddings=40,
    type_vocab_size=2,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
)

# name -> overrides of TINY. Together: bottleneck on/off, shared / separate query-key bottleneck,
# bottleneck attention on/off (with and without the shared bottleneck, whose weights it then leaves
# unused), no_norm / layer_norm, trigram on/off, embedding_size == hidden_size (the embedding
# transformation unused), 1..4 FFNs, relu / gelu, classifier_activation on/off.
VARIANTS = {
    "default": {},  # bottleneck, shared q/k bottleneck, no_norm, trigram, 2 FFNs, relu, pooler tanh
    "layer_norm_gelu": dict(normalization_type="layer_norm", hidden_act="gelu", num_feedforward_networks=1,
                            use_bottleneck_attention=True),  # + the shared bottleneck, unused
    "bottleneck_attention": dict(use_bottleneck_attention=True, key_query_shared_bottleneck=False, num_feedforward_networks=3),
    "separate_qk_no_bottleneck": dict(use_bottleneck=False, key_query_shared_bottleneck=False, trigram_input=False, num_feedforward_networks=4),
    "no_trigram_no_pooler_act": dict(trigram_input=False, classifier_activation=False, num_feedforward_networks=4,
                                     embedding_size=32),  # E == H: the embedding transformation unused
}


def unused_parameters(config: MobileBertConfig, architecture: str, kind: str = "pt") -> set:
    """Names (`kind` "pt" or "tf") of the weights the checkpoint layout holds but forward never reads (no gradient)."""
    return {e.pt_name if kind == "pt" else e.tf_name for e in weight_table.entries(config, architecture) if e.unused}


def tiny_config(variant: str = "default", **overrides) -> MobileBertConfig:
    return MobileBertConfig(**{**TINY, **VARIANTS[variant], **overrides})


def random_inputs(config: MobileBertConfig, batch: int = 2, seq: int = 7, seed: int = 0, pad_last: int = 2) -> dict:
    """input_ids, attention_mask (last row padded on the right by pad_last), token_type_ids as int64 numpy."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(1, config.vocab_size, size=(batch, seq), dtype=np.int64)
    attention_mask = np.ones((batch, seq), dtype=np.int64)
    if pad_last:
        attention_mask[-1, seq - pad_last:] = 0
        input_ids[-1, seq - pad_last:] = config.pad_token_id
    token_type_ids = np.zeros((batch, seq), dtype=np.int64)
    token_type_ids[:, seq // 2:] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def relative_error(actual, expected) -> float:
    """max|a-b| / max(1, max|b|): MobileBERT activations are large (DESIGN.md, Numerics)."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape mismatch: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))) if b.size else 0.0)


def assert_close(actual, expected, rtol: float = 1e-5, what: str = "values") -> None:
    err = relative_error(actual, expected)
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:g}"


def make_pt(cls_name="MobileBertForMaskedLM", variant="default", seed=0, noise=0.3, **overrides):
    """A seeded tiny PyTorch model in eval mode, every parameter perturbed by N(0, noise) (away from the init)."""
    import torch

    import mobilebert_pt

    torch.manual_seed(seed)
    model = getattr(mobilebert_pt, cls_name)(tiny_config(variant, **overrides)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * noise)
    return model


def randomize(model, seed: int, embeddings_std: float) -> None:
    """Order-one PyTorch weights (at the init's std 0.02 every activation is near zero and any two models
    agree): norm scales 1 + N(0, 0.1), biases N(0, 0.1), the embedding tables and the embedding
    transformation N(0, embeddings_std), the head's dense rows N(0, 0.2), other dense std 1/sqrt(fan_in)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("LayerNorm.weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif p.dim() == 1:
                p.copy_(0.1 * noise)
            elif "embeddings" in name:
                p.copy_(embeddings_std * noise)
            elif name.endswith("predictions.dense.weight"):
                p.copy_(0.2 * noise)
            else:
                p.copy_(noise / p.shape[1] ** 0.5)


def pt_inputs(config, cls_name="MobileBertForMaskedLM", seed=0):
    """random_inputs as torch tensors; multiple choice gets (batch=2, choices=2, seq=7)."""
    import torch

    x = {k: torch.from_numpy(v) for k, v in random_inputs(config, seed=seed).items()}
    if cls_name == "MobileBertForMultipleChoice":
        x = {k: torch.stack([v, v.flip(1)], dim=1) for k, v in x.items()}  # (B=2, C=2, T)
    return x


# ------------------------------------------------------------------ framework adapters
# One small adapter per framework, so equivalence tests read the same for PyTorch and Keras.
#
# Weights travel as {name: numpy array} in each framework's own naming (PyTorch state-dict keys,
# Keras weight names without the model prefix), outputs as {field: numpy array} with tuples
# flattened ("hidden_states.0", "attentions.1", ...). Torch and TensorFlow are imported lazily so
# that a machine with only one of them can still run the half it has.

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


# ------------------------------------------------------------------ one adapter object per framework


@dataclass(frozen=True)
class Framework:
    """A framework as the contracts written once for both see it (the `framework` fixture of conftest.py).

    Its package, class names ("" / "TF" + the PyTorch name), tensors, and the build / run above; a
    case whose framework is not installed skips.
    """

    name: str     # "pt" / "tf": the test id
    backend: str  # "torch" / "tensorflow"
    package: str  # "mobilebert_pt" / "mobilebert_tf"
    prefix: str   # class-name prefix: "" / "TF"

    def module(self, name: str = ""):
        """The package, or its submodule `name` ("modeling", "inputs", ...)."""
        pytest.importorskip(self.backend)
        return importlib.import_module(f"{self.package}.{name}" if name else self.package)

    def tensor(self, value):
        """torch.tensor / tf.constant of a list or numpy array (dtypes as each framework infers them)."""
        return self.lib().tensor(value) if self.name == "pt" else self.lib().constant(value)

    def build(self, architecture: str, config: MobileBertConfig, weights: dict | None = None):
        self.lib()  # a skip, not an ImportError, where the framework is not installed
        return (build_pt if self.name == "pt" else build_tf)(architecture, config, weights)

    def model(self, architecture: str, variant: str = "default", seed: int = 0, **overrides):
        """A tiny model with random_weights (order one, the same numbers in both frameworks), in inference mode."""
        config = tiny_config(variant, **overrides)
        return self.build(architecture, config, random_weights(config, architecture, self.name, seed))

    def run(self, model, inputs: dict, **kwargs) -> dict:
        return (run_pt if self.name == "pt" else run_tf)(model, inputs, **kwargs)

    def lib(self):
        """torch / tensorflow itself (a skip where it is not installed)."""
        return pytest.importorskip(self.backend)

    def numpy(self, value) -> np.ndarray:
        """A tensor or variable of either framework as a numpy array."""
        return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)

    def call(self, model, inputs: dict, training: bool = False, **kwargs):
        """model(**inputs, **kwargs) as the model returns it (an output or a tuple), without gradients; numpy
        arrays become tensors, anything else (lists, strings) passes as it is. `training` is PyTorch's
        train() mode, Keras's training argument."""
        given = {k: self.tensor(v) if isinstance(v, np.ndarray) else v for k, v in inputs.items()}
        if self.name == "tf":
            return model(**given, training=training, **kwargs)
        with self.lib().no_grad():
            return model.train(training)(**given, **kwargs)

    def gradients(self, model, inputs: dict) -> tuple:
        """(loss, {weight name: gradient or None}) of one training-mode step (dropout on) with the labels in
        `inputs`; names as in the weights table (PyTorch state-dict keys, Keras names without the model prefix).
        The dropout draws are seeded: unseeded, which units drop depended on the tests run before in the process,
        and a tiny model's weight could once in a while get an all-zero gradient by chance (a flaky test)."""
        if self.name == "pt":
            self.lib().manual_seed(0)
            model.train().zero_grad()
            loss = model(**{k: self.tensor(v) for k, v in inputs.items()}).loss
            loss.backward()
            return float(loss.detach()), {n: None if p.grad is None else self.numpy(p.grad) for n, p in model.named_parameters()}
        tf = self.lib()
        from mobilebert_tf.pretrained import weights_by_name

        variables = weights_by_name(model)
        tf.random.set_seed(0)
        with tf.GradientTape() as tape:
            loss = model({k: tf.constant(v) for k, v in inputs.items()}, training=True).loss
        grads = tape.gradient(loss, list(variables.values()))  # embedding lookups give IndexedSlices: made dense
        return float(loss), {n: None if g is None else tf.convert_to_tensor(g).numpy() for n, g in zip(variables, grads)}

    @contextmanager
    def no_kernel(self, model):
        """Fail the test if the embeddings run inside the block: the input checks must come first."""
        embeddings = getattr(model, "mobilebert", model).embeddings

        def fail(*_, **__):
            raise AssertionError("a kernel ran before the input was checked")

        if self.name == "pt":
            handle = embeddings.register_forward_pre_hook(fail)
            try:
                yield
            finally:
                handle.remove()
        else:
            embeddings.call = fail  # an instance attribute: Keras's __call__ finds it before the class's call
            try:
                yield
            finally:
                del embeddings.call


FRAMEWORKS = {"pt": Framework("pt", "torch", "mobilebert_pt", ""), "tf": Framework("tf", "tensorflow", "mobilebert_tf", "TF")}
