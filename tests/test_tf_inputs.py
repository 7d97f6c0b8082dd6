"""Bad input to the Keras models: a ValueError eagerly, a readable tf.debugging assertion in a graph
(tf.function with unknown dims or rank), never a raw TensorFlow error, a NaN or a silent result.

Mirrors tests/test_pt_inputs.py; the checks around XLA are in test_tf_xla.py.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")

import mobilebert_tf  # noqa: E402
from tests.harness.models import random_inputs, tiny_config  # noqa: E402


def config_for(variant: str = "default", **overrides):
    return tiny_config(variant, **{"num_labels": 3, **overrides})


# ---------------------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def small():
    config = config_for(num_hidden_layers=1)
    model = mobilebert_tf.TFMobileBertForSequenceClassification(config)
    model(model.dummy_inputs)
    return config, model


def _ids(config, batch=2, seq=5):
    return random_inputs(config, batch=batch, seq=seq)["input_ids"]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (lambda c: {}, "pass input_ids"),
        (lambda c: {"input_ids": _ids(c), "inputs_embeds": np.zeros((2, 5, 16), np.float32)}, "not both"),
        (lambda c: {"input_ids": _ids(c)[0]}, r"input_ids must have 2 dimensions"),
        (lambda c: {"inputs_embeds": np.zeros((2, 5, 7), np.float32)}, r"inputs_embeds must be \(batch, seq, 16\)"),
        (lambda c: {"input_ids": _ids(c), "attention_mask": np.ones((2, 4), np.int64)}, "attention_mask has shape"),
        (lambda c: {"input_ids": _ids(c), "token_type_ids": np.zeros((1, 5), np.int64)}, "token_type_ids has shape"),
        (lambda c: {"input_ids": _ids(c, seq=41)}, "at most 40"),
        (lambda c: {"input_ids": _ids(c) + 99}, r"input_ids must hold ids in \[0, 99\).*got"),
        (lambda c: {"input_ids": _ids(c) - 100}, r"input_ids must hold ids in \[0, 99\).*got -"),
        (lambda c: {"input_ids": _ids(c).astype(np.float32)}, "integer ids"),
        (lambda c: {"input_ids": _ids(c), "token_type_ids": np.full((2, 5), 2)}, r"token_type_ids must hold ids in \[0, 2\)"),
        (lambda c: {"input_ids": _ids(c), "position_ids": np.arange(38, 43)[None]}, r"position_ids must hold ids in \[0, 40\)"),
        (lambda c: {"input_ids": _ids(c), "head_mask": np.ones((3,), np.float32)}, "head_mask must have shape"),
        (lambda c: {"input_ids": _ids(c), "labels": np.array([0, 3])}, r"labels must hold class ids in \[0, 3\)"),
        (lambda c: {"input_ids": {"input_ids": _ids(c), "input_idz": _ids(c)}}, "unexpected input names"),
    ],
)
def test_bad_input_raises_value_error(small, kwargs, match):
    config, model = small
    with pytest.raises(ValueError, match=match):
        model(**kwargs(config))


@pytest.mark.parametrize(
    "name,value,match",
    [
        ("input_ids", 99, r"input_ids must hold ids in \[0, 99\) \(config.vocab_size\)"),
        ("input_ids", -1, r"input_ids must hold ids in \[0, 99\)"),
        ("token_type_ids", 5, r"token_type_ids must hold ids in \[0, 2\)"),
        ("labels", 7, r"labels must hold class ids in \[0, 3\)"),
    ],
)
def test_bad_ids_in_a_graph_fail_with_a_readable_message(small, name, value, match):
    """tf.gather returns zeros for out-of-range ids on GPU: a tf.function must check them itself."""
    config, model = small
    inputs = {k: tf.constant(v) for k, v in random_inputs(config, seq=5).items()}
    inputs["labels"] = tf.constant([0, 1], tf.int64)

    @tf.function(input_signature=[{k: tf.TensorSpec([None] * len(v.shape), tf.int64) for k, v in inputs.items()}])
    def logits(x):
        return model(x, training=False).loss

    assert np.isfinite(logits(inputs).numpy())  # good inputs pass the checks
    bad = dict(inputs)
    bad[name] = tf.tensor_scatter_nd_update(inputs[name], [[0] * len(inputs[name].shape)], tf.constant([value], tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        logits(bad)


def test_too_long_and_misaligned_inputs_in_a_graph(small):
    config, model = small

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32)])
    def logits(ids, mask):
        return model(input_ids=ids, attention_mask=mask, training=False).logits

    ids = tf.ones((1, 41), tf.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"this model takes at most 40 \(config.max_position_embeddings\)"):
        logits(ids, tf.ones_like(ids))
    with pytest.raises(tf.errors.InvalidArgumentError, match="attention_mask must have the same shape as input_ids"):
        logits(tf.ones((2, 5), tf.int32), tf.ones((2, 4), tf.int32))


def test_multiple_choice_and_multi_label_shapes():
    config = config_for(num_hidden_layers=1)
    choice = mobilebert_tf.TFMobileBertForMultipleChoice(config)
    with pytest.raises(ValueError, match=r"input_ids must have 3 dimensions \(batch, num_choices, seq\)"):
        choice(input_ids=_ids(config))
    ids = np.stack([_ids(config)] * 3, axis=1)
    with pytest.raises(ValueError, match="attention_mask has shape"):
        choice(input_ids=ids, attention_mask=np.ones((2, 3, 4), np.int64))
    with pytest.raises(ValueError, match=r"labels must hold class ids in \[0, 3\)"):
        choice(input_ids=ids, labels=np.array([0, 3]))
    multi = mobilebert_tf.TFMobileBertForSequenceClassification(config.copy(problem_type="multi_label_classification"))
    with pytest.raises(ValueError, match="labels has shape"):
        multi(input_ids=_ids(config), labels=np.ones((2, 2), np.float32))


def test_float16_overflow_is_reported_not_returned():
    """float16 tops out at 65504: an overflow is a ValueError eagerly and a readable assertion in a graph."""
    config = config_for(num_hidden_layers=1)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = mobilebert_tf.TFMobileBertForMaskedLM(config)
        model(model.dummy_inputs)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    inputs = {k: tf.constant(v) for k, v in random_inputs(config).items()}
    assert model(inputs).logits.dtype == tf.float16
    table = model.mobilebert.embeddings.position_embeddings
    table.assign(tf.fill(table.shape, 1e5))  # beyond float16's range
    with pytest.raises(ValueError, match="65504"):
        model(inputs)
    with pytest.raises(tf.errors.InvalidArgumentError, match="65504"):
        tf.function(lambda x: model(x).logits)(inputs)
    # Under XLA the check cannot run inside; the jit serving function checks the outputs after it.
    with pytest.raises(tf.errors.InvalidArgumentError, match="65504"):
        model.serving_function(tf.int64, jit_compile=True)(**inputs)


def _graph_call(model, inputs: dict, unknown_rank=()):
    """model(inputs) inside a tf.function whose input_signature leaves every dimension unknown
    (and the rank too, for the names in unknown_rank): only run-time checks can catch a bad input."""
    spec = {k: tf.TensorSpec(None if k in unknown_rank else [None] * np.ndim(v), tf.as_dtype(np.asarray(v).dtype))
            for k, v in inputs.items()}

    @tf.function(input_signature=[spec])
    def run(x):
        out = model(x, training=False)
        return {k: v for k, v in out.items() if isinstance(v, tf.Tensor)}

    return run({k: tf.constant(v) for k, v in inputs.items()})


def _check_both_modes(model, inputs, eager_match, graph_match, unknown_rank=()):
    with pytest.raises(ValueError, match=eager_match):
        model(inputs, training=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match=graph_match):
        _graph_call(model, inputs, unknown_rank)


def test_shape_errors_read_well_eagerly_and_in_a_graph(small):
    config, model = small
    ids = _ids(config)  # (2, 5)
    _check_both_modes(model, {"input_ids": ids, "position_ids": np.zeros((2, 4), np.int64)},
                      r"position_ids has shape \(2, 4\); allowed: \(2, 5\)",
                      r"position_ids must have shape \(batch, seq\), or \(1, seq\) / \(seq,\)")
    _check_both_modes(model, {"input_ids": ids[:, :0]}, "input has 0 tokens", "input has 0 tokens")
    _check_both_modes(model, {"input_ids": ids[:0]}, "empty batch", "empty batch")
    _check_both_modes(model, {"input_ids": ids, "attention_mask": np.ones((2, 4), np.int64)},
                      "attention_mask has shape", "attention_mask must have the same shape as input_ids")
    with pytest.raises(ValueError, match=r"attention_mask has shape \(None, None, None\)"):  # a known rank: at trace time
        _graph_call(model, {"input_ids": ids, "attention_mask": np.ones((2, 5, 1), np.int64)})
    # An input of unknown rank (a tf.function signature without a shape): its rank is checked at run time.
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"input_ids must have 2 dimensions \(batch, seq\)"):
        _graph_call(model, {"input_ids": ids[0]}, unknown_rank=("input_ids",))
    with pytest.raises(tf.errors.InvalidArgumentError, match="attention_mask must have the same shape"):
        _graph_call(model, {"input_ids": ids, "attention_mask": np.ones((2, 5, 1), np.int64)}, unknown_rank=("attention_mask",))
    # Labels that do not line up with the logits (PyTorch refuses them too).
    _check_both_modes(model, {"input_ids": ids, "labels": np.array([[0, 1], [1, 0]])},
                      r"labels has shape \(2, 2\); expected \(2,\)", "labels must have the shape of the logits without")


def test_valid_inputs_of_unknown_shape_run_in_a_graph(small):
    """None dims (and an unknown rank) that turn out valid: the same numbers as eagerly."""
    config, model = small
    inputs = {**random_inputs(config, seq=5), "head_mask": np.array([1.0, 0.0, 1.0, 1.0], np.float32)}
    expected = model(inputs, training=False).logits.numpy()
    np.testing.assert_allclose(_graph_call(model, inputs)["logits"].numpy(), expected, rtol=1e-6, atol=1e-6)
    per_layer = {**inputs, "head_mask": inputs["head_mask"][None, :]}  # (layers=1, heads)
    np.testing.assert_allclose(_graph_call(model, per_layer)["logits"].numpy(), expected, rtol=1e-6, atol=1e-6)
    shared_positions = {**inputs, "position_ids": np.arange(5)}  # (seq,): shared by every row
    np.testing.assert_allclose(_graph_call(model, shared_positions, unknown_rank=("input_ids", "position_ids"))["logits"],
                               expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"head_mask must have shape \(4,\) or \(1, 4\)"):
        _graph_call(model, {**inputs, "head_mask": np.ones((3,), np.float32)})


def test_multi_label_and_regression_label_shapes_in_a_graph():
    config = config_for(num_hidden_layers=1)
    ids = _ids(config)
    multi = mobilebert_tf.TFMobileBertForSequenceClassification(config.copy(problem_type="multi_label_classification"))
    _check_both_modes(multi, {"input_ids": ids, "labels": np.ones((2, 2), np.float32)},
                      "labels has shape", r"labels must have the shape of the logits \(multi-label")
    regression = mobilebert_tf.TFMobileBertForSequenceClassification(config.copy(num_labels=1))
    _check_both_modes(regression, {"input_ids": ids, "labels": np.ones((2, 3), np.float32)},
                      r"regression labels must have shape \(2, 1\) or \(2,\)", "regression labels must have shape")
    good = {"input_ids": ids, "labels": np.array([[1, 0, 1], [0, 0, 1]], np.float32)}
    np.testing.assert_allclose(_graph_call(multi, good)["loss"].numpy(), multi(good).loss.numpy(), rtol=1e-6)
