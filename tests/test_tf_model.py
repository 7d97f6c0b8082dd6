"""Keras MobileBERT (mobilebert_tf) against our PyTorch model and the reference's TF classes.

Every head x every tiny variant: the PyTorch model gets order-one random weights, they are copied
into the Keras model by the naming rule (Dense kernel = Linear weight transposed, real LayerNorm
gamma/beta, embeddings tables by name), and logits, hidden states and attentions must agree to
relative 1e-5 in float32; so must every loss. Against transformers==4.57.6 (test-only reference,
skipped when absent): the weight names must be the hub's (TF model name included) and outputs equal.
Then the Keras calling conventions (dict / numpy / int32 / tuple outputs, training dropout) and
every bad input, eagerly and inside tf.function.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")
torch = pytest.importorskip("torch")

import mobilebert_pt  # noqa: E402
import mobilebert_tf  # noqa: E402
from mobilebert_tf.modeling import weights_by_name  # noqa: E402
from tests.helpers import VARIANTS, assert_close, random_inputs, relative_error, tiny_config  # noqa: E402

HEADS = [
    "MobileBertModel", "MobileBertForPreTraining", "MobileBertForMaskedLM", "MobileBertForNextSentencePrediction",
    "MobileBertForSequenceClassification", "MobileBertForMultipleChoice", "MobileBertForTokenClassification",
    "MobileBertForQuestionAnswering",
]
DECODER = "predictions___cls/predictions/decoder/weight:0"
WORDS = "mobilebert/embeddings/word_embeddings/weight:0"


def config_for(variant: str = "default", **overrides):
    return tiny_config(variant, **{"num_labels": 3, **overrides})


def inputs_for(config, architecture: str, seed: int = 0) -> dict:
    """int64 numpy inputs; multiple choice gets (batch=2, choices=3, seq=7), the others (2, 7)."""
    if architecture != "MobileBertForMultipleChoice":
        return random_inputs(config, seed=seed)
    choices = [random_inputs(config, seed=seed + c) for c in range(3)]
    return {k: np.stack([c[k] for c in choices], axis=1) for k in choices[0]}


# ---------------------------------------------------------------------------------------- PT -> TF by name


def tf_name(pt_name: str, modules: dict, bare: bool) -> tuple:
    """(Keras weight name without the model prefix, transpose?) of a PyTorch parameter, by the naming rule."""
    module_name, leaf = pt_name.rsplit(".", 1)
    module = modules[module_name]
    path = ("mobilebert." + module_name) if bare else module_name
    # "encoder.layer.0" -> "encoder/layer_._0", "ffn.1" stays one name "ffn.1"; the rest split on dots.
    merged = []
    for part in path.split("."):
        if part.isdigit():
            merged[-1] = f"layer_._{part}" if merged[-1] == "layer" else f"{merged[-1]}.{part}"
        else:
            merged.append(part)
    if merged[0] == "cls":  # the hub's TF heads: predictions___cls/predictions, seq_relationship___cls/seq_relationship
        merged = [merged[1] + "___cls"] + merged[1:]
    name = "/".join(merged)
    if isinstance(module, torch.nn.Linear):
        return f"{name}/{'kernel' if leaf == 'weight' else 'bias'}:0", leaf == "weight"
    if isinstance(module, torch.nn.LayerNorm):
        return f"{name}/{'gamma' if leaf == 'weight' else 'beta'}:0", False
    if isinstance(module, torch.nn.Embedding):
        return f"{name}/{'weight' if merged[-1] == 'word_embeddings' else 'embeddings'}:0", False
    # NoNorm (weight/bias) and the masked-LM head's own parameters (dense/weight, bias).
    if name.endswith("/predictions") and leaf == "weight":
        raise AssertionError(pt_name)
    return f"{name}/{leaf}:0", False


def pt_weights_as_tf(pt_model) -> dict:
    modules = dict(pt_model.named_modules())
    bare = not any(n.startswith("mobilebert.") for n, _ in pt_model.named_parameters())
    out = {}
    for name, p in pt_model.named_parameters():  # the tied decoder appears once, as the word embeddings
        if name.endswith("predictions.dense.weight"):  # a (H - E, V) matrix, stored as it is
            out["predictions___cls/predictions/dense/weight:0"] = p.detach().numpy()
            continue
        key, transpose = tf_name(name, modules, bare)
        value = p.detach().numpy()
        out[key] = value.T if transpose else value
    return out


def randomize(model, seed: int) -> None:
    """Order-one weights (at the init's std 0.02 every activation is near zero and any two models agree):
    dense std 1/sqrt(fan_in), embeddings std 0.5, norm scales 1 + N(0, 0.1), biases N(0, 0.1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("LayerNorm.weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif p.dim() == 1:
                p.copy_(0.1 * noise)
            elif name.endswith("_embeddings.weight"):
                p.copy_(0.5 * noise)
            elif name.endswith("predictions.dense.weight"):
                p.copy_(0.2 * noise)
            else:
                p.copy_(noise / p.shape[1] ** 0.5)


def assign(tf_model, weights: dict) -> None:
    variables = weights_by_name(tf_model)
    weights = {k: v for k, v in weights.items() if k != DECODER}
    assert sorted(variables) == sorted(weights), (sorted(set(variables) ^ set(weights)))
    for name, value in weights.items():
        assert tuple(variables[name].shape) == value.shape, name
        variables[name].assign(value)


def pt_and_tf(architecture: str, config, seed: int = 0):
    torch.manual_seed(seed)
    pt = getattr(mobilebert_pt, architecture)(config).eval()
    randomize(pt, seed)
    model = getattr(mobilebert_tf, "TF" + architecture)(config)
    model(model.dummy_inputs)  # builds every variable
    assign(model, pt_weights_as_tf(pt))
    return pt, model


def flat(out) -> dict:
    arrays = {}
    for key, value in out.items():
        if isinstance(value, (tuple, list)):
            arrays.update({f"{key}.{i}": np.asarray(tf.cast(v, tf.float64)) if isinstance(v, tf.Tensor) else v.detach().numpy()
                           for i, v in enumerate(value)})
        else:
            arrays[key] = np.asarray(tf.cast(value, tf.float64)) if isinstance(value, tf.Tensor) else value.detach().numpy()
    return arrays


def run_pt(model, inputs: dict, **kwargs) -> dict:
    with torch.no_grad():
        tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}
        return flat(model(**tensors, **kwargs))


def run_tf(model, inputs: dict, **kwargs) -> dict:
    return flat(model(**{k: tf.constant(v) for k, v in inputs.items()}, training=False, **kwargs))


def assert_same_outputs(got: dict, expected: dict, rtol: float = 1e-5) -> None:
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert_close(got[key], expected[key], rtol=rtol, what=key)


# ---------------------------------------------------------------------------------------- equal to PyTorch


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("architecture", HEADS)
def test_outputs_equal_pytorch(architecture, variant):
    config = config_for(variant)
    pt, model = pt_and_tf(architecture, config)
    inputs = inputs_for(config, architecture)
    flags = dict(output_hidden_states=True, output_attentions=True)
    expected = run_pt(pt, inputs, **flags)
    got = run_tf(model, inputs, **flags)
    assert len([k for k in got if k.startswith("attentions.")]) == config.num_hidden_layers
    assert len([k for k in got if k.startswith("hidden_states.")]) == config.num_hidden_layers + 1
    assert_same_outputs(got, expected)
    # Without the flags: only the task outputs, the same values.
    assert_same_outputs(run_tf(model, inputs), run_pt(pt, inputs))


def _labels(config, architecture, inputs, rng):
    """Labels for every head, with ignored entries (-100, out-of-window answers) where the head allows them."""
    shape = inputs["input_ids"].shape
    if architecture == "MobileBertForPreTraining":
        mlm = np.where(rng.random(shape) < 0.4, inputs["input_ids"], -100)
        return dict(labels=mlm, next_sentence_label=np.array([0, 1]))
    if architecture == "MobileBertForMaskedLM":
        return dict(labels=np.where(rng.random(shape) < 0.4, inputs["input_ids"], -100))
    if architecture == "MobileBertForNextSentencePrediction":
        return dict(next_sentence_label=np.array([1, 0]))  # the older name of labels
    if architecture == "MobileBertForSequenceClassification":
        return dict(labels=np.array([2, 0]))
    if architecture == "MobileBertForMultipleChoice":
        return dict(labels=np.array([1, 2]))
    if architecture == "MobileBertForTokenClassification":
        return dict(labels=np.where(inputs["attention_mask"] == 1, rng.integers(0, 3, shape), -100))
    if architecture == "MobileBertForQuestionAnswering":
        # 50 is past the window: clamped to T and ignored, as in PyTorch.
        return dict(start_positions=np.array([1, 50]), end_positions=np.array([3, 6]))
    return {}


@pytest.mark.parametrize("variant", ["default", "layer_norm_gelu"])
@pytest.mark.parametrize("architecture", HEADS[1:])
def test_losses_equal_pytorch(architecture, variant):
    config = config_for(variant)
    pt, model = pt_and_tf(architecture, config)
    inputs = inputs_for(config, architecture)
    labels = _labels(config, architecture, inputs, np.random.default_rng(1))
    expected = run_pt(pt, {**inputs, **labels})
    got = run_tf(model, {**inputs, **labels})
    assert got["loss"].shape == () and np.isfinite(got["loss"])
    assert_same_outputs(got, expected)


@pytest.mark.parametrize(
    "problem,num_labels,labels",
    [
        ("regression", 1, np.array([0.5, -1.5], np.float32)),
        ("regression", 2, np.array([[0.5, -1.0], [2.0, 0.0]], np.float32)),
        ("single_label_classification", 3, np.array([2, -100])),
        ("multi_label_classification", 3, np.array([[1, 0, 1], [0, 0, 1]], np.float32)),
        (None, 1, np.array([0.3, 0.7], np.float32)),  # inferred: regression
        (None, 3, np.array([[0, 1, 1], [1, 0, 0]], np.float32)),  # inferred from float labels: multi-label
    ],
)
def test_sequence_classification_problem_types(problem, num_labels, labels):
    config = config_for(num_labels=num_labels, problem_type=problem)
    pt, model = pt_and_tf("MobileBertForSequenceClassification", config)
    inputs = random_inputs(config)
    expected = run_pt(pt, {**inputs, "labels": labels})
    got = run_tf(model, {**inputs, "labels": labels})
    assert_close(got["loss"], expected["loss"], what="loss")


def test_every_label_ignored_gives_zero_loss():
    # PyTorch's mean over no labels is NaN; a NaN would poison a Keras training run, so ours is 0.
    config = config_for()
    _, model = pt_and_tf("MobileBertForMaskedLM", config)
    inputs = random_inputs(config)
    out = run_tf(model, {**inputs, "labels": np.full_like(inputs["input_ids"], -100)})
    assert out["loss"] == 0.0


def test_head_mask_and_inputs_embeds_equal_pytorch():
    config = config_for()
    pt, model = pt_and_tf("MobileBertModel", config)
    inputs = random_inputs(config)
    for head_mask in (np.array([1.0, 0.0, 1.0, 0.5], np.float32), np.array([[1, 1, 0, 1], [0, 1, 1, 1]], np.float32)):
        expected = run_pt(pt, {**inputs, "head_mask": head_mask}, output_attentions=True)
        got = run_tf(model, {**inputs, "head_mask": head_mask}, output_attentions=True)
        assert_same_outputs(got, expected)
    # inputs_embeds = the word-embedding rows: the same outputs as the ids.
    embeds = tf.gather(model.mobilebert.embeddings.word_embeddings, inputs["input_ids"]).numpy()
    by_embeds = run_tf(model, {**{k: v for k, v in inputs.items() if k != "input_ids"}, "inputs_embeds": embeds})
    assert_same_outputs(by_embeds, run_tf(model, inputs))
    # position_ids (1, T) and (B, T), shifted.
    position_ids = np.arange(2, 9)[None, :]
    expected = run_pt(pt, {**inputs, "position_ids": position_ids})
    assert_same_outputs(run_tf(model, {**inputs, "position_ids": position_ids}), expected)
    assert_same_outputs(run_tf(model, {**inputs, "position_ids": np.repeat(position_ids, 2, 0)}), expected)


def test_float64_policy_matches_pytorch_double_closely():
    """In float64 both frameworks agree to 1e-12: any structural difference would show far above that."""
    config = config_for("default")
    pt, _ = pt_and_tf("MobileBertForPreTraining", config)
    pt = pt.double()
    weights = pt_weights_as_tf(pt)
    keras.mixed_precision.set_global_policy("float64")  # every layer computes in float64
    try:
        model = mobilebert_tf.TFMobileBertForPreTraining(config)
        model(model.dummy_inputs)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assign(model, weights)
    inputs = random_inputs(config)
    flags = dict(output_hidden_states=True, output_attentions=True)
    got, expected = run_tf(model, inputs, **flags), run_pt(pt, inputs, **flags)
    for key in expected:
        assert relative_error(got[key], expected[key]) < 1e-12, key


# ---------------------------------------------------------------------------------------- the reference


def _reference_tf(architecture, config):
    transformers = pytest.importorskip("transformers")
    ref_config = transformers.MobileBertConfig.from_dict(config.to_dict())
    ref = getattr(transformers, "TF" + architecture)(ref_config)
    ref(ref.dummy_inputs, training=False)
    return ref


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("architecture", HEADS)
def test_names_and_outputs_equal_the_reference_tf(architecture, variant):
    # The reference sizes qa_outputs by num_labels: 2 there.
    config = config_for(variant, num_labels=2 if architecture == "MobileBertForQuestionAnswering" else 3)
    ref = _reference_tf(architecture, config)
    _, model = pt_and_tf(architecture, config)
    # The weight names are the hub's tf_model.h5 names: model name, then the same path, same shapes.
    assert model.name == re.sub(r"_\d+$", "", ref.name)  # Keras numbers the reference's later instances
    ref_vars = {v.name.split("/", 1)[1]: v for v in ref.weights}
    ours = weights_by_name(model)
    assert sorted(ours) == sorted(k for k in ref_vars if k != DECODER)
    assert all(v.name.split("/", 1)[0] == model.name for v in model.weights)
    for name, var in ours.items():
        assert tuple(var.shape) == tuple(ref_vars[name].shape), name
        ref_vars[name].assign(var)
    if DECODER in ref_vars:  # the reference keeps its own decoder; ours is tied to the word embeddings
        ref_vars[DECODER].assign(ours[WORDS])
    # Outputs without labels (the reference's TF losses reduce differently and do not clamp QA
    # positions; our losses are compared with PyTorch's above).
    inputs = {k: tf.constant(v) for k, v in inputs_for(config, architecture).items()}
    flags = dict(output_hidden_states=True, output_attentions=True)
    expected = {k: v for k, v in ref(**inputs, training=False, **flags).items() if v is not None}
    assert_same_outputs(flat(model(**inputs, training=False, **flags)), flat(expected))


# ---------------------------------------------------------------------------------------- mirroring PyTorch

# Keras reserves .output and .input (its own properties): the only attribute names that differ.
KERAS_FORCED = {"output": "output_layer", "input": "input_layer"}
TORCH_TO_KERAS = {"Linear": keras.layers.Dense, "LayerNorm": keras.layers.LayerNormalization,
                  "Dropout": keras.layers.Dropout}


def _keras_attribute(model, path: str):
    obj = model
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, KERAS_FORCED.get(part, part))
    return obj


@pytest.mark.parametrize("variant", ["default", "layer_norm_gelu", "separate_qk_no_bottleneck"])
@pytest.mark.parametrize("architecture", HEADS)
def test_attributes_mirror_pytorch(architecture, variant):
    """Every PyTorch submodule is at the same attribute path in Keras, of the mirrored class
    (MobileBertX -> TFMobileBertX, NoNorm -> TFNoNorm, Linear -> Dense, Embedding -> a variable)."""
    config = config_for(variant, num_hidden_layers=1)
    pt = getattr(mobilebert_pt, architecture)(config)
    model = getattr(mobilebert_tf, "TF" + architecture)(config)
    model(model.dummy_inputs)
    bare = architecture == "MobileBertModel"  # PyTorch's bare backbone is what the Keras model holds as .mobilebert
    for name, module in pt.named_modules():
        if not name or name.endswith("predictions.decoder"):
            continue  # the tied decoder: Keras computes with mobilebert.embeddings.word_embeddings itself
        target = _keras_attribute(model, "mobilebert." + name if bare else name)
        kind = type(module).__name__
        if kind == "ModuleList":
            assert isinstance(target, (list, tuple)) or type(target).__name__ == "ListWrapper", name
            assert len(target) == len(module), name
        elif kind == "Embedding" or name.endswith("predictions.dense"):
            assert isinstance(target, tf.Variable) and tuple(target.shape) == tuple(module.weight.shape), name
        elif kind in TORCH_TO_KERAS:
            assert isinstance(target, TORCH_TO_KERAS[kind]), (name, type(target))
        else:
            # A head's backbone is the Keras main layer (a Keras model inside a model would nest the h5 names).
            expected = "TFMobileBertMainLayer" if kind == "MobileBertModel" else "TF" + kind
            assert type(target).__name__ == expected, (name, type(target).__name__)
            for flag in ("use_bottleneck", "use_bottleneck_attention", "key_query_shared_bottleneck", "trigram_input",
                         "num_labels", "num_heads", "head_dim"):
                if hasattr(module, flag):
                    assert getattr(target, flag) == getattr(module, flag), (name, flag)
    pt_embeddings = pt.embeddings if bare else pt.mobilebert.embeddings
    assert model.mobilebert.embeddings.padding_idx == pt_embeddings.word_embeddings.padding_idx


def test_pad_row_gets_no_gradient_as_in_pytorch():
    """nn.Embedding(padding_idx=pad_token_id): the pad row's lookups give no gradient; Keras does the same, so
    fine-tuning moves the same weights. (The masked-LM decoder, tied to the table, still trains the pad row.)"""
    config = config_for()
    pad = config.pad_token_id
    for architecture in ("MobileBertForSequenceClassification", "MobileBertForMaskedLM"):
        pt, model = pt_and_tf(architecture, config)
        inputs = random_inputs(config)  # the last row is padded with pad_token_id
        assert (inputs["input_ids"] == pad).any()
        if architecture == "MobileBertForMaskedLM":
            labels = np.where(inputs["attention_mask"] == 1, inputs["input_ids"], -100)
        else:
            labels = np.array([2, 0])
        pt(**{k: torch.from_numpy(v) for k, v in inputs.items()}, labels=torch.from_numpy(labels)).loss.backward()
        expected = pt.mobilebert.embeddings.word_embeddings.weight.grad.numpy()
        table = model.mobilebert.embeddings.word_embeddings
        with tf.GradientTape() as tape:
            loss = model({**inputs, "labels": labels}, training=False).loss
        got = tf.convert_to_tensor(tape.gradient(loss, table)).numpy()
        assert_close(got, expected, rtol=1e-5, what=f"{architecture} word-embedding gradient")
        used = np.unique(inputs["input_ids"][inputs["input_ids"] != pad])
        assert np.all(np.abs(got[used]).sum(axis=1) > 0)
        if architecture == "MobileBertForSequenceClassification":
            assert np.all(got[pad] == 0) and np.all(expected[pad] == 0)
        else:
            assert np.any(got[pad] != 0)  # through the tied decoder, as in PyTorch


# ---------------------------------------------------------------------------------------- Keras conventions


def test_dict_numpy_int32_and_tuple_inputs():
    config = config_for()
    _, model = pt_and_tf("MobileBertForMaskedLM", config)
    inputs = random_inputs(config)
    labels = np.where(inputs["attention_mask"] == 1, inputs["input_ids"], -100)
    expected = run_tf(model, {**inputs, "labels": labels})
    # A dict as the first argument (as model.fit passes it), labels inside.
    assert_same_outputs(flat(model({**inputs, "labels": labels}, training=False)), expected, rtol=0)
    # numpy arrays, int32 ids, labels as a keyword.
    as_numpy = model(**{k: v.astype(np.int32) for k, v in inputs.items()}, labels=labels.astype(np.int32))
    assert_same_outputs(flat(as_numpy), expected, rtol=0)
    # return_dict=False: the output's to_tuple().
    tup = model(inputs["input_ids"], attention_mask=inputs["attention_mask"], token_type_ids=inputs["token_type_ids"],
                labels=labels, return_dict=False)
    assert isinstance(tup, tuple) and len(tup) == 2
    np.testing.assert_array_equal(tup[1].numpy(), expected["logits"])
    # Inside tf.function (graph), dynamic shapes: the same numbers.
    fn = tf.function(lambda x: model(x, training=False).logits,
                     input_signature=[{k: tf.TensorSpec([None, None], tf.int64) for k in inputs}])
    assert_close(fn({k: tf.constant(v) for k, v in inputs.items()}).numpy(), expected["logits"], rtol=1e-6)


def test_built_inside_a_graph_names_as_eagerly():
    """A model whose first call is traced by tf.function gets the same (hub) names and numbers; small int dtypes work."""
    config = config_for(num_hidden_layers=1)
    eager = mobilebert_tf.TFMobileBertForPreTraining(config)
    eager(eager.dummy_inputs)
    traced = mobilebert_tf.TFMobileBertForPreTraining(config)
    ids = tf.constant(random_inputs(config)["input_ids"], tf.int16)
    tf.function(lambda x: traced(x).prediction_logits)(ids)
    assert sorted(weights_by_name(traced)) == sorted(weights_by_name(eager))
    assert all(v.name.startswith(traced.name + "/") for v in traced.weights)
    assign(traced, {k: v.numpy() for k, v in weights_by_name(eager).items()})
    np.testing.assert_allclose(traced(ids).prediction_logits.numpy(), eager(tf.cast(ids, tf.int64)).prediction_logits.numpy(),
                               rtol=1e-6, atol=1e-6)


def test_training_applies_dropout_only_when_asked():
    config = config_for()
    _, model = pt_and_tf("MobileBertForSequenceClassification", config)
    inputs = {k: tf.constant(v) for k, v in random_inputs(config).items()}
    eval_a, eval_b = model(inputs, training=False).logits, model(inputs).logits
    np.testing.assert_array_equal(eval_a.numpy(), eval_b.numpy())  # training defaults to False
    train_a, train_b = model(inputs, training=True).logits, model(inputs, training=True).logits
    assert relative_error(train_a, eval_a) > 1e-3 and relative_error(train_a, train_b) > 1e-3

    quiet = config_for(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    _, model = pt_and_tf("MobileBertForSequenceClassification", quiet)
    assert_close(model(inputs, training=True).logits.numpy(), model(inputs, training=False).logits.numpy(), rtol=1e-6)


def test_gradients_reach_every_weight():
    config = config_for()
    _, model = pt_and_tf("MobileBertForPreTraining", config)
    inputs = random_inputs(config)
    labels = dict(labels=inputs["input_ids"], next_sentence_label=np.array([0, 1]))
    with tf.GradientTape() as tape:
        loss = model({**inputs, **labels}, training=True).loss
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.name for v, g in zip(model.trainable_variables, grads) if g is None or not np.any(np.asarray(tf.convert_to_tensor(g)))]
    assert missing == []


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
