"""torch.autocast on the CPU (bfloat16): every head runs and stays close to its float32 result, with and
without autograd. The masked-LM head's CPU vocabulary blocks accumulate with an in-place addmm_, which
autocast does not cast; under autocast the head takes its two F.linear products instead."""

import pytest

torch = pytest.importorskip("torch")

from tests.harness.models import ARCHITECTURES, make_pt, pt_inputs, relative_error  # noqa: E402

# Every head (the backbone returns the float32 residual stream, not a bfloat16 product)
HEADS = [a for a in ARCHITECTURES if a != "MobileBertModel"]


@pytest.mark.parametrize("grad", [True, False], ids=["autograd", "no_grad"])
@pytest.mark.parametrize("cls_name", HEADS)
def test_bfloat16_autocast_runs_every_head_close_to_float32(cls_name, grad):
    model = make_pt(cls_name).eval()
    x = pt_inputs(model.config, cls_name)
    with torch.no_grad():
        want = model(**x)[0]
    with torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=torch.bfloat16):
        got = model(**x)[0]
    assert got.dtype == torch.bfloat16  # the head's last product ran in bfloat16
    # bfloat16 keeps 8 bits of mantissa (relative 2^-8 per product) through 2 tiny layers
    assert relative_error(got.detach().float().numpy(), want.numpy()) < 0.1


def test_masked_lm_head_under_autocast_is_the_two_products_in_bfloat16():
    """The head's logits under autocast: x[..., :E] @ E^T + x[..., E:] @ dense.weight + bias with the
    operands rounded to bfloat16 and float32 sums, computed here from the head's own input."""
    model = make_pt("MobileBertForMaskedLM").eval()
    x = pt_inputs(model.config)
    head = model.cls.predictions
    seen = {}
    handle = head.transform.register_forward_hook(lambda m, args, out: seen.update(h=out.detach()))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = model(**x).logits
    handle.remove()
    h, e = seen["h"].float(), head.embedding_size
    b16 = lambda t: t.to(torch.bfloat16).float()  # noqa: E731
    with torch.no_grad():
        want = b16(h[..., :e]) @ b16(head.decoder.weight).t() + b16(h[..., e:]) @ b16(head.dense.weight) + b16(head.bias)
    # got is rounded to bfloat16 once more (each product's output, then their sum): 3 roundings of 2^-9
    assert relative_error(got.float().numpy(), want.numpy()) < 2e-2
    assert (got.float().argmax(-1) == want.argmax(-1)).float().mean() > 0.9


def test_masked_lm_trains_under_autocast():
    model = make_pt("MobileBertForMaskedLM").train()
    x = pt_inputs(model.config)
    labels = x["input_ids"].clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(**x, labels=labels).loss
    loss.backward()
    head = model.cls.predictions
    assert torch.isfinite(loss)
    for weight in (head.dense.weight, model.mobilebert.embeddings.word_embeddings.weight):
        assert weight.grad is not None and torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0
