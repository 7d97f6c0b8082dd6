"""Model inputs, both frameworks: bad input is a ValueError that names it before any kernel runs (empty
batches, ragged lists, out-of-range ids, mismatched shapes, bad labels and choices); lists and numpy arrays
work as tensors; multiple choice broadcasts position_ids and takes inputs_embeds; replacing the embedding
table keeps a masked-LM head consistent.

Then what only one framework has: PyTorch's classifier_dropout and its two attention paths; Keras inside
tf.function graphs (unknown dims or rank: a readable tf.debugging assertion, never a raw TensorFlow error)
and float16 under the mixed policy. The checks around XLA are in test_tf_xla.py.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from tests.harness.models import FRAMEWORKS, VARIANTS, assert_close, make_pt, random_inputs, tiny_config


def message(expected, framework) -> str:
    """A case's expected error: one pattern, or {framework name: pattern} where the wordings differ."""
    return expected[framework.name] if isinstance(expected, dict) else expected


@lru_cache(maxsize=None)
def classifier(name: str):
    """One three-label classifier per framework (2 layers, 4 heads), shared: the checks below leave it as it was."""
    return FRAMEWORKS[name].model("MobileBertForSequenceClassification", num_labels=3)


def multiple_choice(x: dict) -> dict:
    """(B=2, T=7) -> (B=2, C=3, T=7): the sequence, reversed, rolled by one."""
    return {k: np.stack([v, np.flip(v, 1), np.roll(v, 1, 1)], axis=1) for k, v in x.items()}


# ------------------------------------------------------------------ bad input: a ValueError before any kernel


@pytest.mark.parametrize("name, value, expected", [
    ("input_ids", np.zeros((0, 7), np.int64), r"input_ids has an empty batch \(shape \(0, 7\)\)"),
    ("input_ids", np.zeros((2, 0), np.int64), "input has 0 tokens"),
    ("inputs_embeds", np.zeros((0, 7, 16), np.float32), r"inputs_embeds has an empty batch \(shape \(0, 7, 16\)\)"),
    ("input_ids", [[5, 6, 7], [8, 9]], "rectangular list of lists"),
    ("input_ids", "hello world",
     {"pt": r"input_ids must be a torch.Tensor \(or a list of lists of numbers\), got str",
      "tf": r"input_ids must be a tf.Tensor \(or a list of lists of numbers\), got str"}),
    ("input_ids", b"hello", {"pt": "input_ids must be a torch.Tensor.*got bytes", "tf": "input_ids must be a tf.Tensor.*got bytes"}),
])
def test_empty_or_unusable_inputs_are_value_errors(framework, name, value, expected):
    model = classifier(framework.name)
    with framework.no_kernel(model), pytest.raises(ValueError, match=message(expected, framework)):
        framework.call(model, {name: value})


def test_no_kernel_catches_a_model_that_runs(framework):
    """The guard the checks above run under: a valid input reaches the embeddings and fails the block."""
    model = classifier(framework.name)
    x = random_inputs(model.config)
    with framework.no_kernel(model), pytest.raises(AssertionError, match="a kernel ran before the input was checked"):
        framework.call(model, x)
    assert framework.numpy(framework.call(model, x).logits).shape == (2, 3)  # the guard is gone after the block


