"""The input checks around XLA (jit_compile=True), where TensorFlow drops tf.debugging assertions.

(a) Where this package compiles (fit / evaluate / predict after compile(jit_compile=True), the
serving functions) the inputs are checked before XLA: a readable error. (b) Inside someone else's
XLA function the model warns once, saying how to validate. (c) There, out-of-range ids give NaN
instead of the numbers of a clamped row, and bad labels a NaN loss.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")

from mobilebert_tf import inputs as inputs_module  # noqa: E402
from mobilebert_tf.inputs import in_xla_context  # noqa: E402
from tests.harness.models import build_tf, random_weights  # noqa: E402
from tests.harness.models import random_inputs, tiny_config  # noqa: E402

ARCH = "MobileBertForSequenceClassification"


@pytest.fixture
def model():
    config = tiny_config(num_hidden_layers=1, num_labels=3)
    return build_tf(ARCH, config, random_weights(config, ARCH, "tf"))


def _batch(model, **changes) -> dict:
    inputs = {k: tf.constant(v) for k, v in random_inputs(model.config, seq=6).items()}
    return {**inputs, "labels": tf.constant([0, 2], tf.int64), **changes}


def _xla_warnings(caught) -> list:
    return [str(w.message) for w in caught if "XLA-compiled function" in str(w.message)]


def test_xla_context_is_detected_at_trace_time():
    seen = {}

    @tf.function(jit_compile=True)
    def xla(x):
        seen["xla"] = in_xla_context()
        return x + 1

    @tf.function
    def graph(x):
        seen["graph"] = in_xla_context()
        return xla(x)

    graph(tf.constant(1.0))
    assert seen == {"graph": False, "xla": True} and not in_xla_context()


def test_inside_an_xla_function_warns_once_and_bad_inputs_give_nan(model, monkeypatch):
    monkeypatch.setattr(inputs_module, "_warned_xla", False)
    spec = {k: tf.TensorSpec([None, None], tf.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    spec["labels"] = tf.TensorSpec([None], tf.int64)

    @tf.function(jit_compile=True, input_signature=[spec])
    def run(x):
        out = model(x, training=False)
        return out.logits, out.loss

    good = _batch(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logits, loss = run(good)
        tf.function(lambda x: model(x).logits, jit_compile=True)(good)  # another XLA trace: no second warning
    messages = _xla_warnings(caught)
    assert len(messages) == 1 and "model.validate_inputs(inputs)" in messages[0] and "NaN" in messages[0]
    expected = model(good, training=False)
    np.testing.assert_allclose(logits.numpy(), expected.logits.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loss.numpy(), expected.loss.numpy(), rtol=1e-5)

    ids = good["input_ids"].numpy()
    for bad_id in (500, -500):  # XLA's gather would clamp these to the table's edge rows
        bad_ids = ids.copy()
        bad_ids[0, 2] = bad_id
        logits, _ = run({**good, "input_ids": tf.constant(bad_ids)})
        assert np.all(np.isnan(logits.numpy()[0])), bad_id  # the sequence with the bad id
        np.testing.assert_allclose(logits.numpy()[1], expected.logits.numpy()[1], rtol=1e-5, atol=1e-5)
    too_long = {k: tf.ones((1, 41), tf.int64) for k in spec if k != "labels"}  # max_position_embeddings = 40
    logits, loss = run({**too_long, "labels": tf.constant([0], tf.int64)})
    assert np.all(np.isnan(logits.numpy())) and np.isnan(loss.numpy())
    for bad_label in (7, -3):
        logits, loss = run({**good, "labels": tf.constant([0, bad_label], tf.int64)})
        assert np.isnan(loss.numpy()) and np.all(np.isfinite(logits.numpy())), bad_label


def test_validate_inputs_is_the_check_to_run_before_xla(model):
    bad = _batch(model, input_ids=_batch(model)["input_ids"] + 500)
    with pytest.raises(ValueError, match=r"input_ids must hold ids in \[0, 99\) \(config.vocab_size\); got 5"):
        model.validate_inputs(bad)
    with pytest.raises(ValueError, match=r"labels must hold class ids in \[0, 3\)"):
        model.validate_inputs(_batch(model, labels=tf.constant([0, 7], tf.int64)))
    xla = tf.function(lambda x: model(x, training=False).logits, jit_compile=True)
    spec = {k: tf.TensorSpec([None] * len(v.shape), v.dtype) for k, v in bad.items()}

    @tf.function(input_signature=[spec])
    def checked(x):
        return xla(model.validate_inputs(x))  # the assertions run in this (non-XLA) graph

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        good = checked(_batch(model))
        np.testing.assert_allclose(good.numpy(), model(_batch(model), training=False).logits.numpy(), rtol=1e-5, atol=1e-5)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"input_ids must hold ids in \[0, 99\)"):
            checked(bad)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels must hold class ids in \[0, 3\)"):
            checked(_batch(model, labels=tf.constant([0, -3], tf.int64)))


def test_fit_evaluate_predict_with_jit_compile_check_inputs_before_xla(model, monkeypatch):
    monkeypatch.setattr(inputs_module, "_warned_xla", False)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    assert model.jit_compile
    seen = []
    forward = model._loss_and_logits

    def spy(*args, **kwargs):  # records, at trace time, whether the loss is computed under XLA
        seen.append(in_xla_context())
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "_loss_and_logits", spy)
    good = tf.data.Dataset.from_tensor_slices(_batch(model)).batch(2).repeat()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(good, epochs=8, steps_per_epoch=1, verbose=0).history["loss"]
    assert seen and all(seen)  # the step itself runs under XLA
    assert _xla_warnings(caught) == []  # validated before XLA: nothing to warn about
    assert np.all(np.isfinite(history)) and history[-1] < history[0], history

    bad_ids = _batch(model, input_ids=_batch(model)["input_ids"] + 500)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"input_ids must hold ids in \[0, 99\)"):
        model.fit(tf.data.Dataset.from_tensor_slices(bad_ids).batch(2), epochs=1, verbose=0)
    bad_labels = _batch(model, labels=tf.constant([0, 7], tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels must hold class ids in \[0, 3\)"):
        model.evaluate(tf.data.Dataset.from_tensor_slices(bad_labels).batch(2), verbose=0)
    too_long = {k: tf.ones((2, 41), tf.int64) for k in ("input_ids", "attention_mask")}
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="this model takes at most 40"):
        model.predict(tf.data.Dataset.from_tensor_slices(too_long).batch(2), verbose=0)
