"""PyTorch speed paths: torch.compile without graph breaks (the input checks, inputs.py and modeling.lookup)
and dynamic int8 (mobilebert_pt/quantization.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.harness.models import assert_close, make_pt, pt_inputs


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


# ------------------------------------------------------------------ torch.compile


@pytest.mark.parametrize("cls_name", ["MobileBertForMaskedLM", "MobileBertModel"])
def test_dynamo_explain_finds_no_graph_break(cls_name):
    model = make_pt(cls_name)
    explanation = torch._dynamo.explain(model)(**pt_inputs(model.config))
    assert explanation.graph_break_count == 0, [b.reason for b in explanation.break_reasons]
    assert explanation.graph_count == 1


def test_fullgraph_compile_matches_eager_with_mask_positions():
    model = make_pt("MobileBertForMaskedLM")
    x = pt_inputs(model.config)
    positions = torch.tensor([[1, 3], [0, 4]])
    compiled = torch.compile(model, fullgraph=True)  # fullgraph: any graph break is an error
    with torch.no_grad():
        eager = model(**x).logits
        eager_masked = model(**x, mask_positions=positions).logits
        assert_close(compiled(**x).logits.numpy(), eager.numpy(), 1e-5, "compiled logits")
        assert_close(compiled(**x, mask_positions=positions).logits.numpy(), eager_masked.numpy(), 1e-5,
                     "compiled logits at mask_positions")


def test_compiled_backbone_matches_eager():
    model = make_pt("MobileBertModel", variant="layer_norm_gelu")
    x = pt_inputs(model.config)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        got, want = compiled(**x), model(**x)
    assert_close(got.last_hidden_state.numpy(), want.last_hidden_state.numpy(), 1e-5, "last_hidden_state")
    assert_close(got.pooler_output.numpy(), want.pooler_output.numpy(), 1e-5, "pooler_output")


@pytest.mark.parametrize("bad", ["input_ids", "token_type_ids", "position_ids", "mask_positions"])
def test_compiled_out_of_range_ids_give_nan_rows_not_numbers(bad):
    """Inside the graph nothing can raise: the row of a bad id is NaN (clamped for the gather, no crash);
    the other rows are the eager numbers."""
    model = make_pt("MobileBertForMaskedLM", trigram_input=False)  # trigram mixes neighbours: keep the row local
    config = model.config
    x = pt_inputs(config)
    positions = torch.tensor([[1, 3], [0, 4]])
    with torch.no_grad():
        good = model(**x, mask_positions=positions).logits
    limit = {"input_ids": config.vocab_size, "token_type_ids": config.type_vocab_size,
             "position_ids": config.max_position_embeddings, "mask_positions": x["input_ids"].shape[1]}[bad]
    if bad == "position_ids":
        x["position_ids"] = torch.arange(x["input_ids"].shape[1]).repeat(2, 1)
    if bad == "mask_positions":
        positions = positions.clone()
        positions[0, 1] = limit
    else:
        x[bad] = x[bad].clone()
        x[bad][0, 3] = limit  # row 0, token 3: the second mask position of row 0
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        logits = compiled(**x, mask_positions=positions).logits  # (B, P, V)
    # The bad token reaches every position of its row through attention: row 0 is NaN, row 1 untouched.
    assert torch.isnan(logits[0, 1]).all()
    assert torch.isfinite(logits[1]).all()
    assert_close(logits[1].numpy(), good[1].numpy(), 1e-5, "the other row")
    with pytest.raises(ValueError, match=bad):  # eagerly: the error, before any kernel
        model(**x, mask_positions=positions)


def test_validate_inputs_method_raises_before_a_compiled_call():
    model = make_pt("MobileBertForMaskedLM")
    x = pt_inputs(model.config)
    bad = dict(x, input_ids=x["input_ids"].clone())
    bad["input_ids"][1, 0] = model.config.vocab_size
    with pytest.raises(ValueError, match="input_ids"):
        model.validate_inputs(bad)
    with pytest.raises(ValueError, match="mask_positions"):
        model.validate_inputs(x, mask_positions=[[0, 7], [1, 2]])  # 7 == seq: past the end
    with pytest.raises(ValueError, match="finite|NaN|inf"):
        model.validate_inputs(inputs_embeds=torch.full((1, 3, model.config.embedding_size), float("nan")))
    # Lists become tensors on the model's device; other keys pass through.
    lists = {k: v.tolist() for k, v in x.items()}
    checked = model.validate_inputs(lists, labels=x["input_ids"], return_dict=True)
    assert checked["input_ids"].dtype == torch.int64 and torch.equal(checked["input_ids"], x["input_ids"])
    assert checked["labels"] is x["input_ids"] and checked["return_dict"] is True
    with torch.no_grad():
        assert torch.equal(model(**checked).logits, model(**x).logits)


def test_validate_inputs_method_multiple_choice():
    model = make_pt("MobileBertForMultipleChoice")
    x = pt_inputs(model.config, "MobileBertForMultipleChoice")  # (B=2, C=2, T=7)
    assert set(model.validate_inputs(x)) == set(x)
    x["token_type_ids"] = x["token_type_ids"].clone()
    x["token_type_ids"][1, 1, 2] = 5
    with pytest.raises(ValueError, match="token_type_ids"):
        model.validate_inputs(x)


# ------------------------------------------------------------------ dynamic int8


def _int8(model):
    import mobilebert_pt

    return mobilebert_pt.quantize_dynamic(model)


@pytest.mark.parametrize("variant", ["default", "layer_norm_gelu", "separate_qk_no_bottleneck"])
def test_dynamic_int8_logits_close_to_float32(variant):
    model = make_pt("MobileBertForMaskedLM", variant=variant, noise=0.05)
    x = pt_inputs(model.config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantized = _int8(model)
    with torch.no_grad():
        want, got = model(**x).logits, quantized(**x).logits
    err = float((got - want).abs().max() / max(1.0, float(want.abs().max())))
    agree = float((got.argmax(-1) == want.argmax(-1)).float().mean())
    print(f"{variant}: max relative diff {err:.4f}, top-1 agreement {agree:.3f}")
    assert 0 < err < 0.05  # int8 changes the numbers, a little
    assert agree >= 0.9
    # Every Linear that runs is int8 (the head's dense / decoder only hold weights); the source is untouched.
    dynamic = torch.ao.nn.quantized.dynamic.Linear
    float_linears = {n for n, m in quantized.named_modules() if type(m) is torch.nn.Linear}
    assert float_linears == {"cls.predictions.dense", "cls.predictions.decoder"}
    assert isinstance(quantized.cls.predictions.projection, dynamic)
    assert quantized.cls.predictions.projection.weight().qscheme() == torch.per_channel_affine
    assert quantized.quantization == "dynamic-int8"
    assert model.cls.predictions.projection is None
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_head_projection_in_float_equals_the_two_products():
    model = make_pt("MobileBertForMaskedLM")
    x = pt_inputs(model.config)
    head = model.cls.predictions
    with torch.no_grad():
        want = model(**x).logits
        assert head.single_projection() == ("dense", "decoder")
        got = model(**x).logits
    assert_close(got.numpy(), want.numpy(), 1e-6, "one Linear [E | dense^T] vs two products")


def test_from_pretrained_quantize_dynamic_int8(tmp_path):
    """from_pretrained(quantize="dynamic-int8") gives what quantize_dynamic gives on the loaded model."""
    import mobilebert_pt

    model = make_pt("MobileBertForMaskedLM", noise=0.05)
    model.save_pretrained(tmp_path)
    x = pt_inputs(model.config)
    loaded = mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, quantize="dynamic-int8")
    assert loaded.quantization == "dynamic-int8" and not loaded.training
    assert isinstance(loaded.cls.predictions.projection, torch.ao.nn.quantized.dynamic.Linear)
    with torch.no_grad():
        assert torch.equal(loaded(**x).logits, _int8(model)(**x).logits)
    plain = mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, quantize="none")
    assert getattr(plain, "quantization", None) is None
    with pytest.raises(ValueError, match="quantize='int4'.*allowed: None, 'none', 'dynamic-int8'"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, quantize="int4")
    with pytest.raises(ValueError, match="float16.*torch_dtype"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, quantize="float16")
    with pytest.raises(ValueError, match="already quantized"):
        _int8(loaded)


def test_dynamic_int8_other_heads_and_mask_positions():
    model = make_pt("MobileBertForSequenceClassification", noise=0.05)
    x = pt_inputs(model.config)
    with torch.no_grad():
        assert_close(_int8(model)(**x).logits.numpy(), model(**x).logits.numpy(), 0.05, "classifier logits")
    mlm = make_pt("MobileBertForMaskedLM", noise=0.05)
    quantized = _int8(mlm)
    positions = torch.tensor([[1, 3], [0, 4]])
    with torch.no_grad():
        want, got = mlm(**x, mask_positions=positions).logits, quantized(**x, mask_positions=positions).logits
    # Activations are quantized per call (one scale for the rows given), so only close, not equal, to full rows.
    assert got.shape == (2, 2, mlm.config.vocab_size)
    assert_close(got.numpy(), want.numpy(), 0.05, "int8 logits at mask_positions")


def test_dynamic_int8_refuses_training_saving_and_non_float32(tmp_path):
    model = make_pt("MobileBertForMaskedLM")
    quantized = _int8(model)
    with pytest.raises(ValueError, match="inference.*cannot be trained"):
        quantized.train()
    quantized.eval()  # allowed
    assert not quantized.training
    with pytest.raises(ValueError, match="save_pretrained"):
        quantized.save_pretrained(tmp_path / "int8")
    assert not (tmp_path / "int8").exists()
    with pytest.raises(ValueError, match="float32.*bfloat16"):
        _int8(model.to(torch.bfloat16))
    with pytest.raises(ValueError, match="MobileBERT PyTorch model"):
        _int8(torch.nn.Linear(2, 2))


# ------------------------------------------------------------------ query and key as one product


@pytest.mark.parametrize("variant", ["default", "bottleneck_attention", "separate_qk_no_bottleneck"])
def test_fused_query_key_product_equals_two_products(variant, monkeypatch):
    """Where query and key read one tensor the attention makes one product [Wq; Wk]; the outputs are those of
    two products (the reference: the same model with the fusion switched off by an input that is a copy)."""
    from mobilebert_pt import modeling

    model = make_pt("MobileBertModel", variant=variant)
    x = pt_inputs(model.config)
    calls = []
    original = modeling.MobileBertSelfAttention.forward

    def two_products(self, query_tensor, key_tensor, *args):  # a copy of the key input: not `is` the query's
        calls.append(key_tensor is query_tensor)
        return original(self, query_tensor, key_tensor.clone(), *args)

    with torch.no_grad():
        fused = model(**x, output_hidden_states=True)
        monkeypatch.setattr(modeling.MobileBertSelfAttention, "forward", two_products)
        separate = model(**x, output_hidden_states=True)
    assert all(calls) and len(calls) == model.config.num_hidden_layers  # every variant here shares q/k input
    for a, b in zip(fused.hidden_states, separate.hidden_states):
        assert_close(a.numpy(), b.numpy(), 1e-6, "hidden states")
    assert_close(fused.pooler_output.numpy(), separate.pooler_output.numpy(), 1e-6, "pooler_output")
    assert not any(name.endswith("qk") for name in model.state_dict())  # checkpoint keys unchanged
    # And the fusion happens: per layer one product fewer than with two.
    # (Counted by wrapping F.linear, not with a torch-function mode: under a mode the attention keeps two
    # products, see MobileBertSelfAttention.fusable_query_key.)
    linear, counts = torch.nn.functional.linear, []

    def counting(*args, **kwargs):
        counts[-1] += 1
        return linear(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "linear", counting)
    with torch.no_grad():
        counts.append(0)
        model(**x)  # still two_products
        monkeypatch.setattr(modeling.MobileBertSelfAttention, "forward", original)
        counts.append(0)
        model(**x)
    two, one = counts
    assert one > 0 and two - one == model.config.num_hidden_layers


# ------------------------------------------------------------------ torch.compile with labels

# head -> a function (config, batch, seq) -> its label arguments, all valid
LABELS = {
    "MobileBertForMaskedLM": lambda c, b, t: {"labels": torch.arange(b * t).reshape(b, t) % c.vocab_size},
    "MobileBertForSequenceClassification": lambda c, b, t: {"labels": torch.tensor([1, 0])},
    "MobileBertForTokenClassification": lambda c, b, t: {"labels": torch.arange(b * t).reshape(b, t) % c.num_labels},
    "MobileBertForQuestionAnswering": lambda c, b, t: {"start_positions": torch.tensor([1, 2]),
                                                       "end_positions": torch.tensor([3, t + 5])},  # past T: ignored
    "MobileBertForMultipleChoice": lambda c, b, t: {"labels": torch.tensor([1, 0])},
    "MobileBertForNextSentencePrediction": lambda c, b, t: {"labels": torch.tensor([0, 1])},
    "MobileBertForPreTraining": lambda c, b, t: {"labels": torch.arange(b * t).reshape(b, t) % c.vocab_size,
                                                 "next_sentence_label": torch.tensor([1, 0])},
}


def labelled(cls_name):
    model = make_pt(cls_name)
    x = pt_inputs(model.config, cls_name)
    batch, seq = x["input_ids"].shape[0], x["input_ids"].shape[-1]
    return model, x, LABELS[cls_name](model.config, batch, seq)


@pytest.mark.parametrize("cls_name", sorted(LABELS))
def test_labels_trace_without_graph_break_and_give_the_eager_loss(cls_name):
    """The label checks read values (a host sync): while torch compiles they become a NaN guard instead."""
    model, x, labels = labelled(cls_name)
    explanation = torch._dynamo.explain(model)(**x, **labels)
    assert explanation.graph_break_count == 0, [b.reason for b in explanation.break_reasons]
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        want, got = model(**x, **labels).loss, compiled(**x, **labels).loss
    assert torch.isfinite(want) and want > 0
    assert_close(got.numpy(), want.numpy(), 1e-6, "compiled loss")


@pytest.mark.parametrize("cls_name, name, bad", [
    ("MobileBertForMaskedLM", "labels", "vocab_size"),  # one past the last class
    ("MobileBertForMaskedLM", "labels", -3),  # negative, and not the ignore index -100
    ("MobileBertForSequenceClassification", "labels", 2),
    ("MobileBertForQuestionAnswering", "start_positions", -1),
])
def test_compiled_bad_label_gives_a_nan_loss_not_a_crash(cls_name, name, bad):
    model, x, labels = labelled(cls_name)
    bad = model.config.vocab_size if bad == "vocab_size" else bad
    labels[name] = labels[name].clone()
    labels[name].view(-1)[0] = bad
    with pytest.raises(ValueError, match=name):  # eagerly: the clear error
        model(**x, **labels)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        out = compiled(**x, **labels)
    assert torch.isnan(out.loss)
    assert torch.isfinite(out.logits if hasattr(out, "logits") else out.start_logits).all()  # only the loss
