"""PyTorch model behaviour: tuples, gradients, checkpointing, embedding resizing, bad inputs, float16."""

from __future__ import annotations

import pytest
import torch

import mobilebert_pt
from mobilebert_common.checks import FLOAT16_OVERFLOW
from tests.harness.models import VARIANTS, assert_close, make_pt, pt_inputs, unused_parameters

HEADS = [
    "MobileBertModel", "MobileBertForPreTraining", "MobileBertForMaskedLM", "MobileBertForNextSentencePrediction",
    "MobileBertForSequenceClassification", "MobileBertForMultipleChoice", "MobileBertForTokenClassification",
    "MobileBertForQuestionAnswering",
]


def labels(cls_name, config, x):
    batch, seq = x["input_ids"].shape[0], x["input_ids"].shape[-1]
    gen = torch.Generator().manual_seed(0)
    return {
        "MobileBertModel": {},
        "MobileBertForPreTraining": {"labels": torch.randint(0, config.vocab_size, (batch, seq), generator=gen),
                                     "next_sentence_label": torch.tensor([0, 1])},
        "MobileBertForMaskedLM": {"labels": torch.randint(0, config.vocab_size, (batch, seq), generator=gen)},
        "MobileBertForNextSentencePrediction": {"labels": torch.tensor([1, 0])},
        "MobileBertForSequenceClassification": {"labels": torch.tensor([1, 0])},
        "MobileBertForMultipleChoice": {"labels": torch.tensor([1, 0])},
        "MobileBertForTokenClassification": {"labels": torch.randint(0, 2, (batch, seq), generator=gen)},
        "MobileBertForQuestionAnswering": {"start_positions": torch.tensor([1, 2]), "end_positions": torch.tensor([3, 4])},
    }[cls_name]


# ------------------------------------------------------------------ outputs


@pytest.mark.parametrize("cls_name", HEADS)
def test_return_dict_false_gives_the_same_tuple(cls_name):
    model = make_pt(cls_name)
    x = pt_inputs(model.config, cls_name)
    y = labels(cls_name, model.config, x)
    with torch.no_grad():
        as_dict = model(**x, **y, output_hidden_states=True)
        as_tuple = model(**x, **y, output_hidden_states=True, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(as_dict.to_tuple())
    for a, b in zip(as_tuple, as_dict.to_tuple()):
        a, b = (torch.stack(a), torch.stack(b)) if isinstance(a, tuple) else (a, b)
        assert torch.equal(a, b)
    if y:
        assert as_tuple[0].dim() == 0  # the loss comes first
    hidden = as_dict.hidden_states
    assert len(hidden) == model.config.num_hidden_layers + 1 and hidden[0].shape[-1] == model.config.hidden_size


def test_head_mask_zeroes_heads_and_defaults_match():
    model = make_pt("MobileBertModel")
    x = pt_inputs(model.config)
    config = model.config
    with torch.no_grad():
        base = model(**x)
        ones = model(**x, head_mask=torch.ones(config.num_attention_heads))
        masked = model(**x, head_mask=torch.tensor([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]), output_attentions=True)
    assert_close(ones.last_hidden_state.numpy(), base.last_hidden_state.numpy(), 1e-4)
    assert float(masked.attentions[0][:, 1].abs().max()) == 0.0  # head 1 of layer 0 masked out
    assert float(masked.attentions[0][:, 0].abs().max()) > 0.0
    assert relative(masked.last_hidden_state, base.last_hidden_state) > 1e-3


def relative(a, b):
    return float((a - b).abs().max() / max(1.0, float(b.abs().max())))


def test_default_masks_and_ids():
    model = make_pt("MobileBertModel")
    ids = pt_inputs(model.config)["input_ids"]
    with torch.no_grad():
        implicit = model(input_ids=ids).last_hidden_state
        explicit = model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids),
                         position_ids=torch.arange(ids.shape[1])[None]).last_hidden_state
        from_embeds = model(inputs_embeds=model.get_input_embeddings()(ids)).last_hidden_state
    assert_close(explicit.numpy(), implicit.numpy(), 1e-5)
    assert_close(from_embeds.numpy(), implicit.numpy(), 1e-5)


