"""Keras training of MobileBERT: compile + fit on the model's own loss (every head), metrics,
sample_weight, and mixed precision (softmax and losses in float32; fit under both mixed policies)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")

from tests.harness.models import build_tf, model_inputs, random_weights  # noqa: E402
from tests.harness.models import assert_close, random_inputs, tiny_config  # noqa: E402

QUIET = dict(num_hidden_layers=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _learnable_task(config, n=64, seq=6, seed=0):
    """Label 1 when the first token's id is in the upper half of the vocabulary."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, config.vocab_size, size=(n, seq)).astype(np.int32)
    labels = (ids[:, 0] >= config.vocab_size // 2).astype(np.int32)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}, labels


def test_fit_lowers_the_builtin_loss_and_reports_metrics():
    config = tiny_config(**QUIET)
    tf.random.set_seed(0)
    model = build_tf("MobileBertForSequenceClassification", config)
    x, y = _learnable_task(config)
    # Labels inside the input dict, as a tf.data pipeline usually carries them.
    dataset = tf.data.Dataset.from_tensor_slices({**x, "labels": y}).batch(16)
    # 3e-3: still descending at epoch 10 (loss about 0.004). At 1e-2 it reached 1e-3 by epoch 6 and Adam's
    # steps then spiked it now and then (one run ended at 0.16: a flaky failure).
    model.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=["accuracy"])
    history = model.fit(dataset, epochs=10, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < 0.2 * history["loss"][0], history["loss"]  # from chance (log 2) to nearly solved
    assert history["accuracy"][-1] > 0.9 and len(history["accuracy"]) == 10

    # evaluate reports the model's own loss and the metric; labels given as y are moved into the inputs.
    batch = {k: v[:16] for k, v in x.items()}
    out = model(**batch, labels=y[:16], training=False)
    loss, accuracy = model.evaluate(batch, y[:16], batch_size=16, verbose=0)
    np.testing.assert_allclose(loss, out.loss.numpy(), rtol=1e-5)
    np.testing.assert_allclose(accuracy, np.mean(np.argmax(out.logits.numpy(), -1) == y[:16]), rtol=1e-6)


def test_fit_without_labels_says_what_to_do():
    config = tiny_config(num_hidden_layers=1)
    model = build_tf("MobileBertForSequenceClassification", config)
    x, _ = _learnable_task(config, n=4)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="no labels"):
        model.fit(tf.data.Dataset.from_tensor_slices(x).batch(4), epochs=1, verbose=0)


def head_labels(config, architecture, inputs) -> dict:
    """Labels for one batch of model_inputs (batch 2), in the names each head takes."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    if architecture in ("MobileBertForPreTraining", "MobileBertForMaskedLM"):
        labels = {"labels": np.where(mask == 1, ids, -100)}
        return {**labels, "next_sentence_label": np.array([0, 1])} if architecture == "MobileBertForPreTraining" else labels
    if architecture == "MobileBertForNextSentencePrediction":
        return {"labels": np.array([1, 0])}
    if architecture == "MobileBertForMultipleChoice":
        return {"labels": np.array([1, 2])}
    if architecture == "MobileBertForTokenClassification":
        return {"labels": np.where(mask == 1, np.arange(ids.size).reshape(ids.shape) % config.num_labels, -100)}
    if architecture == "MobileBertForQuestionAnswering":
        return {"start_positions": np.array([1, 2]), "end_positions": np.array([3, 4])}
    return {"labels": np.array([1, 0])}


@pytest.mark.parametrize("architecture", ["MobileBertForPreTraining", "MobileBertForMaskedLM",
                                          "MobileBertForMultipleChoice", "MobileBertForTokenClassification",
                                          "MobileBertForQuestionAnswering"])
def test_fit_learns_one_batch_with_every_head(architecture):
    """Every head trains through model.fit on its own loss: 20 steps on one batch drive the loss down."""
    config = tiny_config(**QUIET, num_labels=3)
    tf.random.set_seed(0)
    model = build_tf(architecture, config)
    inputs = model_inputs(config, architecture)
    batch = {**inputs, **head_labels(config, architecture, inputs)}
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(2).repeat()
    history = model.fit(dataset, epochs=20, steps_per_epoch=1, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert history[-1] < 0.5 * history[0], history


def test_sample_weight_with_the_builtin_loss_is_refused_and_a_keras_loss_applies_it():
    """The built-in loss is one number per batch (averaged over labelled targets, as in PyTorch): Keras'
    sample_weight cannot weight it, so it is an error rather than silently ignored."""
    config = tiny_config(num_hidden_layers=1)
    model = build_tf("MobileBertForSequenceClassification", config, random_weights(config, "MobileBertForSequenceClassification", "tf"))
    x, y = _learnable_task(config, n=4)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"sample_weight \(or class_weight\) cannot weight"):
        model.evaluate(x, y, sample_weight=np.zeros(4, np.float32), verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(x, y, class_weight={0: 1.0, 1: 2.0}, epochs=1, verbose=0)
    # A Keras loss on the logits applies the weights.
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    logits = model(x, training=False).logits.numpy()
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_example = -log_probs[np.arange(4), y]
    weights = np.array([0.0, 1.0, 0.0, 2.0], np.float32)
    got = model.evaluate(x, y, sample_weight=weights, batch_size=4, verbose=0)
    np.testing.assert_allclose(got, np.sum(per_example * weights) / 4, rtol=1e-5)


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

    # Training steps (float16: compile wraps the optimizer for loss scaling) stay finite and learn.
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    dataset = tf.data.Dataset.from_tensor_slices({**inputs, "labels": labels}).batch(2).repeat()
    history = model.fit(dataset, epochs=5, steps_per_epoch=1, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < history[0], history


@pytest.mark.parametrize("name", ["mixed_float16", "mixed_bfloat16"])
def test_softmax_and_losses_run_in_float32_under_mixed_precision(policy, name):
    """In the traced graph: every attention Softmax and the cross-entropy take float32, while the
    matrix products run in the policy's 16-bit dtype."""
    policy(name)
    config = tiny_config(num_hidden_layers=2)
    model = build_tf("MobileBertForPreTraining", config)
    spec = {k: tf.TensorSpec([None, None], tf.int64) for k in ("input_ids", "attention_mask", "labels")}
    spec["next_sentence_label"] = tf.TensorSpec([None], tf.int64)
    graph = tf.function(lambda x: model(x, training=False).loss).get_concrete_function(spec).graph
    ops = graph.get_operations()
    softmax = [op for op in ops if op.type == "Softmax"]
    assert len(softmax) == config.num_hidden_layers and {op.get_attr("T") for op in softmax} == {tf.float32}
    xent = [op for op in ops if op.type == "SparseSoftmaxCrossEntropyWithLogits"]
    assert len(xent) == 2 and {op.get_attr("T") for op in xent} == {tf.float32}
    compute = tf.as_dtype(keras.mixed_precision.global_policy().compute_dtype)
    assert any(op.get_attr("T") == compute for op in ops if op.type in ("MatMul", "BatchMatMulV2"))
