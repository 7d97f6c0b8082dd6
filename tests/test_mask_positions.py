"""The masked-LM head at given positions (mask_positions (B, P), as keras-hub's masked-LM head takes them).

MobileBertForMaskedLM / MobileBertForPreTraining(..., mask_positions=(B, P)), both frameworks: logits (and
labels) at those positions only, equal to the full logits gathered, for every config variant, with and
without labels; positions as lists or any integer dtype; bad positions are a ValueError naming
mask_positions. The fill-mask pipelines place each mask in its row with mask_grid (framework-free).

Then what only one framework has. PyTorch: the head gathers before its transform; the fill-mask pipeline
calls the model with the positions (float16-mixed included) instead of redoing the head's math. Keras: the
head projects with two products on slices (never concatenating [E^T ; dense] into an (H, V) matrix); bad
positions are an InvalidArgumentError in a graph and NaN (not a plausible row) inside XLA; fit takes the
positions in its input dict; the pipeline's gathered logits are the model's.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mobilebert_common.pipelines.sentence_tasks import mask_grid
from tests.harness.models import FRAMEWORKS, VARIANTS, assert_close, make_pt, pt_inputs, random_inputs, relative_error, tiny_config
from tests.harness.pipelines import config as pipeline_config
from tests.harness.pipelines import make_tokenizer

POSITIONS = np.array([[3, 0, 6], [1, 1, 4]])  # (B=2, P=3): any order, repeats allowed; row 1's 5, 6 are padding
LABELS = np.array([[5, 17, -100], [40, 41, 2]])  # (B, P) at POSITIONS, -100 ignored
CLASSES = ["MobileBertForMaskedLM", "MobileBertForPreTraining"]


def gathered(full: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(B, T, V) logits at positions (B, P) -> (B, P, V), by indexing (not the model's gather)."""
    return np.take_along_axis(full, positions[..., None], axis=1)


def log_softmax(x):
    x = np.asarray(x, np.float64)
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


# ------------------------------------------------------------------ both frameworks


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("cls_name", CLASSES)
def test_logits_at_positions_equal_full_logits_gathered(framework, cls_name, variant):
    model = framework.model(cls_name, variant)
    x = random_inputs(model.config)
    name = "logits" if cls_name == "MobileBertForMaskedLM" else "prediction_logits"
    nsp = {"next_sentence_label": np.array([0, 1])} if cls_name == "MobileBertForPreTraining" else {}
    run = lambda **kw: framework.call(model, {**x, **kw})  # noqa: E731
    full = framework.numpy(run()[name])  # (B, T, V)
    expected = gathered(full, POSITIONS)  # (B, P, V)
    assert np.abs(expected).max() > 1.0  # order-one logits: a wrong row would show

    bare = run(mask_positions=POSITIONS)
    assert bare[name].shape == (2, 3, model.config.vocab_size)
    assert "loss" not in bare and bare.loss is None
    assert relative_error(framework.numpy(bare[name]), expected) < 1e-6

    # Labels (B, P) at the positions, repeats and -100 included: the loss is the mean over the kept ones.
    labelled = run(mask_positions=POSITIONS, labels=LABELS, **nsp)
    assert relative_error(framework.numpy(labelled[name]), expected) < 1e-6
    keep = LABELS != -100
    picked = np.take_along_axis(log_softmax(expected), np.where(keep, LABELS, 0)[..., None], axis=-1)[..., 0]
    loss = -picked[keep].mean()
    if nsp:  # + the next-sentence loss, which mask_positions leaves alone
        loss += -log_softmax(framework.numpy(labelled.seq_relationship_logits))[[0, 1], nsp["next_sentence_label"]].mean()
    assert float(labelled.loss) == pytest.approx(loss, rel=1e-5)

    # Labels at distinct positions = (B, T) labels with -100 everywhere else.
    tokens = np.random.default_rng(1).integers(0, model.config.vocab_size, (2, 7))
    unique = np.array([[3, 0, 6], [1, 4, 2]])
    rows = np.arange(2)[:, None]
    only_there = np.full_like(tokens, -100)
    only_there[rows, unique] = tokens[rows, unique]
    part = run(labels=tokens[rows, unique], mask_positions=unique, **nsp)
    reference = run(labels=only_there, **nsp)
    assert relative_error(framework.numpy(part[name]), gathered(full, unique)) < 1e-6
    assert float(part.loss) > 0 and abs(float(part.loss) - float(reference.loss)) < 1e-5