def test_padding_does_not_change_the_real_tokens():
    """Right padding under attention_mask=0 leaves the other tokens' outputs as without it (absolute positions)."""
    model = make_pt("MobileBertModel", variant="no_trigram_no_pooler_act")  # trigram mixes in the pad's embedding
    ids = torch.tensor([[5, 6, 7, 8]])
    padded = torch.tensor([[5, 6, 7, 8, 0, 0]])
    with torch.no_grad():
        short = model(input_ids=ids).last_hidden_state
        long = model(input_ids=padded, attention_mask=torch.tensor([[1, 1, 1, 1, 0, 0]])).last_hidden_state
    assert_close(long[:, :4].numpy(), short.numpy(), 1e-5)


# ------------------------------------------------------------------ training


@pytest.mark.parametrize("cls_name", HEADS[1:])
def test_gradients_reach_every_parameter(cls_name):
    model = make_pt(cls_name, noise=0.05).train()
    x = pt_inputs(model.config, cls_name)
    loss = model(**x, **labels(cls_name, model.config, x)).loss
    assert torch.isfinite(loss)
    loss.backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or float(p.grad.abs().sum()) == 0.0]
    assert dead == sorted(unused_parameters(model.config, cls_name)) == []
    if model.get_output_embeddings() is None:  # (a tied decoder trains the padding row as an output)
        pad = model.config.pad_token_id
        assert float(model.get_input_embeddings().weight.grad[pad].abs().sum()) == 0.0  # padding_idx: no input gradient


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_gradients_every_variant(variant):
    model = make_pt("MobileBertForPreTraining", variant=variant, noise=0.05).train()
    x = pt_inputs(model.config)
    model(**x, **labels("MobileBertForPreTraining", model.config, x)).loss.backward()
    dead = {n for n, p in model.named_parameters()
            if p.numel() and (p.grad is None or float(p.grad.abs().sum()) == 0.0)}  # (H - E, V) is empty when E == H
    # Exactly the weights the hub's layout holds but this config never reads get no gradient.
    assert dead == unused_parameters(model.config, "MobileBertForPreTraining")


