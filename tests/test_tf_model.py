"""Keras MobileBERT (mobilebert_tf) against our PyTorch model and the reference's TF classes.

Every head x every tiny variant: the PyTorch model gets order-one random weights, they are copied
into the Keras model by the naming rule (Dense kernel = Linear weight transposed, real LayerNorm
gamma/beta, embeddings tables by name), and logits, hidden states and attentions must agree to
relative 1e-5 in float32; so must every loss. (Against transformers' TF classes: test_tf_reference.py.)
Then the attribute structure (mirroring PyTorch), the pad row's gradient, and the Keras calling
conventions (dict / numpy / int32 / tuple outputs, training dropout). Bad inputs: test_tf_inputs.py.
"""

from __future__ import annotations


import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")
torch = pytest.importorskip("torch")

import mobilebert_pt  # noqa: E402
import mobilebert_tf  # noqa: E402
from mobilebert_tf.pretrained import weights_by_name  # noqa: E402
from tests.harness.models import VARIANTS, assert_close, random_inputs, relative_error, tiny_config  # noqa: E402

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
