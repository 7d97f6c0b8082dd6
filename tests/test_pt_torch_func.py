"""torch.func with the PyTorch models, as with transformers': functional_call, vmap, and per-sample gradients
(vmap(grad(...)), as differential-privacy training uses). vmap's batched tensors refuse .item(), so there
the value checks step aside as under torch.compile (inputs.tracing): an out-of-range id gives NaN rows."""

import warnings

import pytest

torch = pytest.importorskip("torch")

from torch.func import functional_call, grad, vmap  # noqa: E402

from tests.harness.models import make_pt, pt_inputs, relative_error  # noqa: E402

# torch has no vmap rule for the CPU flash-attention kernel yet and says so (a slower fallback, same values).
pytestmark = pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")


def per_example(model, params, **row):
    """The model on one example: each (T,) input as a batch of one."""
    return functional_call(model, params, args=(), kwargs={k: v[None] for k, v in row.items()})


@pytest.mark.parametrize("cls_name,field", [("MobileBertForMaskedLM", "logits"),
                                            ("MobileBertForSequenceClassification", "logits"),
                                            ("MobileBertForQuestionAnswering", "start_logits")])
def test_vmap_over_examples_equals_the_batched_forward(cls_name, field):
    model = make_pt(cls_name).eval()
    x = pt_inputs(model.config)  # the second row padded
    params = {k: v.detach() for k, v in model.named_parameters()}
    with torch.no_grad():
        want = getattr(model(**x), field)
        assert torch.equal(getattr(functional_call(model, params, args=(), kwargs=x), field), want)
        got = vmap(lambda i, a, t: getattr(per_example(model, params, input_ids=i, attention_mask=a,
                                                       token_type_ids=t), field)[0])(
            x["input_ids"], x["attention_mask"], x["token_type_ids"])
    assert relative_error(got.numpy(), want.numpy()) < 1e-6


@pytest.mark.parametrize("cls_name", ["MobileBertForMaskedLM", "MobileBertForSequenceClassification"])
def test_per_sample_gradients_equal_one_example_at_a_time(cls_name):
    model = make_pt(cls_name).eval()
    x = pt_inputs(model.config)
    labels = x["input_ids"].clone() if cls_name == "MobileBertForMaskedLM" else torch.tensor([0, 1])
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, ids, mask, label):
        return per_example(model, p, input_ids=ids, attention_mask=mask, labels=label).loss

    batched = vmap(grad(loss), in_dims=(None, 0, 0, 0))(params, x["input_ids"], x["attention_mask"], labels)
    for b in range(2):
        one = grad(loss)(params, x["input_ids"][b], x["attention_mask"][b], labels[b])
        for name, g in one.items():
            assert relative_error(batched[name][b].numpy(), g.numpy()) < 1e-4, (b, name)
    assert any(float(g.abs().sum()) > 0 for g in batched.values())


def test_a_bad_id_under_vmap_gives_nan_rows_and_eager_still_raises():
    model = make_pt("MobileBertForMaskedLM").eval()
    x = pt_inputs(model.config)
    params = {k: v.detach() for k, v in model.named_parameters()}
    bad = x["input_ids"].clone()
    bad[1, 2] = model.config.vocab_size + 7
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logits = vmap(lambda i, a: per_example(model, params, input_ids=i, attention_mask=a).logits[0])(
            bad, x["attention_mask"])
    assert torch.isnan(logits[1]).any() and torch.isfinite(logits[0]).all()
    with pytest.raises(ValueError, match="input_ids"):
        model(input_ids=bad, attention_mask=x["attention_mask"])
