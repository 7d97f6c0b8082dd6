"""Model behaviour, both frameworks: return_dict=False gives the output's tuple, head_mask zeroes heads,
the default masks and ids are what they say, right padding leaves the real tokens alone, gradients reach
every weight (exactly the weights a config never reads get none, and the padding row none as an input),
dropout runs only in training, and a loss over no labels is 0.

Then what only one framework has. PyTorch: gradient checkpointing, resizing and replacing the tied
embeddings, float16 on the CPU and its overflow, the GPU. Keras against our PyTorch model: every head x
every tiny variant, with order-one weights copied by the naming rule (Dense kernel = Linear weight
transposed, real LayerNorm gamma/beta, embedding tables by name), must agree to relative 1e-5 in float32
(logits, hidden states, attentions, every loss); the attributes mirror PyTorch's; the pad row's gradient
is PyTorch's. (Against transformers' TF classes: test_tf_reference.py.) Keras's calling conventions
(dict / numpy / int32 / tuple outputs, graphs). Bad inputs: test_inputs.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from mobilebert_common.checks import FLOAT16_OVERFLOW
from tests.harness.models import (FRAMEWORKS, VARIANTS, assert_close, make_pt, model_inputs, pt_inputs, random_inputs, randomize,
                                  relative_error, tiny_config, unused_parameters)

HEADS = [
    "MobileBertModel", "MobileBertForPreTraining", "MobileBertForMaskedLM", "MobileBertForNextSentencePrediction",
    "MobileBertForSequenceClassification", "MobileBertForMultipleChoice", "MobileBertForTokenClassification",
    "MobileBertForQuestionAnswering",
]
MASKED_LM = ("MobileBertForPreTraining", "MobileBertForMaskedLM")  # their decoder is tied to the word embeddings


def labels_for(architecture: str, inputs: dict, seed: int = 1) -> dict:
    """Numpy labels for every head (three labels or choices), with ignored entries (-100, out-of-window answers)
    where the head allows them."""
    shape, rng = inputs["input_ids"].shape, np.random.default_rng(seed)
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


# ------------------------------------------------------------------ outputs


@pytest.mark.parametrize("architecture", HEADS)
def test_return_dict_false_gives_the_same_tuple(framework, architecture):
    model = framework.model(architecture, num_labels=3)
    x = model_inputs(model.config, architecture)
    x = {**x, **labels_for(architecture, x)}
    as_dict = framework.call(model, x, output_hidden_states=True)
    as_tuple = framework.call(model, x, output_hidden_states=True, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(as_dict.to_tuple())
    for a, b in zip(as_tuple, as_dict.to_tuple()):
        a, b = (np.stack([framework.numpy(t) for t in v]) if isinstance(v, tuple) else framework.numpy(v) for v in (a, b))
        assert np.array_equal(a, b)
    if architecture != "MobileBertModel":  # with labels
        assert framework.numpy(as_tuple[0]).ndim == 0  # the loss comes first
    hidden = as_dict.hidden_states
    assert len(hidden) == model.config.num_hidden_layers + 1 and hidden[0].shape[-1] == model.config.hidden_size


def test_head_mask_zeroes_heads_and_defaults_match(framework):
    model = framework.model("MobileBertModel")
    x = random_inputs(model.config)
    base = framework.run(model, x)["last_hidden_state"]
    ones = framework.run(model, {**x, "head_mask": np.ones(model.config.num_attention_heads, np.float32)})
    masked = framework.run(model, {**x, "head_mask": np.array([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]], np.float32)},
                           output_attentions=True)
    assert_close(ones["last_hidden_state"], base, 1e-4)
    assert float(np.abs(masked["attentions.0"][:, 1]).max()) == 0.0  # head 1 of layer 0 masked out
    assert float(np.abs(masked["attentions.0"][:, 0]).max()) > 0.0
    assert relative_error(masked["last_hidden_state"], base) > 1e-3


def test_default_masks_and_ids(framework):
    model = framework.model("MobileBertModel")
    ids = random_inputs(model.config)["input_ids"]
    hidden = lambda **x: framework.run(model, x)["last_hidden_state"]  # noqa: E731
    implicit = hidden(input_ids=ids)
    explicit = hidden(input_ids=ids, attention_mask=np.ones_like(ids), token_type_ids=np.zeros_like(ids),
                      position_ids=np.arange(ids.shape[1])[None])
    from_embeds = hidden(inputs_embeds=framework.numpy(model.get_input_embeddings().weight)[ids])
    assert_close(explicit, implicit, 1e-5)
    assert_close(from_embeds, implicit, 1e-5)


def test_padding_does_not_change_the_real_tokens(framework):
    """Right padding under attention_mask=0 leaves the other tokens' outputs as without it (absolute positions)."""
    model = framework.model("MobileBertModel", variant="no_trigram_no_pooler_act")  # trigram mixes in the pad's embedding
    short = framework.run(model, {"input_ids": np.array([[5, 6, 7, 8]])})["last_hidden_state"]
    long = framework.run(model, {"input_ids": np.array([[5, 6, 7, 8, 0, 0]]),
                                 "attention_mask": np.array([[1, 1, 1, 1, 0, 0]])})["last_hidden_state"]
    assert_close(long[:, :4], short, 1e-5)


