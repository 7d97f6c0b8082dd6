"""model.cache_vocabulary_projection(): inference runs the masked-LM head as one product over a kept (V, H)
copy [E | dense.weight^T] (oneDNN on the CPU in float32). The logits must be transformers' (same weights,
relative 1e-5); the copy must follow every change of the weights it was built from, never be saved, and
step aside wherever a gradient, a compiler or autocast needs the two products on the live weights."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import mobilebert_pt  # noqa: E402
from mobilebert_pt.modeling import MobileBertLMPredictionHead  # noqa: E402
from tests.harness.models import ARCHITECTURES, make_pt, pt_inputs, relative_error  # noqa: E402

MLM_HEADS = ["MobileBertForMaskedLM", "MobileBertForPreTraining"]


def cached_pair(cls_name="MobileBertForMaskedLM", **overrides):
    """(plain, cached): two models with the same weights, the second with the kept projection."""
    plain = make_pt(cls_name, **overrides).eval()
    cached = make_pt(cls_name, **overrides).eval()
    cached.load_state_dict(plain.state_dict())
    return plain, cached.cache_vocabulary_projection()


def head_of(model) -> MobileBertLMPredictionHead:
    return model.cls.predictions


@pytest.mark.parametrize("architecture", MLM_HEADS)
def test_cached_logits_equal_transformers(architecture):
    pytest.importorskip("transformers")  # only this test needs the reference; the others run without it
    from tests.test_pt_reference import config_for, inputs_for, reference_and_ours

    config = config_for("default")
    ref, ours = reference_and_ours(architecture, config)
    ours.cache_vocabulary_projection()
    x = inputs_for(architecture, config)
    with torch.no_grad():
        want = ref(**x).prediction_logits if architecture == "MobileBertForPreTraining" else ref(**x).logits
        got = ours(**x)[0]
    assert head_of(ours).stacked_cache is not None  # the kept copy did run
    assert relative_error(got.numpy(), want.numpy()) < 1e-5


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_cached_logits_equal_the_two_products_with_and_without_mask_positions(mode):
    plain, cached = cached_pair()
    x = pt_inputs(plain.config)
    positions = torch.tensor([[1, 3], [0, 5]])
    context = torch.no_grad() if mode == "no_grad" else torch.inference_mode()
    with context:
        for extra in ({}, {"mask_positions": positions}):
            want, got = plain(**x, **extra).logits, cached(**x, **extra).logits
            assert got.shape == want.shape
            assert relative_error(got.numpy(), want.numpy()) < 1e-6


def test_copy_is_built_once_and_holds_the_stacked_weights():
    plain, cached = cached_pair()
    x = pt_inputs(plain.config)
    head = head_of(cached)
    with torch.no_grad():
        cached(**x)
        kept = head.stacked_cache[1]
        cached(**x)
    assert head.stacked_cache[1] is kept  # not rebuilt on a second call
    words, extra = head.decoder.weight, head.dense.weight.t()
    torch.testing.assert_close(kept, torch.cat([words, extra], dim=1), rtol=0, atol=0)


def test_copy_follows_an_optimizer_step_and_load_state_dict():
    plain, cached = cached_pair()
    x = pt_inputs(plain.config)
    with torch.no_grad():
        cached(**x)  # the copy of the first weights
    # A training step on the cached model: the head runs the live weights (gradients reach both), and the
    # next inference sees the updated ones.
    cached.train()
    labels = x["input_ids"].clone()
    cached(**x, labels=labels).loss.backward()
    head = head_of(cached)
    assert head.decoder.weight.grad is not None and head.dense.weight.grad.abs().sum() > 0
    torch.optim.SGD(cached.parameters(), lr=0.5).step()
    cached.eval()
    plain.load_state_dict(cached.state_dict())
    with torch.no_grad():
        assert relative_error(cached(**x).logits.numpy(), plain(**x).logits.numpy()) < 1e-6
    # load_state_dict back into the cached model: copied in place, so the versions move on
    fresh = make_pt("MobileBertForMaskedLM", seed=7).eval()
    cached.load_state_dict(fresh.state_dict())
    with torch.no_grad():
        assert relative_error(cached(**x).logits.numpy(), fresh(**x).logits.numpy()) < 1e-6


def test_copy_follows_in_place_edits_resizing_and_dtype():
    plain, cached = cached_pair()
    x = pt_inputs(plain.config)
    with torch.no_grad():
        cached(**x)
        for model in (plain, cached):  # an in-place edit of the tied table, under no_grad
            model.get_input_embeddings().weight[5].mul_(3.0)
        assert relative_error(cached(**x).logits.numpy(), plain(**x).logits.numpy()) < 1e-6
    size = plain.config.vocab_size + 9
    for model in (plain, cached):
        torch.manual_seed(1)
        model.resize_token_embeddings(size)
    with torch.no_grad():
        got, want = cached(**x).logits, plain(**x).logits
    assert got.shape[-1] == size
    assert relative_error(got.numpy(), want.numpy()) < 1e-6
    plain, cached = plain.double(), cached.double()  # replaced tensors; float64 runs F.linear
    with torch.no_grad():
        got, want = cached(**x).logits, plain(**x).logits
    assert got.dtype == torch.float64 and relative_error(got.numpy(), want.numpy()) < 1e-12


def test_gradients_with_the_cache_equal_those_without():
    plain, cached = cached_pair()
    x = pt_inputs(plain.config)
    with torch.no_grad():
        cached(**x)
    grads = []
    for model in (plain, cached):
        model.zero_grad()
        model(**x).logits.square().mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for want, got in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_copy_is_not_saved_and_disabling_drops_it(tmp_path):
    plain, cached = cached_pair()
    x = pt_inputs(plain.config)
    with torch.no_grad():
        cached(**x)
    assert set(cached.state_dict()) == set(plain.state_dict())
    cached.save_pretrained(tmp_path)
    loaded = mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path).eval()
    assert head_of(loaded).keep_stacked_weight is False  # an opt-in of the model object, not of the file
    with torch.no_grad():
        assert relative_error(loaded(**x).logits.numpy(), plain(**x).logits.numpy()) < 1e-6
    assert cached.cache_vocabulary_projection(False) is cached
    assert head_of(cached).stacked_cache is None and head_of(cached).keep_stacked_weight is False


def test_int8_quantization_of_a_cached_model_drops_the_copy():
    plain, cached = cached_pair()
    x = pt_inputs(plain.config)
    with torch.no_grad():
        cached(**x)
    quantized = mobilebert_pt.quantize_dynamic(cached)
    head = head_of(quantized)
    assert head.stacked_cache is None and head.keep_stacked_weight is False
    with torch.no_grad():  # the same int8 model as quantizing the plain one
        want = mobilebert_pt.quantize_dynamic(plain)(**x).logits
        torch.testing.assert_close(quantized(**x).logits, want, rtol=0, atol=0)


def test_vmap_runs_the_two_products():
    plain, cached = cached_pair()
    x = pt_inputs(plain.config)
    with torch.no_grad():
        want = plain(**x).logits
        names = sorted(x)
        row = lambda *values: cached(**{k: v[None] for k, v in zip(names, values)}).logits[0]  # noqa: E731
        got = torch.func.vmap(row)(*(x[k] for k in names))  # (B, T, V), one row at a time
    assert head_of(cached).stacked_cache is None  # traced: the kept copy was not made
    assert relative_error(got.numpy(), want.numpy()) < 1e-6


@pytest.mark.parametrize("cls_name", [a for a in ARCHITECTURES if a not in MLM_HEADS])
def test_models_without_a_masked_lm_head_refuse(cls_name):
    model = make_pt(cls_name)
    with pytest.raises(ValueError, match="has no masked-LM head"):
        model.cache_vocabulary_projection()


def test_cpu_float32_product_is_onednn_unless_disabled(monkeypatch):
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch build has no oneDNN: the kept copy runs F.linear")
    plain, cached = cached_pair()
    x = pt_inputs(plain.config)
    with torch.no_grad():
        want = plain(**x).logits
    calls = []
    onednn = torch.ops.mkldnn._linear_pointwise
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", lambda *a: calls.append(a[1].shape) or onednn(*a))
    with torch.no_grad():
        got = cached(**x).logits
        assert calls == [(plain.config.vocab_size, plain.config.hidden_size)]
        with torch.backends.mkldnn.flags(enabled=False):
            off = cached(**x).logits
    assert len(calls) == 1  # torch.backends.mkldnn disabled: F.linear
    for logits in (got, off):
        assert relative_error(logits.numpy(), want.numpy()) < 1e-6