# Each case: the numpy inputs (B=2, T=7) -> the bad ones, and the error it must raise.
BAD_INPUTS = [
    (lambda x: {**x, "input_ids": x["input_ids"] + 99}, r"input_ids must hold ids in \[0, 99\) \(config.vocab_size\); got"),
    (lambda x: {**x, "input_ids": x["input_ids"] - 50}, r"input_ids must hold ids in \[0, 99\).*got -"),
    (lambda x: {**x, "input_ids": x["input_ids"].astype(np.float32)}, "integer ids"),
    (lambda x: {k: np.tile(v, (1, 6)) for k, v in x.items()}, "42 tokens; this model takes at most 40"),
    (lambda x: {**x, "token_type_ids": x["token_type_ids"] + 1}, r"token_type_ids must hold ids in \[0, 2\).*type_vocab_size"),
    (lambda x: {**x, "token_type_ids": x["token_type_ids"][:1]}, "token_type_ids has shape"),
    (lambda x: {**x, "attention_mask": x["attention_mask"][:, :5]}, r"attention_mask has shape \(2, 5\) but input_ids has shape \(2, 7\)"),
    (lambda x: {**x, "inputs_embeds": np.zeros((2, 7, 16), np.float32)}, "either input_ids or inputs_embeds, not both"),
    (lambda x: {}, "pass input_ids"),
    (lambda x: {"attention_mask": x["attention_mask"]}, "pass input_ids"),
    (lambda x: {"inputs_embeds": np.zeros((2, 7, 32), np.float32)}, r"inputs_embeds must be \(batch, seq, 16\)"),
    (lambda x: {"inputs_embeds": np.zeros((2, 7, 7), np.float32)}, r"inputs_embeds must be \(batch, seq, 16\)"),
    (lambda x: {**x, "input_ids": x["input_ids"][0]}, "input_ids must have 2 dimensions"),
    (lambda x: {**x, "position_ids": np.arange(7)[None] + 35}, r"position_ids must hold ids in \[0, 40\)"),
    (lambda x: {**x, "head_mask": np.ones(3, np.float32)}, r"head_mask must have shape \(4,\) or \(2, 4\)"),
    # A dict where a tensor goes: Keras reads it as named inputs (the first-argument convention) and names the stray one.
    (lambda x: {"input_ids": {"input_ids": x["input_ids"], "input_idz": x["input_ids"]}},
     {"pt": "input_ids must be a torch.Tensor.*got dict", "tf": r"unexpected input names \['input_idz'\]"}),
]


@pytest.mark.parametrize("make_bad, expected", BAD_INPUTS)
def test_bad_inputs(framework, make_bad, expected):
    model = classifier(framework.name)
    with framework.no_kernel(model), pytest.raises(ValueError, match=message(expected, framework)):
        framework.call(model, make_bad(random_inputs(model.config)))


def test_bad_labels_and_choices(framework):
    x = random_inputs(tiny_config())
    mlm = framework.model("MobileBertForMaskedLM")
    with pytest.raises(ValueError, match=r"labels must hold class ids in \[0, 99\) or -100"):
        framework.call(mlm, {**x, "labels": np.full_like(x["input_ids"], 99)})
    choice = framework.model("MobileBertForMultipleChoice")
    mc = multiple_choice(x)  # (2, 3, 7)
    with framework.no_kernel(choice):
        with pytest.raises(ValueError, match=r"input_ids must have 3 dimensions \(batch, num_choices, seq\)"):
            framework.call(choice, x)
        with pytest.raises(ValueError, match="attention_mask has shape"):
            framework.call(choice, {"input_ids": mc["input_ids"], "attention_mask": mc["attention_mask"][:, :1]})
        with pytest.raises(ValueError, match="attention_mask has shape"):
            framework.call(choice, {"input_ids": mc["input_ids"], "attention_mask": mc["attention_mask"][..., :4]})
    # The class ids of a choice: [0, num_choices).
    with pytest.raises(ValueError, match=r"labels must hold class ids in \[0, 3\)"):
        framework.call(choice, {**mc, "labels": np.array([0, 3])})
    with pytest.raises(ValueError, match=r"labels must hold class ids in \[0, 2\)"):
        framework.call(choice, {**{k: v[:, :2] for k, v in mc.items()}, "labels": np.array([0, 2])})
    with pytest.raises(ValueError, match=r"labels must hold class ids in \[0, 3\)"):
        framework.call(classifier(framework.name), {**x, "labels": np.array([0, 3])})
    # Multi-label needs one column per label: float labels (inferred) or the problem type set.
    with pytest.raises(ValueError, match="labels has shape"):
        framework.call(classifier(framework.name), {**x, "labels": np.ones((2, 2), np.float32)})
    multi = framework.model("MobileBertForSequenceClassification", num_labels=3, problem_type="multi_label_classification")
    with pytest.raises(ValueError, match="labels has shape"):
        framework.call(multi, {**x, "labels": np.ones((2, 2), np.float32)})