def test_loss_at_positions_equals_loss_of_full_labels(framework):
    """(B, P) labels at distinct positions, one of them -100 = (B, T) labels with -100 everywhere else."""
    model = framework.model("MobileBertForMaskedLM", seed=1)
    inputs = random_inputs(model.config)
    positions, labels = np.array([[1, 4], [0, 3]]), np.array([[5, 17], [40, -100]])
    full_labels = np.full(inputs["input_ids"].shape, -100)
    np.put_along_axis(full_labels, positions, labels, axis=1)
    expected = float(framework.call(model, {**inputs, "labels": full_labels}).loss)
    got = float(framework.call(model, {**inputs, "mask_positions": positions, "labels": labels}).loss)
    assert got == pytest.approx(expected, rel=1e-6)


def test_positions_accept_lists_and_any_integer_dtype(framework):
    model = framework.model("MobileBertForMaskedLM")
    x = random_inputs(model.config)
    logits = lambda positions: framework.numpy(framework.call(model, x, mask_positions=positions).logits)  # noqa: E731
    expected = logits(framework.tensor(POSITIONS))
    for positions in (POSITIONS.tolist(), POSITIONS.astype(np.int32), framework.tensor(POSITIONS.astype(np.int16))):
        assert np.array_equal(logits(positions), expected)
    assert logits(np.zeros((2, 0), np.int64)).shape == (2, 0, model.config.vocab_size)


def test_positions_with_inputs_embeds(framework):
    model = framework.model("MobileBertForMaskedLM", seed=3)
    inputs = random_inputs(model.config)
    embeds = framework.numpy(model.get_input_embeddings().weight)[inputs["input_ids"]]  # (2, 7, 16)
    given = {"inputs_embeds": embeds, "attention_mask": inputs["attention_mask"]}
    full = framework.numpy(framework.call(model, given).logits)
    got = framework.call(model, given, mask_positions=framework.tensor(POSITIONS.astype(np.int32))).logits
    assert_close(framework.numpy(got), gathered(full, POSITIONS), rtol=1e-5)
    assert framework.call(model, given, mask_positions=np.zeros((2, 0), np.int64)).logits.shape == (2, 0, model.config.vocab_size)


BAD_POSITIONS = [
    (np.array([[0, 7], [1, 2]]), r"mask_positions must hold token positions in \[0, 7\) \(the input's sequence length\); got 7"),
    (np.array([[0, -1], [1, 2]]), r"mask_positions must hold token positions in \[0, 7\).*got -1"),
    (np.array([[0.0, 1.0], [1.0, 2.0]], np.float32), r"mask_positions must hold integer ids.*float32"),
    (np.array([0, 1]), r"mask_positions must have 2 dimensions \(batch, num_positions\)"),
    (np.array([[0, 1]]), r"mask_positions has shape \(1, 2\) \(batch, num_positions\) but the input's batch is 2"),
]


@pytest.mark.parametrize("positions, message", BAD_POSITIONS + [
    ("0 1", {"pt": r"mask_positions must be a torch.Tensor.*got str", "tf": r"mask_positions must be a tf.Tensor.*got str"}),
])
def test_bad_positions_are_a_value_error_naming_mask_positions(framework, positions, message):
    """As a numpy array and a framework tensor, in a call and in model.validate_inputs."""
    message = message[framework.name] if isinstance(message, dict) else message
    model = framework.model("MobileBertForMaskedLM")
    x = {k: framework.tensor(v) for k, v in random_inputs(model.config).items()}
    for given in (positions, framework.tensor(positions)) if isinstance(positions, np.ndarray) else (positions,):
        with pytest.raises(ValueError, match=message):
            framework.call(model, x, mask_positions=given)
        with pytest.raises(ValueError, match=message):
            model.validate_inputs({**x, "mask_positions": given})


