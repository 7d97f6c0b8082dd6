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


def captured(model, x, where, grad: bool, kind: str = "output", global_hook: bool = False):
    """What a forward hook on each module of `where` keeps (its output, or its first input), in one call."""
    kept = []
    if global_hook:
        handles = [torch.nn.modules.module.register_module_forward_hook(lambda m, args, out: None)]
    else:
        handles = []
    for module in where:
        keep = (lambda m, args, out: kept.append(out)) if kind == "output" else (lambda m, args, out: kept.append(args[0]))
        handles.append(module.register_forward_hook(keep))
    try:
        with torch.set_grad_enabled(grad):
            model(**x)
    finally:
        for handle in handles:
            handle.remove()
    return [t.detach().clone() for t in kept]


def test_a_hook_keeps_what_the_module_returned():
    """Activation capture: a hook that keeps the output of a Linear (before relu, before the residual sum)
    or the input of a NoNorm must see it as returned, not as the in-place steps left it afterwards."""
    model = make_pt("MobileBertModel").eval()
    x = pt_inputs(model.config)
    layer = model.encoder.layer[0]
    linears = [layer.intermediate.dense, layer.attention.output.dense, layer.ffn[0].output.dense,
               layer.output.dense, layer.bottleneck.input.dense]
    norms = [layer.attention.output.LayerNorm, layer.output.bottleneck.LayerNorm]
    assert all(isinstance(n, modeling.NoNorm) for n in norms)
    for where, kind in ((linears, "output"), (norms, "input"), (norms, "output")):
        want = captured(model, x, where, grad=True, kind=kind)
        got = captured(model, x, where, grad=False, kind=kind)
        assert len(got) == len(want) == len(where)
        for g, w in zip(got, want):
            assert torch.equal(g, w), kind
    assert (captured(model, x, linears[:1], grad=False)[0] < 0).any()  # pre-activation kept (relu not applied)


def test_a_global_hook_turns_the_in_place_steps_off():
    model = make_pt("MobileBertModel").eval()
    assert modeling.unobserved(model.encoder.layer[0].intermediate.dense)
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, args, out: None)
    try:
        assert not modeling.unobserved(model.encoder.layer[0].intermediate.dense)
    finally:
        handle.remove()
    x = pt_inputs(model.config)
    dense = model.encoder.layer[0].intermediate.dense
    assert torch.equal(captured(model, x, [dense], grad=False, global_hook=True)[0],
                       captured(model, x, [dense], grad=True)[0])


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