# ------------------------------------------------------------------ lists and numpy arrays


def test_lists_and_numpy_arrays_are_taken_as_tensors(framework):
    model = classifier(framework.name)
    x = random_inputs(model.config)
    expected = framework.call(model, {**x, "labels": np.array([2, 0])})  # framework tensors
    from_lists = framework.call(model, {k: v.tolist() for k, v in x.items()}, labels=[2, 0])
    from_numpy = framework.call(model, {}, **x, labels=np.array([2, 0]))  # passed as they are, not made tensors
    for out in (from_lists, from_numpy):
        assert np.array_equal(framework.numpy(out.logits), framework.numpy(expected.logits))
        assert float(out.loss) == float(expected.loss)
    with pytest.raises(ValueError, match=r"input_ids must hold ids in \[0, 99\)"):
        framework.call(model, {"input_ids": [[5, 120]]})


# ------------------------------------------------------------------ multiple choice


def test_multiple_choice_position_ids_broadcast(framework):
    """One set of positions for every choice, as (T,), (1, T) or (1, 1, T), equals the full (B, C, T) form."""
    model = framework.model("MobileBertForMultipleChoice")
    x = multiple_choice(random_inputs(model.config))
    positions = np.array([3, 1, 4, 1, 5, 9, 2])
    logits = lambda **kw: framework.numpy(framework.call(model, {**x, **kw}).logits)  # noqa: E731
    expected = logits(position_ids=np.broadcast_to(positions, (2, 3, 7)).copy())
    for shared in (positions, positions[None], positions[None, None]):
        assert_close(logits(position_ids=shared), expected, 1e-6)
    assert float(np.abs(logits() - expected).max()) > 1e-3  # the positions matter
    with pytest.raises(ValueError, match=r"position_ids has shape \(2, 7\); allowed: \(2, 3, 7\)"):
        logits(position_ids=np.broadcast_to(positions, (2, 7)).copy())


def test_multiple_choice_from_inputs_embeds(framework):
    model = framework.model("MobileBertForMultipleChoice")
    x = multiple_choice(random_inputs(model.config))
    embeds = framework.numpy(model.get_input_embeddings().weight)[x["input_ids"]]  # (2, 3, 7, 16)
    labels = np.array([2, 0])
    expected = framework.call(model, {**x, "labels": labels})
    actual = framework.call(model, {"inputs_embeds": embeds, "attention_mask": x["attention_mask"],
                                    "token_type_ids": x["token_type_ids"], "labels": labels})
    assert_close(framework.numpy(actual.logits), framework.numpy(expected.logits), 1e-6)
    assert_close(framework.numpy(actual.loss), framework.numpy(expected.loss), 1e-6)
    with pytest.raises(ValueError, match=r"inputs_embeds must have 4 dimensions \(batch, num_choices, seq, embedding_size\)"):
        framework.call(model, {"inputs_embeds": embeds[0]})
    with pytest.raises(ValueError, match=r"multiple-choice input has shape \(2, 0, 7\)"):
        framework.call(model, {"input_ids": x["input_ids"][:, :0]})


# ------------------------------------------------------------------ replacing the embedding table


def new_table(framework, rows: int):
    """What set_input_embeddings takes: an nn.Embedding in PyTorch, a (rows, E) array in Keras."""
    if framework.name == "pt":
        return framework.lib().nn.Embedding(rows, 16)
    return np.random.default_rng(rows).standard_normal((rows, 16)).astype(np.float32)