def test_mask_grid_places_each_mask_in_its_row():
    """The pipelines' (N, 2) (row, column) mask positions, row-major -> a (B, P) grid padded with 0, and each
    mask's slot in its row."""
    positions = np.array([[0, 2], [0, 5], [2, 1]])  # row 0: two masks, row 1: none, row 2: one
    grid, slots = mask_grid(positions, 3)
    assert grid.tolist() == [[2, 5], [0, 0], [1, 0]] and slots.tolist() == [0, 1, 0]
    assert grid[positions[:, 0], slots].tolist() == [2, 5, 1]
    positions = np.array([[0, 3], [0, 5], [2, 1], [2, 6], [2, 2]])  # row 2: three masks
    grid, slots = mask_grid(positions, 3)
    assert grid.tolist() == [[3, 5, 0], [0, 0, 0], [1, 6, 2]]
    assert slots.tolist() == [0, 1, 0, 1, 2]
    assert grid[positions[:, 0], slots].tolist() == positions[:, 1].tolist()
    empty, none = mask_grid(np.zeros((0, 2), dtype=np.int64), 2)
    assert empty.shape == (2, 0) and none.shape == (0,)


# ================================================================== PyTorch only


def test_the_head_gathers_before_the_transform(torch):
    """The head alone: rows picked from (B, T, H), then transform and projection on P rows only."""
    model = make_pt()
    head = model.cls.predictions
    hidden = torch.randn(2, 7, model.config.hidden_size)
    seen = []
    handle = head.transform.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        part = head(hidden, torch.from_numpy(POSITIONS))
        full = head(hidden)
    handle.remove()
    assert seen == [(2, 3, model.config.hidden_size), (2, 7, model.config.hidden_size)]
    assert relative_error(part.numpy(), gathered(full.numpy(), POSITIONS)) < 1e-6


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("vocab"))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fill_mask_calls_the_model_with_mask_positions(torch, variant, tok):
    """The pipeline asks the model for the masks' logits (no reach into model.cls); its scores are the
    softmax of the model's full logits at the masks, in float32 and float16-mixed, on every variant."""
    from mobilebert_pt import MobileBertForMaskedLM
    from mobilebert_pt.pipelines import pipeline

    torch.manual_seed(0)
    model = MobileBertForMaskedLM(pipeline_config(**VARIANTS[variant])).eval()
    calls = []
    forward = model.forward

    def recording(*args, **kwargs):
        calls.append(kwargs.get("mask_positions"))
        return forward(*args, **kwargs)

    model.forward = recording
    texts = ["the capital of [MASK] is [MASK] .", "hello [MASK]"]
    out = pipeline("fill-mask", model=model, tokenizer=tok, top_k=3, batch_size=2)(texts)
    assert len(calls) == 1 and tuple(calls[0].shape) == (2, 2)  # one call, (B, most masks in a row)
    ids = tok(texts[1], return_tensors="pt")
    with torch.no_grad():
        logits = forward(input_ids=ids["input_ids"]).logits[0]
    mask_at = ids["input_ids"][0].tolist().index(tok.mask_token_id)
    scores = torch.softmax(logits[mask_at], -1)
    np.testing.assert_allclose([r["score"] for r in out[1]], scores.topk(3).values.numpy(), rtol=1e-5, atol=1e-7)
    assert len(out[0]) == 2 and len(out[1]) == 3  # two masks: one list of 3 per mask; one mask: the list of 3
    mixed = pipeline("fill-mask", model=model, tokenizer=tok, top_k=3, batch_size=2, torch_dtype="float16-mixed")(texts)
    for ours, ref in zip(mixed[0] + [mixed[1]], out[0] + [out[1]]):
        np.testing.assert_allclose([r["score"] for r in ours], [r["score"] for r in ref], atol=1e-3)