# ------------------------------------------------------------------ training


@pytest.mark.parametrize("architecture", HEADS[1:])
def test_gradients_reach_every_weight(framework, architecture):
    model = framework.model(architecture, num_labels=3)
    x = model_inputs(model.config, architecture)
    loss, grads = framework.gradients(model, {**x, **labels_for(architecture, x)})
    assert np.isfinite(loss)
    # A multiple-choice score's bias shifts every choice alike and the softmax over the choices ignores it: its
    # gradient is 0 up to float32 rounding (often exactly 0), so it is checked as that, not as a live weight.
    choice = architecture == "MobileBertForMultipleChoice"
    invariant = {"classifier.bias", "classifier/bias:0"} & set(grads) if choice else set()
    assert len(invariant) == choice and all(float(np.abs(grads[n]).max()) < 1e-6 for n in invariant)
    dead = sorted(n for n, g in grads.items() if n not in invariant and (g is None or not np.any(g)))
    assert dead == sorted(unused_parameters(model.config, architecture, framework.name)) == []
    if architecture not in MASKED_LM:  # (a tied decoder trains the padding row as an output)
        words = next(g for n, g in grads.items() if "word_embeddings" in n)
        assert not np.any(words[model.config.pad_token_id])  # the padding row: no input gradient


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_gradients_every_variant(framework, variant):
    model = framework.model("MobileBertForPreTraining", variant)
    x = random_inputs(model.config)
    _, grads = framework.gradients(model, {**x, **labels_for("MobileBertForPreTraining", x)})
    dead = {n for n, g in grads.items() if g is None or (g.size and not np.any(g))}  # (H - E, V) is empty when E == H
    # Exactly the weights the hub's layout holds but this config never reads get no gradient.
    assert dead == unused_parameters(model.config, "MobileBertForPreTraining", framework.name)