def test_set_input_embeddings_of_another_size(framework):
    mlm = framework.model("MobileBertForMaskedLM")
    x = random_inputs(mlm.config)
    logits = lambda model, inputs: framework.numpy(framework.call(model, inputs).logits)  # noqa: E731
    before = logits(mlm, x)
    # The masked-LM head has one bias and one dense column per token: another size would not line up with it.
    with pytest.raises(ValueError, match=r"masked-LM head over 99 tokens.*resize_token_embeddings\(120\)"):
        mlm.set_input_embeddings(new_table(framework, 120))
    assert mlm.config.vocab_size == 99 and framework.numpy(mlm.get_input_embeddings().weight).shape[0] == 99
    assert np.array_equal(logits(mlm, x), before)  # unchanged, still runs
    # The suggested route works and keeps the head consistent.
    mlm.resize_token_embeddings(120)
    table = new_table(framework, 120)
    mlm.set_input_embeddings(table)
    if framework.name == "pt":  # PyTorch ties the decoder to the table's parameter; Keras reads the table itself
        assert mlm.cls.predictions.decoder.weight is table.weight
    assert logits(mlm, {"input_ids": np.array([[5, 119]])}).shape == (1, 2, 120)
    # A model without a masked-LM head takes any size; ids up to the new size then work.
    other = framework.model("MobileBertForSequenceClassification")
    other.set_input_embeddings(new_table(framework, 120))
    assert other.config.vocab_size == 120
    assert logits(other, {"input_ids": np.array([[5, 119]])}).shape == (1, 2)
    with pytest.raises(ValueError, match="padding id 0"):
        framework.model("MobileBertModel").set_input_embeddings(new_table(framework, 0))


# ================================================================== PyTorch only


def torch_inputs(config) -> dict:
    import torch

    return {k: torch.from_numpy(v) for k, v in random_inputs(config).items()}  # (2, 7), row 1 padded


@pytest.mark.parametrize("cls_name", ["MobileBertForSequenceClassification", "MobileBertForMultipleChoice",
                                      "MobileBertForTokenClassification"])
def test_classifier_dropout_falls_back_to_hidden_dropout(torch, cls_name):
    assert make_pt(cls_name, hidden_dropout_prob=0.3).dropout.p == 0.3
    assert make_pt(cls_name, hidden_dropout_prob=0.3, classifier_dropout=0.0).dropout.p == 0.0
    # Its effect in training: zeroes about p of the classifier's inputs and scales the rest by 1 / (1 - p).
    model = make_pt(cls_name, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    assert model.dropout.p == 0.0
    seen = {}
    model.dropout.register_forward_hook(lambda mod, args, out: seen.update(x=args[0], y=out))
    x = random_inputs(model.config)
    x = {k: torch.from_numpy(v) for k, v in (multiple_choice(x) if cls_name == "MobileBertForMultipleChoice" else x).items()}
    with torch.no_grad():
        model(**x)
    assert torch.equal(seen["x"], seen["y"])  # fallback 0.0: nothing dropped
    model = make_pt(cls_name, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.5).train()
    model.dropout.register_forward_hook(lambda mod, args, out: seen.update(x=args[0], y=out))
    with torch.no_grad():
        model(**x)
    kept = seen["y"] != 0
    assert 0.3 < float(kept.float().mean()) < 0.7
    assert_close(seen["y"][kept].numpy(), (2.0 * seen["x"][kept]).numpy(), 1e-6)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sdpa_and_explicit_attention_agree(torch, variant):
    """scaled_dot_product_attention (no attentions asked for) and the explicit softmax path give the same numbers.

    Order-one weights with O(1) softmax inputs (random_weights): saturated, the softmax would amplify the two
    kernels' float32 summation orders past 1e-5 (and hide real differences)."""
    model = FRAMEWORKS["pt"].model("MobileBertForPreTraining", variant)
    x = torch_inputs(model.config)
    with torch.no_grad():
        fast = model(**x, output_hidden_states=True)
        explicit = model(**x, output_hidden_states=True, output_attentions=True)
    assert explicit.attentions is not None and fast.attentions is None
    for a, b in zip(fast.hidden_states, explicit.hidden_states):
        assert_close(a.numpy(), b.numpy(), 1e-5, what=f"{variant} hidden states")
    assert_close(fast.prediction_logits.numpy(), explicit.prediction_logits.numpy(), 1e-5, what=f"{variant} logits")
    assert float(explicit.prediction_logits.std()) > 1e-2


# ================================================================== Keras only: inside tf.function graphs


@pytest.fixture(scope="module")
def small():
    """(config, a one-layer three-label Keras classifier): the graph tests trace it with unknown dims."""
    mobilebert_tf = FRAMEWORKS["tf"].module()
    config = tiny_config(num_labels=3, num_hidden_layers=1)
    model = mobilebert_tf.TFMobileBertForSequenceClassification(config)
    model(model.dummy_inputs)
    return config, model


def _ids(config, batch=2, seq=5):
    return random_inputs(config, batch=batch, seq=seq)["input_ids"]


@pytest.mark.parametrize(
    "name,value,match",
    [
        ("input_ids", 99, r"input_ids must hold ids in \[0, 99\) \(config.vocab_size\)"),
        ("input_ids", -1, r"input_ids must hold ids in \[0, 99\)"),
        ("token_type_ids", 5, r"token_type_ids must hold ids in \[0, 2\)"),
        ("labels", 7, r"labels must hold class ids in \[0, 3\)"),
    ],
)
def test_bad_ids_in_a_graph_fail_with_a_readable_message(tf, small, name, value, match):
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


def test_too_long_and_misaligned_inputs_in_a_graph(tf, small):
    config, model = small

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32)])
    def logits(ids, mask):
        return model(input_ids=ids, attention_mask=mask, training=False).logits

    ids = tf.ones((1, 41), tf.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"this model takes at most 40 \(config.max_position_embeddings\)"):
        logits(ids, tf.ones_like(ids))
    with pytest.raises(tf.errors.InvalidArgumentError, match="attention_mask must have the same shape as input_ids"):
        logits(tf.ones((2, 5), tf.int32), tf.ones((2, 4), tf.int32))


