"""Query and key share one product when they read the same tensor (MobileBertSelfAttention.fusable_query_key),
but only where that is the same as calling the two Linears: a hook on either, or pruning's pre-hook, must
see and shape exactly what it would with two calls."""

import copy

import pytest

torch = pytest.importorskip("torch")

from tests.harness.models import make_pt, pt_inputs, relative_error  # noqa: E402


def attention_modules(model):
    return [layer.attention.self for layer in model.mobilebert.encoder.layer]


@pytest.mark.parametrize("grad", [True, False], ids=["autograd", "no_grad"])
def test_hooks_on_query_and_key_run_once_per_layer_and_see_their_output(grad):
    model = make_pt("MobileBertForMaskedLM").eval()  # default variant: query and key read the shared bottleneck
    x = pt_inputs(model.config)
    seen = []

    def keep(module, args, out):
        seen.append((module, args[0].detach().clone(), out.detach().clone()))

    handles = [linear.register_forward_hook(keep) for att in attention_modules(model) for linear in (att.query, att.key)]
    with torch.set_grad_enabled(grad):
        model(**x)
    for handle in handles:
        handle.remove()
    assert [m for m, _, _ in seen] == [linear for att in attention_modules(model) for linear in (att.query, att.key)]
    with torch.no_grad():
        for module, given, out in seen:
            assert torch.equal(out, module(given))


def test_a_hook_that_replaces_the_query_acts_like_a_zero_query():
    """A hook returning zeros for every query must change the logits exactly as zero query weights do."""
    model = make_pt("MobileBertForMaskedLM").eval()
    x = pt_inputs(model.config)
    zeroed = copy.deepcopy(model)
    with torch.no_grad():
        for att in attention_modules(zeroed):
            att.query.weight.zero_()
            att.query.bias.zero_()
        want = zeroed(**x).logits
        plain = model(**x).logits
    handles = [att.query.register_forward_hook(lambda m, args, out: torch.zeros_like(out))
               for att in attention_modules(model)]
    with torch.no_grad():
        got = model(**x).logits
    for handle in handles:
        handle.remove()
    assert relative_error(got.numpy(), want.numpy()) < 1e-6
    assert relative_error(plain.numpy(), want.numpy()) > 1e-3  # the zero query matters at all


def test_pruning_rebuilds_the_query_weight_on_every_call():
    """torch.nn.utils.prune keeps weight_orig and a mask, and its pre-hook rebuilds weight each call: after an
    update to weight_orig (an optimizer step) the forward must use the new masked weight, not the stale one."""
    prune = pytest.importorskip("torch.nn.utils.prune")
    model = make_pt("MobileBertForMaskedLM").eval()
    x = pt_inputs(model.config)
    for att in attention_modules(model):
        prune.l1_unstructured(att.query, name="weight", amount=0.5)
    with torch.no_grad():
        for att in attention_modules(model):
            att.query.weight_orig.mul_(3.0)  # what a training step would do: the parameter changes
        got = model(**x).logits
    expected_model = make_pt("MobileBertForMaskedLM").eval()
    with torch.no_grad():
        for att, ref in zip(attention_modules(model), attention_modules(expected_model)):
            ref.query.weight.copy_(att.query.weight_orig * att.query.weight_mask)
        want = expected_model(**x).logits
    assert relative_error(got.numpy(), want.numpy()) < 1e-6