@pytest.mark.parametrize("architecture", ["MobileBertForMaskedLM", "MobileBertForSequenceClassification"])
def test_dropout_only_in_training(framework, architecture):
    model = framework.model(architecture)
    x = random_inputs(model.config)
    logits = lambda m, training: framework.numpy(framework.call(m, x, training=training).logits)  # noqa: E731
    eval_a, eval_b = logits(model, False), logits(model, False)
    train_a, train_b = logits(model, True), logits(model, True)
    assert np.array_equal(eval_a, eval_b)
    assert relative_error(train_a, train_b) > 1e-3 and relative_error(train_a, eval_a) > 1e-3
    # With every probability 0, training gives the evaluation numbers: the only difference was dropout.
    quiet = framework.model(architecture, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    assert_close(logits(quiet, True), eval_a, 1e-6)
    assert_close(logits(quiet, True), logits(quiet, False), 1e-6)


def test_every_label_ignored_gives_zero_loss(framework):
    # torch's mean over no labels is NaN; a NaN would poison a training run, so ours is 0 in both frameworks.
    model = framework.model("MobileBertForMaskedLM")
    x = random_inputs(model.config)
    assert float(framework.call(model, {**x, "labels": np.full_like(x["input_ids"], -100)}).loss) == 0.0


# ================================================================== PyTorch only


def test_gradient_checkpointing_gives_the_same_gradients(torch):
    model = make_pt("MobileBertForMaskedLM", noise=0.05, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    x = pt_inputs(model.config)
    y = {k: torch.from_numpy(v) for k, v in labels_for("MobileBertForMaskedLM", x).items()}

    def grads():
        model.zero_grad()
        model(**x, **y).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = grads()
    assert not model.is_gradient_checkpointing
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing and model.mobilebert.encoder.gradient_checkpointing
    checkpointed = grads()
    for name, g in plain.items():
        assert_close(checkpointed[name].numpy(), g.numpy(), 1e-5, what=name)
    model.gradient_checkpointing_disable()
    assert not model.is_gradient_checkpointing


@pytest.mark.parametrize("cls_name", ["MobileBertForMaskedLM", "MobileBertForPreTraining"])
def test_resize_token_embeddings_keeps_the_head_tied(torch, tmp_path, cls_name):
    import mobilebert_pt

    model = make_pt(cls_name)
    config = model.config
    x = pt_inputs(config)
    with torch.no_grad():
        before = model(**x)[0]
    new = model.resize_token_embeddings(config.vocab_size + 5)
    assert new.weight.shape == (104, 16) and model.config.vocab_size == 104
    head = model.cls.predictions
    assert head.decoder.weight is model.get_input_embeddings().weight
    assert head.bias.shape == (104,) and head.dense.weight.shape == (16, 104)
    with torch.no_grad():
        after = model(**x)[0]
    assert after.shape[-1] == 104
    assert_close(after[..., :99].numpy(), before.numpy(), 1e-5)  # old ids score as before
    # The new rows are trained through the tied decoder and the input embedding alike.
    model.train()
    model(**x, labels=torch.full_like(x["input_ids"], 103), **({"next_sentence_label": torch.tensor([0, 1])}
          if cls_name == "MobileBertForPreTraining" else {})).loss.backward()
    assert float(model.get_input_embeddings().weight.grad[103].abs().sum()) > 0
    model.eval()
    model.save_pretrained(tmp_path)
    loaded = getattr(mobilebert_pt, cls_name).from_pretrained(tmp_path)
    assert loaded.config.vocab_size == 104
    with torch.no_grad():
        assert_close(loaded(**x)[0].numpy(), model(**x)[0].numpy(), 0.0)
    shrunk = model.resize_token_embeddings(50)
    assert shrunk.weight.shape == (50, 16) and model.cls.predictions.bias.shape == (50,)
    with pytest.raises(ValueError, match="new_num_tokens"):
        model.resize_token_embeddings(0)


def test_set_input_embeddings_reties_the_decoder(torch):
    model = make_pt()
    table = torch.nn.Embedding(99, 16)
    model.set_input_embeddings(table)
    assert model.get_input_embeddings() is table
    assert model.cls.predictions.decoder.weight is table.weight
    with pytest.raises(ValueError, match="embedding_size"):
        model.set_input_embeddings(torch.nn.Embedding(99, 8))


def test_bottleneck_without_shared_or_attention_bottleneck_reads_the_layer_input(torch):
    """use_bottleneck with neither key_query_shared_bottleneck nor use_bottleneck_attention: query and key read
    the layer's input h (width hidden_size), value too; the residual is the input bottleneck. The reference sizes
    query/key for the bottleneck width there and fails; ours sizes them to what they read."""
    model = make_pt("MobileBertModel", key_query_shared_bottleneck=False)
    layer = model.encoder.layer[0]
    assert layer.attention.self.query.weight.shape == (16, 32) and not hasattr(layer.bottleneck, "attention")
    seen = {}
    layer.attention.self.register_forward_hook(lambda mod, args, out: seen.update(q=args[0], k=args[1], v=args[2]))
    layer.register_forward_hook(lambda mod, args, out: seen.update(h=args[0]))
    with torch.no_grad():
        out = model(**pt_inputs(model.config))
    assert torch.equal(seen["q"], seen["h"]) and torch.equal(seen["k"], seen["h"]) and torch.equal(seen["v"], seen["h"])
    assert bool(torch.isfinite(out.last_hidden_state).all())


def test_float16_on_cpu_runs(torch):
    """torch 2.13 runs float16 matmuls on the CPU, so float16 is allowed there; results track float32."""
    model = make_pt(noise=0.05)
    x = pt_inputs(model.config)
    with torch.no_grad():
        expected = model(**x).logits
        actual = model.half()(**x).logits
    assert actual.dtype == torch.float16
    assert_close(actual.float().numpy(), expected.numpy(), 1e-2)


def test_float16_overflow_is_reported(torch):
    """Released MobileBERT activations reach 1e7-1e8; float16 tops out at 65504: an error, never silent inf/NaN.
    (Keras under the mixed_float16 policy: test_inputs.py.)"""
    model = make_pt("MobileBertModel", noise=0.0)
    with torch.no_grad():  # every weight fits in float16, the activations do not: 6e4 * 100 -> 6e6 > 65504
        model.embeddings.position_embeddings.weight.fill_(6e4)
        model.embeddings.LayerNorm.weight.fill_(100.0)
    model = model.half()
    with pytest.raises(ValueError, match="bfloat16") as err:
        model(**pt_inputs(model.config))
    assert str(err.value) == FLOAT16_OVERFLOW
    out = model.to(torch.bfloat16)(**pt_inputs(model.config)).last_hidden_state  # the advice works
    assert bool(torch.isfinite(out).all())


# ------------------------------------------------------------------ GPU (skipped without CUDA)


@pytest.fixture
def cuda(torch):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")


@pytest.mark.gpu
@pytest.mark.parametrize("cls_name", HEADS)
def test_gpu_matches_cpu(torch, cuda, cls_name):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = make_pt(cls_name)
    x = pt_inputs(model.config, cls_name)
    with torch.no_grad():
        expected = model(**x)[0]
        actual = model.to("cuda")(**{k: v.cuda() for k, v in x.items()})[0].cpu()
    assert_close(actual.numpy(), expected.numpy(), 1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_gpu_half_precision_runs(torch, cuda, dtype):
    dtype = getattr(torch, dtype)
    model = make_pt(noise=0.05)
    x = pt_inputs(model.config)
    with torch.no_grad():
        expected = model(**x).logits
        actual = model.to("cuda", dtype)(**{k: v.cuda() for k, v in x.items()}).logits
    assert actual.dtype == dtype and actual.device.type == "cuda"
    assert_close(actual.float().cpu().numpy(), expected.numpy(), 5e-2)


@pytest.mark.gpu
def test_gpu_bad_ids_raise_before_a_device_assert(torch, cuda):
    model = make_pt().to("cuda")
    x = {k: v.cuda() for k, v in pt_inputs(model.config).items()}
    with pytest.raises(ValueError, match="input_ids must hold ids"):
        model(**{**x, "input_ids": x["input_ids"] + 99})
    assert model(**x).logits.shape == (2, 7, 99)  # the device is still usable


# ================================================================== Keras against our PyTorch model


needs_both = pytest.mark.usefixtures("torch", "tf", "keras")  # a skip unless torch and tf-keras are installed


def config_for(variant: str = "default", **overrides):
    return tiny_config(variant, **{"num_labels": 3, **overrides})


# ---------------------------------------------------------------------------------------- PT -> TF by name


def tf_name(pt_name: str, modules: dict, bare: bool) -> tuple:
    """(Keras weight name without the model prefix, transpose?) of a PyTorch parameter, by the naming rule."""
    import torch

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


def assign(tf_model, weights: dict) -> None:
    from mobilebert_tf.pretrained import weights_by_name

    variables = weights_by_name(tf_model)
    weights = {k: v for k, v in weights.items() if k != "predictions___cls/predictions/decoder/weight:0"}  # tied
    assert sorted(variables) == sorted(weights), (sorted(set(variables) ^ set(weights)))
    for name, value in weights.items():
        assert tuple(variables[name].shape) == value.shape, name
        variables[name].assign(value)


def pt_and_tf(architecture: str, config, seed: int = 0):
    import torch

    import mobilebert_pt
    import mobilebert_tf

    torch.manual_seed(seed)
    pt = getattr(mobilebert_pt, architecture)(config).eval()
    randomize(pt, seed, embeddings_std=0.5)
    model = getattr(mobilebert_tf, "TF" + architecture)(config)
    model(model.dummy_inputs)  # builds every variable
    assign(model, pt_weights_as_tf(pt))
    return pt, model


def flat(out) -> dict:
    """An output of either framework -> {field: float64 numpy} (float64 kept: test_float64_... compares to 1e-12)."""
    import tensorflow as tf

    arrays = {}
    for key, value in out.items():
        if isinstance(value, (tuple, list)):
            arrays.update({f"{key}.{i}": np.asarray(tf.cast(v, tf.float64)) if isinstance(v, tf.Tensor) else v.detach().numpy()
                           for i, v in enumerate(value)})
        else:
            arrays[key] = np.asarray(tf.cast(value, tf.float64)) if isinstance(value, tf.Tensor) else value.detach().numpy()
    return arrays


def run_pt(model, inputs: dict, **kwargs) -> dict:
    import torch

    with torch.no_grad():
        tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}
        return flat(model(**tensors, **kwargs))


def run_tf(model, inputs: dict, **kwargs) -> dict:
    import tensorflow as tf

    return flat(model(**{k: tf.constant(v) for k, v in inputs.items()}, training=False, **kwargs))


def assert_same_outputs(got: dict, expected: dict, rtol: float = 1e-5) -> None:
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert_close(got[key], expected[key], rtol=rtol, what=key)


# ---------------------------------------------------------------------------------------- equal to PyTorch


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("architecture", HEADS)
@needs_both
def test_outputs_equal_pytorch(architecture, variant):
    config = config_for(variant)
    pt, model = pt_and_tf(architecture, config)
    inputs = model_inputs(config, architecture)
    flags = dict(output_hidden_states=True, output_attentions=True)
    expected = run_pt(pt, inputs, **flags)
    got = run_tf(model, inputs, **flags)
    assert len([k for k in got if k.startswith("attentions.")]) == config.num_hidden_layers
    assert len([k for k in got if k.startswith("hidden_states.")]) == config.num_hidden_layers + 1
    assert_same_outputs(got, expected)
    # Without the flags: only the task outputs, the same values.
    assert_same_outputs(run_tf(model, inputs), run_pt(pt, inputs))


@pytest.mark.parametrize("variant", ["default", "layer_norm_gelu"])
@pytest.mark.parametrize("architecture", HEADS[1:])
@needs_both
def test_losses_equal_pytorch(architecture, variant):
    config = config_for(variant)
    pt, model = pt_and_tf(architecture, config)
    inputs = model_inputs(config, architecture)
    labels = labels_for(architecture, inputs)
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
@needs_both
def test_sequence_classification_problem_types(problem, num_labels, labels):
    config = config_for(num_labels=num_labels, problem_type=problem)
    pt, model = pt_and_tf("MobileBertForSequenceClassification", config)
    inputs = random_inputs(config)
    expected = run_pt(pt, {**inputs, "labels": labels})
    got = run_tf(model, {**inputs, "labels": labels})
    assert_close(got["loss"], expected["loss"], what="loss")


@needs_both
def test_head_mask_and_inputs_embeds_equal_pytorch(tf):
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


@needs_both
def test_float64_policy_matches_pytorch_double_closely(keras):
    """In float64 both frameworks agree to 1e-12: any structural difference would show far above that."""
    config = config_for("default")
    pt, _ = pt_and_tf("MobileBertForPreTraining", config)
    pt = pt.double()
    weights = pt_weights_as_tf(pt)
    keras.mixed_precision.set_global_policy("float64")  # every layer computes in float64
    try:
        model = FRAMEWORKS["tf"].module().TFMobileBertForPreTraining(config)
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
TORCH_TO_KERAS = {"Linear": "Dense", "LayerNorm": "LayerNormalization", "Dropout": "Dropout"}  # keras.layers.<name>


def _keras_attribute(model, path: str):
    obj = model
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, KERAS_FORCED.get(part, part))
    return obj


@pytest.mark.parametrize("variant", ["default", "layer_norm_gelu", "separate_qk_no_bottleneck"])
@pytest.mark.parametrize("architecture", HEADS)
@needs_both
def test_attributes_mirror_pytorch(tf, keras, architecture, variant):
    """Every PyTorch submodule is at the same attribute path in Keras, of the mirrored class
    (MobileBertX -> TFMobileBertX, NoNorm -> TFNoNorm, Linear -> Dense, Embedding -> a variable)."""
    mobilebert_pt, mobilebert_tf = FRAMEWORKS["pt"].module(), FRAMEWORKS["tf"].module()
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
            assert isinstance(target, getattr(keras.layers, TORCH_TO_KERAS[kind])), (name, type(target))
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


def test_pad_row_gets_no_gradient_as_in_pytorch(torch, tf):
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


# ================================================================== Keras only: its calling conventions


def test_dict_numpy_int32_and_tuple_inputs(tf):
    model = FRAMEWORKS["tf"].model("MobileBertForMaskedLM", num_labels=3)
    config = model.config
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


def test_built_inside_a_graph_names_as_eagerly(tf):
    """A model whose first call is traced by tf.function gets the same (hub) names and numbers; small int dtypes work."""
    mobilebert_tf = FRAMEWORKS["tf"].module()
    from mobilebert_tf.pretrained import weights_by_name

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


def test_training_defaults_to_false(tf):
    """Keras's training argument left out: inference (no dropout), as model.predict and serving call it."""
    model = FRAMEWORKS["tf"].model("MobileBertForSequenceClassification", num_labels=3)
    inputs = {k: tf.constant(v) for k, v in random_inputs(model.config).items()}
    np.testing.assert_array_equal(model(inputs).logits.numpy(), model(inputs, training=False).logits.numpy())
    assert relative_error(model(inputs, training=True).logits, model(inputs).logits) > 1e-3  # dropout is on in training