def test_float16_mixed_caches_the_heads_transposed_weight(torch):
    """The head's second product reads dense.weight.t(): the mode converts that parameter once, not per call."""
    from mobilebert_pt.pipeline_float16 import Float16Matmuls

    model = make_pt()
    x = pt_inputs(model.config)
    positions = torch.from_numpy(POSITIONS)
    mode = Float16Matmuls()
    with torch.no_grad(), mode:
        first = model(**x, mask_positions=positions).logits
        second = model(**x, mask_positions=positions).logits
    dense = model.cls.predictions.dense.weight
    assert (id(dense), True) in mode._cache and torch.equal(first, second)
    with torch.no_grad():
        assert relative_error(first.numpy(), model(**x, mask_positions=positions).logits.numpy()) < 1e-2


# ================================================================== Keras only


def order_one_model(config, seed: int = 0, cls_name: str = "TFMobileBertForMaskedLM"):
    """Weights of order one (at the init's std 0.02 every position's logits are near the bias and alike)."""
    modeling = FRAMEWORKS["tf"].module("modeling")
    from mobilebert_tf.pretrained import weights_by_name

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


def test_head_projects_without_concatenating_the_output_matrix(tf):
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


def test_positions_in_the_input_dict(tf):
    """Keras's first argument may be a dict of every input: mask_positions in it works, and is checked, as a keyword."""
    config = tiny_config()
    model = order_one_model(config, seed=3)
    inputs = random_inputs(config)
    embeds = tf.gather(model.mobilebert.embeddings.word_embeddings, inputs["input_ids"])
    given = {"inputs_embeds": embeds, "attention_mask": inputs["attention_mask"]}
    full = model(given).logits.numpy()
    got = model({**given, "mask_positions": tf.constant(POSITIONS, tf.int32)}).logits.numpy()
    assert_close(got, gathered(full, POSITIONS), rtol=1e-5)
    for positions, message in BAD_POSITIONS:
        with pytest.raises(ValueError, match=message):
            model({**inputs, "mask_positions": positions})


def test_bad_positions_in_a_graph_are_an_invalid_argument_error(tf):
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


def test_inside_xla_a_bad_position_gives_nan_not_a_clamped_row(tf):
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


def test_fit_takes_mask_positions_and_labels_in_the_input_dict(tf, keras):
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fit runs with training=True
    model = order_one_model(config)
    inputs = random_inputs(config)
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # no step: the reported loss is the model's at these weights
    expected = float(model(inputs, mask_positions=POSITIONS, labels=LABELS).loss)
    data = tf.data.Dataset.from_tensors({**inputs, "mask_positions": POSITIONS, "labels": LABELS})
    history = model.fit(data, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("cls_name", ["TF" + name for name in CLASSES])
def test_pipeline_masked_logits_are_the_models_full_logits_at_the_masks(tf, cls_name):
    from mobilebert_tf.pipelines import gathered_masked_logits

    config = tiny_config()
    model = order_one_model(config, seed=4, cls_name=cls_name)
    inputs = {k: tf.constant(v) for k, v in random_inputs(config, batch=3).items()}
    positions = np.array([[0, 2], [0, 4], [2, 1], [2, 3]])  # row 1 has no mask
    name = "logits" if cls_name == "TFMobileBertForMaskedLM" else "prediction_logits"
    full = model(inputs)[name].numpy()  # (B, T, V)
    got = gathered_masked_logits(model, inputs, positions).numpy()  # (N, V)
    assert_close(got, full[positions[:, 0], positions[:, 1]], rtol=1e-5, what="pipeline masked logits")
