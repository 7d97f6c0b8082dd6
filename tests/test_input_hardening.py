"""No silent NaN, no silent wrong values from model inputs, written once for PyTorch and Keras.

- NaN/inf in inputs_embeds, a float attention_mask or head_mask: a ValueError naming the input (PyTorch,
  eager Keras), an InvalidArgumentError naming it in a Keras graph.
- Ids of any integer dtype (int8 ... uint64) give the logits of int64 ids; bool and float ids are refused
  with one message in both frameworks.
- Question answering: negative positions are refused; positions >= the sequence length add no loss;
  both frameworks give the hand-computed loss.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

from tests.harness.models import build_pt, build_tf, random_weights
from tests.harness.models import random_inputs, tiny_config

FRAMEWORKS = ["pt", "tf"]
CONFIG = tiny_config(num_hidden_layers=1)


@functools.lru_cache(maxsize=None)
def model(framework: str, architecture: str = "MobileBertForSequenceClassification"):
    """A tiny model with order-one random weights (the same numbers in both frameworks)."""
    pytest.importorskip("torch" if framework == "pt" else "tensorflow")
    build = build_pt if framework == "pt" else build_tf
    return build(architecture, CONFIG, random_weights(CONFIG, architecture, framework))


def call(framework: str, architecture: str = "MobileBertForSequenceClassification", **inputs):
    """Numpy inputs in, the model's output out (both frameworks take numpy arrays). Keras wraps an error's
    message in its own text, so the tests match the message inside it."""
    m = model(framework, architecture)
    if framework == "tf":
        return m(**inputs, training=False)
    import torch

    with torch.no_grad():
        return m(**inputs)


def numpy(value) -> np.ndarray:
    return value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)


def ids():
    return random_inputs(CONFIG, seq=5)  # (2, 5) int64 input_ids, attention_mask, token_type_ids


def embeds(batch: int = 2, seq: int = 5) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((batch, seq, CONFIG.embedding_size)).astype(np.float32)


# ------------------------------------------------------------------ non-finite float inputs


def poisoned(name: str, bad: float) -> dict:
    """Valid inputs with one NaN/inf placed in ``name`` (a float input)."""
    x = ids()
    if name == "inputs_embeds":
        e = embeds()
        e[1, 3, 2] = bad
        return {"inputs_embeds": e, "attention_mask": x["attention_mask"]}
    if name == "attention_mask":
        mask = x["attention_mask"].astype(np.float32)
        mask[0, 2] = bad
        return {**x, "attention_mask": mask}
    head_mask = np.ones((CONFIG.num_hidden_layers, CONFIG.num_attention_heads), np.float32)
    head_mask[0, 1] = bad
    return {**x, "head_mask": head_mask}


NAMES = ["inputs_embeds", "attention_mask", "head_mask"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_inputs_are_value_errors(framework, name, bad):
    with pytest.raises(ValueError, match=rf"{name} holds NaN or inf; every value must be a finite number"):
        call(framework, **poisoned(name, bad))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_finite_float_inputs_still_run(framework):
    """The same inputs with the bad value replaced: logits, finite, that depend on what was replaced."""
    outs = [numpy(call(framework, **poisoned(name, 0.5)).logits) for name in NAMES]
    assert all(o.shape == (2, CONFIG.num_labels) and np.isfinite(o).all() for o in outs)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_non_finite_multiple_choice_embeds_are_value_errors(framework):
    e = embeds(batch=6).reshape(2, 3, 5, CONFIG.embedding_size)
    e[1, 2, 0, 0] = np.nan
    with pytest.raises(ValueError, match="inputs_embeds holds NaN or inf"):
        call(framework, "MobileBertForMultipleChoice", inputs_embeds=e)


def test_keras_takes_a_dict_of_inputs_embeds_without_input_ids():
    """As model.fit passes it: {"inputs_embeds": ...} alone gives the logits of the keyword call."""
    m = model("tf")
    x = {"inputs_embeds": embeds(), "attention_mask": ids()["attention_mask"]}
    np.testing.assert_array_equal(m(x, training=False).logits.numpy(), m(**x, training=False).logits.numpy())


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_float_inputs_in_a_keras_graph(name):
    """tf.function: the check cannot raise at trace time; the assertion fails at run time, naming the input."""
    tf = pytest.importorskip("tensorflow")
    m = model("tf")
    good, bad = poisoned(name, 0.5), poisoned(name, np.nan)
    signature = {k: tf.TensorSpec([None] * v.ndim, tf.as_dtype(v.dtype)) for k, v in good.items()}

    @tf.function(input_signature=[signature])
    def logits(x):
        return m(x, training=False).logits

    assert np.isfinite(logits({k: tf.constant(v) for k, v in good.items()}).numpy()).all()
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"{name} holds NaN or inf"):
        logits({k: tf.constant(v) for k, v in bad.items()})


# ------------------------------------------------------------------ id dtypes


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "uint64"])
def test_every_integer_id_dtype_gives_the_int64_logits(framework, dtype):
    x = ids()
    x["position_ids"] = np.array([[4, 3, 2, 1, 0]], np.int64)
    expected = numpy(call(framework, **x).logits)
    small = {k: v.astype(dtype) for k, v in x.items()}
    np.testing.assert_array_equal(numpy(call(framework, **small).logits), expected)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("dtype, value, got", [("int16", 200, "200"), ("int8", -1, "-1"), ("uint8", 99, "99")])
def test_small_integer_ids_out_of_range_are_still_refused(framework, dtype, value, got):
    x = ids()
    x["input_ids"] = x["input_ids"].astype(dtype)
    x["input_ids"][0, 1] = value
    with pytest.raises(ValueError, match=rf"input_ids must hold ids in \[0, 99\) \(config.vocab_size\); got {got}\b"):
        call(framework, **x)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ["input_ids", "token_type_ids", "position_ids"])
@pytest.mark.parametrize("dtype", ["bool", "float32"])  # Keras casts a first float64 argument to float32
def test_bool_and_float_ids_are_refused_with_one_message(framework, name, dtype):
    x = {**ids(), name: np.zeros((2, 5), dtype)}
    message = rf"{name} must hold integer ids \(any integer dtype: int64, int32, uint8 ...\), got dtype {dtype}\b"
    with pytest.raises(ValueError, match=message):
        call(framework, **x)


# ------------------------------------------------------------------ question-answering positions

QA = "MobileBertForQuestionAnswering"


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ["start_positions", "end_positions"])
@pytest.mark.parametrize("bad", [-1, -100])
def test_negative_answer_positions_are_value_errors(framework, name, bad):
    positions = {"start_positions": np.array([1, 2]), "end_positions": np.array([3, 4])}
    positions[name] = np.array([2, bad])
    with pytest.raises(ValueError, match=rf"{name} must hold token indices >= 0; .*; got {bad}\b"):
        call(framework, QA, **ids(), **positions)


def test_negative_answer_positions_in_a_keras_graph():
    tf = pytest.importorskip("tensorflow")
    m = model("tf", QA)
    x = {**ids(), "start_positions": np.array([1, 2]), "end_positions": np.array([3, -2])}
    signature = {k: tf.TensorSpec([None] * v.ndim, tf.int64) for k, v in x.items()}

    @tf.function(input_signature=[signature])
    def loss(batch):
        return m(batch, training=False).loss

    @tf.function(input_signature=[signature])
    def validate(batch):  # what runs before an XLA function (tests/test_tf_xla.py)
        return m.validate_inputs(batch)["end_positions"]

    good = {**x, "end_positions": np.array([3, 2])}
    assert np.isfinite(loss({k: tf.constant(v) for k, v in good.items()}).numpy())
    for fn in (loss, validate):
        with pytest.raises(tf.errors.InvalidArgumentError, match="end_positions must hold token indices >= 0"):
            fn({k: tf.constant(v) for k, v in x.items()})


def test_negative_answer_positions_inside_xla_give_a_nan_loss():
    """Inside XLA nothing can raise (inputs.py): a negative position makes the loss NaN, never a number."""
    tf = pytest.importorskip("tensorflow")
    m = model("tf", QA)

    @tf.function(jit_compile=True)
    def loss(batch):
        return m(batch, training=False).loss

    x = {k: tf.constant(v) for k, v in ids().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # XLA_CHECKS_SKIPPED, tested in test_tf_xla.py
        good = loss({**x, "start_positions": tf.constant([1, 2]), "end_positions": tf.constant([3, 9])})
        bad = loss({**x, "start_positions": tf.constant([1, 2]), "end_positions": tf.constant([3, -1])})
    assert np.isfinite(good.numpy()) and np.isnan(bad.numpy())


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def side_loss(logits: np.ndarray, positions) -> float:
    """Mean of -log p(position) over the rows whose position is inside the window; 0 when none is."""
    seq = logits.shape[1]
    lp = log_softmax(logits)
    kept = [-lp[row, p] for row, p in enumerate(positions) if p < seq]
    return float(np.mean(kept)) if kept else 0.0


@pytest.mark.parametrize("start, end", [
    ([1, 4], [3, 4]),           # every position in the window
    ([1, 5], [5, 2]),           # 5 = T: the first position past the window, ignored
    ([0, 60], [2**32 + 1, 3]),  # far past the window (2**32 + 1 must not wrap to 1 in an int32 cast)
    ([5, 7], [9, 2**40]),       # nothing labelled: 0, not NaN
])
def test_answer_position_loss_by_hand_in_both_frameworks(start, end):
    positions = {"start_positions": np.array(start, np.int64), "end_positions": np.array(end, np.int64)}
    losses = {}
    for framework in FRAMEWORKS:
        out = call(framework, QA, **ids(), **positions)
        start_logits, end_logits = numpy(out.start_logits), numpy(out.end_logits)  # (2, 5) each
        hand = (side_loss(start_logits, start) + side_loss(end_logits, end)) / 2
        losses[framework] = float(numpy(out.loss))
        assert losses[framework] == pytest.approx(hand, rel=1e-5), framework
        assert hand > 0 or losses[framework] == 0.0  # nothing labelled: exactly 0
    assert losses["pt"] == pytest.approx(losses["tf"], rel=1e-5)
