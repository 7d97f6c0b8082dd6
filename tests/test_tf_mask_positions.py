"""Keras masked-LM head at given positions (mask_positions, as keras-hub's masked-LM head takes them).

TFMobileBertForMaskedLM / TFMobileBertForPreTraining(..., mask_positions=(B, P)): logits (and labels)
at those positions only. The head gathers the rows before its transform and its vocabulary projection,
and projects with two products on slices (never concatenating [E^T ; dense] into an (H, V) matrix).
The logits must equal the full logits gathered, for every config variant, with and without labels;
bad positions are a ValueError eagerly, an InvalidArgumentError in a graph and NaN (not a plausible
row) inside XLA; the fill-mask pipeline calls the model with them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")

from mobilebert_tf import modeling  # noqa: E402
from mobilebert_common.pipelines.sentence_tasks import mask_grid  # noqa: E402
from mobilebert_tf.pipelines import gathered_masked_logits  # noqa: E402  # noqa: E402
from mobilebert_tf.pretrained import weights_by_name  # noqa: E402
from tests.harness.models import VARIANTS, assert_close, random_inputs, tiny_config  # noqa: E402

POSITIONS = np.array([[1, 4, 0], [3, 3, 2]])  # (B=2, P=3): any order, repeats allowed
LABELS = np.array([[5, 17, -100], [40, 41, 2]])  # (B, P), -100 ignored
CLASSES = ["TFMobileBertForMaskedLM", "TFMobileBertForPreTraining"]


def order_one_model(config, seed: int = 0, cls_name: str = "TFMobileBertForMaskedLM"):
    """Weights of order one (at the init's std 0.02 every position's logits are near the bias and alike)."""
    model = getattr(modeling, cls_name)(config)
    model.build_with_dummies()
    rng = np.random.default_rng(seed)
    for name, var in sorted(weights_by_name(model).items()):
        shape = tuple(var.shape)
        noise = rng.standard_normal(shape)
        if "embeddings" in name:
            value = 0.5 * noise
        elif len(shape) == 2:
            value = noise / np.sqrt(shape[0])
        elif name.endswith(("gamma:0", "LayerNorm/weight:0")):
            value = 1.0 + 0.1 * noise
        else:
            value = 0.1 * noise
        var.assign(value.astype(np.float32))
    return model


def log_softmax(x):
    x = np.asarray(x, np.float64)
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("cls_name", CLASSES)
def test_logits_at_positions_equal_full_logits_gathered(cls_name, variant):
    config = tiny_config(variant)
    model = order_one_model(config, cls_name=cls_name)
    inputs = random_inputs(config)
    name = "logits" if cls_name == "TFMobileBertForMaskedLM" else "prediction_logits"
    nsp = {"next_sentence_label": np.array([0, 1])} if cls_name == "TFMobileBertForPreTraining" else {}
    full = model(inputs)[name].numpy()  # (B, T, V)
    expected = np.take_along_axis(full, POSITIONS[..., None], axis=1)  # (B, P, V)
    assert np.abs(expected).max() > 1.0  # order-one logits: a wrong row would show

    out = model(inputs, mask_positions=POSITIONS)
    assert out[name].shape == (2, 3, config.vocab_size)
    assert_close(out[name].numpy(), expected, rtol=1e-5, what="logits at mask_positions")
    assert out.loss is None

    labelled = model(inputs, mask_positions=POSITIONS, labels=LABELS, **nsp)
    assert_close(labelled[name].numpy(), expected, rtol=1e-5, what="logits at mask_positions, with labels")
    keep = LABELS != -100
    picked = np.take_along_axis(log_softmax(expected), np.where(keep, LABELS, 0)[..., None], axis=-1)[..., 0]
    loss = -picked[keep].mean()
    if nsp:  # + the next-sentence loss, which mask_positions leaves alone
        loss += -log_softmax(labelled.seq_relationship_logits.numpy())[[0, 1], nsp["next_sentence_label"]].mean()
    assert float(labelled.loss) == pytest.approx(loss, rel=1e-5)


def test_loss_at_positions_equals_loss_of_full_labels():
    """(B, P) labels at distinct positions = (B, T) labels with -100 everywhere else."""
    config = tiny_config()
    model = order_one_model(config, seed=1)
    inputs = random_inputs(config)
    positions, labels = np.array([[1, 4], [0, 3]]), np.array([[5, 17], [40, -100]])
    full_labels = np.full(inputs["input_ids"].shape, -100)
    np.put_along_axis(full_labels, positions, labels, axis=1)
    expected = float(model(inputs, labels=full_labels).loss)
    assert float(model(inputs, mask_positions=positions, labels=labels).loss) == pytest.approx(expected, rel=1e-6)


def test_head_projects_without_concatenating_the_output_matrix():
    """The projection is x[..., :E] @ E^T + x[..., E:] @ dense + bias: no (H, V) tensor in the traced head,
    and the same numbers as the concatenated matrix."""
    config = tiny_config("layer_norm_gelu")
    model = order_one_model(config, seed=2)
    head = model.cls.predictions
    words = model.mobilebert.embeddings.word_embeddings
    hidden = tf.constant(np.random.default_rng(0).standard_normal((2, 5, config.hidden_size)), tf.float32)
    graph = tf.function(lambda h: head(h, words)).get_concrete_function(hidden).graph
    shapes = {tuple(t.shape.as_list()) for op in graph.get_operations() for t in op.outputs if t.shape.rank is not None}
    assert (config.hidden_size, config.vocab_size) not in shapes

    x = head.transform(hidden).numpy()
    matrix = np.concatenate([words.numpy().T, head.dense.numpy()], axis=0)  # (H, V), as DESIGN.md writes it
    assert_close(head(hidden, words).numpy(), x @ matrix + head.bias.numpy(), rtol=1e-5, what="head logits")


def test_inputs_embeds_dict_int32_and_empty_positions():
    config = tiny_config()
    model = order_one_model(config, seed=3)
    inputs = random_inputs(config)
    embeds = tf.gather(model.mobilebert.embeddings.word_embeddings, inputs["input_ids"])
    given = {"inputs_embeds": embeds, "attention_mask": inputs["attention_mask"]}
    full = model(given).logits.numpy()
    got = model({**given, "mask_positions": tf.constant(POSITIONS, tf.int32)}).logits.numpy()
    assert_close(got, np.take_along_axis(full, POSITIONS[..., None], axis=1), rtol=1e-5)
    assert model(given, mask_positions=np.zeros((2, 0), np.int64)).logits.shape == (2, 0, config.vocab_size)


@pytest.mark.parametrize("positions, message", [
    (np.array([[1, 7], [0, 0]]), r"mask_positions must hold token positions in \[0, 7\) \(the input's sequence length\); got 7"),
    (np.array([[1, -1], [0, 0]]), r"mask_positions must hold token positions in \[0, 7\).*got -1"),
    (np.array([1, 2]), r"mask_positions must have 2 dimensions \(batch, num_positions\)"),
    (np.array([[1.0, 2.0], [0.0, 0.0]]), r"mask_positions must hold integer ids"),
    (np.array([[1, 2]]), r"mask_positions has shape \(1, 2\) \(batch, num_positions\) but the input's batch is 2"),
])
def test_bad_positions_are_a_value_error(positions, message):
    config = tiny_config()
    model = order_one_model(config)
    inputs = random_inputs(config)
    with pytest.raises(ValueError, match=message):
        model(inputs, mask_positions=positions)
    with pytest.raises(ValueError, match=message):
        model({**inputs, "mask_positions": positions})
    with pytest.raises(ValueError, match=message):
        model.validate_inputs({**inputs, "mask_positions": positions})


def test_bad_positions_in_a_graph_are_an_invalid_argument_error():
    config = tiny_config()
    model = order_one_model(config)
    inputs = {k: tf.constant(v) for k, v in random_inputs(config).items()}
    spec = tf.TensorSpec([None, None], tf.int64)
    fn = tf.function(lambda ids, mask, pos: model(input_ids=ids, attention_mask=mask, mask_positions=pos).logits,
                     input_signature=[spec, spec, spec])
    good = fn(inputs["input_ids"], inputs["attention_mask"], tf.constant(POSITIONS, tf.int64))
    assert good.shape == (2, 3, config.vocab_size)
    with pytest.raises(tf.errors.InvalidArgumentError, match="mask_positions must hold token positions"):
        fn(inputs["input_ids"], inputs["attention_mask"], tf.constant([[1, 9], [0, 0]], tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match="mask_positions must have one row of positions per sequence"):
        fn(inputs["input_ids"], inputs["attention_mask"], tf.constant([[1, 2]], tf.int64))


def test_inside_xla_a_bad_position_gives_nan_not_a_clamped_row():
    config = tiny_config()
    model = order_one_model(config)
    inputs = {k: tf.constant(v) for k, v in random_inputs(config).items()}
    fn = tf.function(lambda pos: model(inputs, mask_positions=pos).logits, jit_compile=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the once-per-process XLA_CHECKS_SKIPPED warning (test_tf_xla.py)
        logits = fn(tf.constant([[1, 7], [0, 2]], tf.int64)).numpy()
    assert np.isnan(logits[0, 1]).all()  # position 7 of a 7-token input: NaN, not the last row
    full = model(inputs).logits.numpy()
    assert_close(logits[1], full[1, [0, 2]], rtol=1e-5, what="the valid rows")


def test_fit_takes_mask_positions_and_labels_in_the_input_dict():
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fit runs with training=True
    model = order_one_model(config)
    inputs = random_inputs(config)
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # no step: the reported loss is the model's at these weights
    expected = float(model(inputs, mask_positions=POSITIONS, labels=LABELS).loss)
    data = tf.data.Dataset.from_tensors({**inputs, "mask_positions": POSITIONS, "labels": LABELS})
    history = model.fit(data, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_mask_grid():
    positions = np.array([[0, 3], [0, 5], [2, 1], [2, 6], [2, 2]])  # (N, 2) (row, column), row-major; row 1 has none
    grid, slots = mask_grid(positions, 3)
    assert grid.tolist() == [[3, 5, 0], [0, 0, 0], [1, 6, 2]]
    assert slots.tolist() == [0, 1, 0, 1, 2]
    assert grid[positions[:, 0], slots].tolist() == positions[:, 1].tolist()


@pytest.mark.parametrize("cls_name", CLASSES)
def test_pipeline_masked_logits_are_the_models_full_logits_at_the_masks(cls_name):
    config = tiny_config()
    model = order_one_model(config, seed=4, cls_name=cls_name)
    inputs = {k: tf.constant(v) for k, v in random_inputs(config, batch=3).items()}
    positions = np.array([[0, 2], [0, 4], [2, 1], [2, 3]])  # row 1 has no mask
    name = "logits" if cls_name == "TFMobileBertForMaskedLM" else "prediction_logits"
    full = model(inputs)[name].numpy()  # (B, T, V)
    got = gathered_masked_logits(model, inputs, positions).numpy()  # (N, V)
    assert_close(got, full[positions[:, 0], positions[:, 1]], rtol=1e-5, what="pipeline masked logits")