def test_gradient_checkpointing_gives_the_same_gradients():
    model = make_pt("MobileBertForMaskedLM", noise=0.05, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    x = pt_inputs(model.config)
    y = labels("MobileBertForMaskedLM", model.config, x)

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


# ------------------------------------------------------------------ embeddings


@pytest.mark.parametrize("cls_name", ["MobileBertForMaskedLM", "MobileBertForPreTraining"])
def test_resize_token_embeddings_keeps_the_head_tied(tmp_path, cls_name):
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


def test_set_input_embeddings_reties_the_decoder():
    model = make_pt()
    table = torch.nn.Embedding(99, 16)
    model.set_input_embeddings(table)
    assert model.get_input_embeddings() is table
    assert model.cls.predictions.decoder.weight is table.weight
    with pytest.raises(ValueError, match="embedding_size"):
        model.set_input_embeddings(torch.nn.Embedding(99, 8))


# ------------------------------------------------------------------ bad input: ValueError before any kernel


def no_kernel(model):
    """Fail the test if the embeddings run: the checks must come first."""
    def hook(*_):
        raise AssertionError("a kernel ran before the input was checked")
    return model.mobilebert.embeddings.register_forward_pre_hook(hook)


BAD_INPUTS = [
    (lambda x: {**x, "input_ids": x["input_ids"] + 99}, r"input_ids must hold ids in \[0, 99\).*vocab_size"),
    (lambda x: {**x, "input_ids": x["input_ids"] - 50}, r"input_ids must hold ids in \[0, 99\)"),
    (lambda x: {**x, "input_ids": x["input_ids"].float()}, "integer ids"),
    (lambda x: {k: v.repeat(1, 6) for k, v in x.items()}, "42 tokens; this model takes at most 40"),
    (lambda x: {**x, "token_type_ids": x["token_type_ids"] + 1}, r"token_type_ids must hold ids in \[0, 2\).*type_vocab_size"),
    (lambda x: {**x, "attention_mask": x["attention_mask"][:, :5]}, r"attention_mask has shape \(2, 5\) but input_ids has shape \(2, 7\)"),
    (lambda x: {**x, "inputs_embeds": torch.zeros(2, 7, 16)}, "either input_ids or inputs_embeds, not both"),
    (lambda x: {"attention_mask": x["attention_mask"]}, "pass input_ids"),
    (lambda x: {"inputs_embeds": torch.zeros(2, 7, 32)}, r"inputs_embeds must be \(batch, seq, 16\)"),
    (lambda x: {**x, "input_ids": x["input_ids"][0]}, "input_ids must have 2 dimensions"),
    (lambda x: {**x, "position_ids": torch.arange(7)[None] + 35}, r"position_ids must hold ids in \[0, 40\)"),
    (lambda x: {**x, "head_mask": torch.ones(3)}, r"head_mask must have shape \(4,\) or \(2, 4\)"),
]


@pytest.mark.parametrize("make_bad, message", BAD_INPUTS)
def test_bad_inputs(make_bad, message):
    model = make_pt()
    handle = no_kernel(model)
    with pytest.raises(ValueError, match=message):
        model(**make_bad(pt_inputs(model.config)))
    handle.remove()


def test_bad_labels_and_choices():
    model = make_pt()
    x = pt_inputs(model.config)
    with pytest.raises(ValueError, match=r"labels must hold class ids in \[0, 99\) or -100"):
        model(**x, labels=torch.full_like(x["input_ids"], 99))
    choice = make_pt("MobileBertForMultipleChoice")
    handle = no_kernel(choice)
    with pytest.raises(ValueError, match=r"input_ids must have 3 dimensions \(batch, num_choices, seq\)"):
        choice(**x)
    mc = pt_inputs(choice.config, "MobileBertForMultipleChoice")
    with pytest.raises(ValueError, match="attention_mask has shape"):
        choice(input_ids=mc["input_ids"], attention_mask=mc["attention_mask"][:, :1])
    handle.remove()
    with pytest.raises(ValueError, match=r"labels must hold class ids in \[0, 2\)"):
        choice(**mc, labels=torch.tensor([0, 2]))
    classifier = make_pt("MobileBertForSequenceClassification", num_labels=3)
    with pytest.raises(ValueError, match=r"labels must hold class ids in \[0, 3\)"):
        classifier(**x, labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="labels has shape"):  # multi-label needs one column per label
        classifier(**x, labels=torch.ones(2, 2))


# ------------------------------------------------------------------ float16


def test_float16_on_cpu_runs():
    """torch 2.13 runs float16 matmuls on the CPU, so float16 is allowed there; results track float32."""
    model = make_pt(noise=0.05)
    x = pt_inputs(model.config)
    with torch.no_grad():
        expected = model(**x).logits
        actual = model.half()(**x).logits
    assert actual.dtype == torch.float16
    assert_close(actual.float().numpy(), expected.numpy(), 1e-2)


def test_float16_overflow_is_reported():
    """Released MobileBERT activations reach 1e7-1e8; float16 tops out at 65504: an error, never silent inf/NaN."""
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

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cls_name", HEADS)
def test_gpu_matches_cpu(cls_name):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = make_pt(cls_name)
    x = pt_inputs(model.config, cls_name)
    with torch.no_grad():
        expected = model(**x)[0]
        actual = model.to("cuda")(**{k: v.cuda() for k, v in x.items()})[0].cpu()
    assert_close(actual.numpy(), expected.numpy(), 1e-4)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gpu_half_precision_runs(dtype):
    model = make_pt(noise=0.05)
    x = pt_inputs(model.config)
    with torch.no_grad():
        expected = model(**x).logits
        actual = model.to("cuda", dtype)(**{k: v.cuda() for k, v in x.items()}).logits
    assert actual.dtype == dtype and actual.device.type == "cuda"
    assert_close(actual.float().cpu().numpy(), expected.numpy(), 5e-2)


@pytest.mark.gpu
@gpu
def test_gpu_bad_ids_raise_before_a_device_assert():
    model = make_pt().to("cuda")
    x = {k: v.cuda() for k, v in pt_inputs(model.config).items()}
    with pytest.raises(ValueError, match="input_ids must hold ids"):
        model(**{**x, "input_ids": x["input_ids"] + 99})
    assert model(**x).logits.shape == (2, 7, 99)  # the device is still usable


def test_bottleneck_without_shared_or_attention_bottleneck_reads_the_layer_input():
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
