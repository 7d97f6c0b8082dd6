"""Keras MobileBERT as TensorFlow users run it: tf.function with dynamic shapes, XLA, SavedModel
in a fresh process, compile + fit on the model's own loss, mixed precision."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")

from tests.frameworks import build_tf, model_inputs, random_weights, run_tf  # noqa: E402
from tests.helpers import assert_close, random_inputs, tiny_config  # noqa: E402


def _model(architecture, config, seed=0):
    return build_tf(architecture, config, random_weights(config, architecture, "tf", seed=seed))


def _eager(model, inputs, key="logits"):
    return run_tf(model, inputs)[key]


# ---------------------------------------------------------------------------------- tf.function, XLA


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_tf_function_dynamic_shapes(jit_compile):
    config = tiny_config(num_hidden_layers=1)
    model = _model("MobileBertForSequenceClassification", config)
    spec = [tf.TensorSpec([None, None], tf.int32, name=n) for n in ("input_ids", "attention_mask", "token_type_ids")]

    @tf.function(input_signature=spec, jit_compile=jit_compile)
    def logits(input_ids, attention_mask, token_type_ids):
        return model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, training=False).logits

    for batch, seq in ((2, 7), (3, 5)):  # other batch and length: the same trace
        inputs = random_inputs(config, batch=batch, seq=seq, seed=seq)
        got = logits(**{k: tf.constant(v, tf.int32) for k, v in inputs.items()})
        assert_close(got.numpy(), _eager(model, inputs), rtol=1e-5, what=f"logits {batch}x{seq}")
    assert logits.experimental_get_tracing_count() == 1


def test_tf_function_returns_the_output_class():
    config = tiny_config(num_hidden_layers=1)
    model = _model("MobileBertForQuestionAnswering", config)
    inputs = random_inputs(config)
    out = tf.function(model)({k: tf.constant(v) for k, v in inputs.items()}, training=False)
    assert type(out).__name__ == "QuestionAnsweringModelOutput" and out.keys() == ["start_logits", "end_logits"]
    assert_close(out.start_logits.numpy(), _eager(model, inputs, "start_logits"), rtol=1e-5)


def test_serving_function_multiple_choice_xla():
    config = tiny_config(num_hidden_layers=1)
    model = _model("MobileBertForMultipleChoice", config)
    inputs = model_inputs(config, "MobileBertForMultipleChoice")  # (2, 3, 7)
    fn = model.serving_function(tf.int64, jit_compile=True)
    got = fn(**{k: tf.constant(inputs[k]) for k in ("input_ids", "attention_mask", "token_type_ids")})
    assert_close(got["logits"].numpy(), _eager(model, inputs), rtol=1e-5)


# ---------------------------------------------------------------------------------- Keras weight files


@pytest.mark.parametrize("fmt", ["h5", "tf"])
def test_keras_save_weights_load_weights(fmt, tmp_path):
    config = tiny_config(num_hidden_layers=1)
    model = _model("MobileBertForMaskedLM", config)
    inputs = random_inputs(config)
    path = str(tmp_path / ("weights.h5" if fmt == "h5" else "ckpt"))
    model.save_weights(path, save_format=fmt)
    other = build_tf("MobileBertForMaskedLM", config)  # fresh initialisation
    assert not np.allclose(_eager(other, inputs), _eager(model, inputs))
    status = other.load_weights(path)
    if fmt == "tf":
        status.assert_existing_objects_matched()
    assert_close(_eager(other, inputs), _eager(model, inputs), rtol=0)


# ---------------------------------------------------------------------------------- SavedModel

_RELOAD = textwrap.dedent(
    """
    import sys, numpy as np, tensorflow as tf
    export_dir, inputs_path, out_path = sys.argv[1:]
    inputs = dict(np.load(inputs_path))
    loaded = tf.saved_model.load(export_dir)
    out = {}
    for sig, dtype in (("serving_default", tf.int64), ("serving_int32", tf.int32)):
        fn = loaded.signatures[sig]
        out[sig] = fn(**{k: tf.constant(v, dtype) for k, v in inputs.items()})["logits"].numpy()
        out["serving_" + dtype.name] = loaded.serving(**{k: tf.constant(v, dtype) for k, v in inputs.items()})["logits"].numpy()
    out["short"] = loaded.signatures["serving_default"](**{k: tf.constant(v[:1, :4], tf.int64) for k, v in inputs.items()})["logits"].numpy()
    np.savez(out_path, **out)
    """
)


def test_saved_model_in_a_fresh_process(tmp_path):
    config = tiny_config(num_hidden_layers=1)
    model = _model("MobileBertForTokenClassification", config)
    inputs = random_inputs(config)
    export_dir = model.export(tmp_path / "saved")  # Keras' name for export_saved_model
    np.savez(tmp_path / "inputs.npz", **inputs)
    # A fresh interpreter: nothing of this process (or of this package) is needed to run it.
    proc = subprocess.run(
        [sys.executable, "-c", _RELOAD, str(export_dir), str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz")],
        capture_output=True, text=True, timeout=110, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    expected = _eager(model, inputs)
    for key in ("serving_default", "serving_int32", "serving_int32", "serving_int64"):
        assert_close(out[key], expected, rtol=1e-5, what=key)
    short = {k: v[:1, :4] for k, v in inputs.items()}
    assert_close(out["short"], _eager(model, short), rtol=1e-5, what="other batch and length")


# ---------------------------------------------------------------------------------- compile + fit


def _learnable_task(config, n=64, seq=6, seed=0):
    """Label 1 when the first token's id is in the upper half of the vocabulary."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, config.vocab_size, size=(n, seq)).astype(np.int32)
    labels = (ids[:, 0] >= config.vocab_size // 2).astype(np.int32)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}, labels


def test_fit_lowers_the_builtin_loss():
    config = tiny_config(num_hidden_layers=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    tf.random.set_seed(0)
    model = build_tf("MobileBertForSequenceClassification", config)
    x, y = _learnable_task(config)
    # Labels inside the input dict, as a tf.data pipeline usually carries them.
    dataset = tf.data.Dataset.from_tensor_slices({**x, "labels": y}).batch(16)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(dataset, epochs=10, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert history[-1] < 0.2 * history[0], history  # from chance (log 2) to nearly solved

    # evaluate reports the model's own loss; labels given as y are moved into the inputs.
    batch = {k: v[:16] for k, v in x.items()}
    expected = model(**batch, labels=y[:16], training=False).loss.numpy()
    reported = model.evaluate(batch, y[:16], batch_size=16, verbose=0)
    np.testing.assert_allclose(reported, expected, rtol=1e-5)


def test_fit_without_labels_says_what_to_do():
    config = tiny_config(num_hidden_layers=1)
    model = build_tf("MobileBertForSequenceClassification", config)
    x, _ = _learnable_task(config, n=4)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="no labels"):
        model.fit(tf.data.Dataset.from_tensor_slices(x).batch(4), epochs=1, verbose=0)


# ---------------------------------------------------------------------------------- mixed precision


@pytest.fixture
def policy():
    """Sets a global Keras policy for one test and puts float32 back afterwards, pass or fail."""
    yield keras.mixed_precision.set_global_policy
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name,rtol", [("mixed_float16", 2e-2), ("mixed_bfloat16", 8e-2)])
def test_mixed_precision(policy, name, rtol):
    config = tiny_config(num_hidden_layers=1)
    weights = random_weights(config, "MobileBertForMaskedLM", "tf")
    inputs = random_inputs(config)
    labels = np.where(inputs["attention_mask"] == 1, inputs["input_ids"], -100)
    reference = build_tf("MobileBertForMaskedLM", config, weights)
    expected = reference(**inputs, labels=labels, training=False)

    policy(name)
    model = build_tf("MobileBertForMaskedLM", config, weights)
    compute = keras.mixed_precision.global_policy().compute_dtype
    assert all(v.dtype == tf.float32 for v in model.weights)  # variables stay float32
    out = model(**inputs, labels=labels, training=False)
    assert out.logits.dtype == compute
    assert out.loss.dtype == tf.float32
    assert_close(tf.cast(out.logits, tf.float32).numpy(), expected.logits.numpy(), rtol=rtol, what="logits")
    np.testing.assert_allclose(out.loss.numpy(), expected.loss.numpy(), rtol=rtol)

    if name != "mixed_float16":
        return
    # One training step with loss scaling (compile wraps the optimizer for float16) stays finite.
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    dataset = tf.data.Dataset.from_tensor_slices({**inputs, "labels": labels}).batch(2)
    history = model.fit(dataset, epochs=1, verbose=0).history["loss"]
    assert np.isfinite(history[0])