def test_float16_overflow_is_reported_not_returned(tf, keras):
    """float16 tops out at 65504: an overflow is a ValueError eagerly and a readable assertion in a graph."""
    mobilebert_tf = FRAMEWORKS["tf"].module()
    config = tiny_config(num_labels=3, num_hidden_layers=1)
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
    import tensorflow as tf

    spec = {k: tf.TensorSpec(None if k in unknown_rank else [None] * np.ndim(v), tf.as_dtype(np.asarray(v).dtype))
            for k, v in inputs.items()}

    @tf.function(input_signature=[spec])
    def run(x):
        out = model(x, training=False)
        return {k: v for k, v in out.items() if isinstance(v, tf.Tensor)}

    return run({k: tf.constant(v) for k, v in inputs.items()})


def _check_both_modes(model, inputs, eager_match, graph_match, unknown_rank=()):
    import tensorflow as tf

    with pytest.raises(ValueError, match=eager_match):
        model(inputs, training=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match=graph_match):
        _graph_call(model, inputs, unknown_rank)


def test_shape_errors_read_well_eagerly_and_in_a_graph(tf, small):
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


def test_valid_inputs_of_unknown_shape_run_in_a_graph(tf, small):
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


def test_multi_label_and_regression_label_shapes_in_a_graph(tf):
    mobilebert_tf = FRAMEWORKS["tf"].module()
    config = tiny_config(num_labels=3, num_hidden_layers=1)
    ids = _ids(config)
    multi = mobilebert_tf.TFMobileBertForSequenceClassification(config.copy(problem_type="multi_label_classification"))
    _check_both_modes(multi, {"input_ids": ids, "labels": np.ones((2, 2), np.float32)},
                      "labels has shape", r"labels must have the shape of the logits \(multi-label")
    regression = mobilebert_tf.TFMobileBertForSequenceClassification(config.copy(num_labels=1))
    _check_both_modes(regression, {"input_ids": ids, "labels": np.ones((2, 3), np.float32)},
                      r"regression labels must have shape \(2, 1\) or \(2,\)", "regression labels must have shape")
    good = {"input_ids": ids, "labels": np.array([[1, 0, 1], [0, 0, 1]], np.float32)}
    np.testing.assert_allclose(_graph_call(multi, good)["loss"].numpy(), multi(good).loss.numpy(), rtol=1e-6)
