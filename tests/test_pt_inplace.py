"""Inference without autograd runs the layers' element-wise steps in place (modeling.add_fresh, norm_fresh,
the in-place relu): the same bits as the out-of-place forward, and nothing the caller holds is written."""

import pytest

torch = pytest.importorskip("torch")

from mobilebert_pt import modeling, quantize_dynamic  # noqa: E402
from tests.harness.models import VARIANTS, make_pt, pt_inputs  # noqa: E402


def flat(out) -> dict:
    tensors = {}
    for key, value in out.items():
        for i, t in enumerate(value if isinstance(value, tuple) else (value,)):
            tensors[f"{key}.{i}"] = t.detach()
    return tensors


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_grad_forward_is_bit_identical_to_the_autograd_forward(variant):
    """Every returned tensor (logits, each layer's hidden state, attentions) bit for bit: a layer output
    written in place after it was returned would show here as a difference."""
    model = make_pt("MobileBertForPreTraining", variant).eval()
    x = pt_inputs(model.config)
    kwargs = dict(output_hidden_states=True, output_attentions=True)
    want = flat(model(**x, **kwargs))  # autograd on: the out-of-place forms
    with torch.no_grad():
        got_no_grad = flat(model(**x, **kwargs))
    with torch.inference_mode():
        got_inference = flat(model(**x, **kwargs))
    assert want.keys() == got_no_grad.keys() == got_inference.keys()
    for key in want:
        assert torch.equal(got_no_grad[key], want[key]), key
        assert torch.equal(got_inference[key], want[key]), key


def test_the_callers_inputs_embeds_are_not_written():
    model = make_pt("MobileBertModel").eval()
    x = pt_inputs(model.config)
    embeds = model.get_input_embeddings()(x.pop("input_ids")).detach()
    before = embeds.clone()
    with torch.no_grad():
        model(inputs_embeds=embeds, **x)
    assert torch.equal(embeds, before)


def test_hooks_on_a_nonorm_still_run_and_see_the_output():
    model = make_pt("MobileBertModel").eval()
    norm = model.encoder.layer[0].attention.output.LayerNorm
    assert isinstance(norm, modeling.NoNorm)
    seen = []
    norm.register_forward_hook(lambda module, args, output: seen.append(output.clone()))
    x = pt_inputs(model.config)
    with torch.no_grad():
        model(**x)
    model(**x)  # autograd on: out of place
    assert len(seen) == 2 and torch.equal(seen[0], seen[1])


def test_nonorm_called_directly_never_writes_its_input():
    norm = modeling.NoNorm(4)
    with torch.no_grad():
        norm.weight.fill_(2.0)
        x = torch.ones(2, 4)
        assert torch.equal(norm(x), torch.full((2, 4), 2.0)) and torch.equal(x, torch.ones(2, 4))


def test_int8_model_gives_the_same_numbers_with_and_without_autograd():
    model = quantize_dynamic(make_pt("MobileBertForMaskedLM").eval())
    x = pt_inputs(model.config)
    want = model(**x).logits.detach()
    with torch.inference_mode():
        assert torch.equal(model(**x).logits, want)


def test_autocast_keeps_the_float32_residual_stream():
    """Under autocast the float16 product + float32 residual stays out of place: a float32 sum, as before."""
    model = make_pt("MobileBertModel").eval()
    x = pt_inputs(model.config)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with_grad = model(**x).last_hidden_state.detach()
        with torch.no_grad():
            without = model(**x).last_hidden_state
    assert without.dtype == with_grad.dtype
    assert torch.equal(without, with_grad)
