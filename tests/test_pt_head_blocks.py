"""The CPU masked-LM head computes its vocabulary product in column blocks (modeling.vocabulary_blocks):
the same logits and the same gradients as the two full products it replaces."""

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from mobilebert_pt import modeling  # noqa: E402


def two_products(words_in, extra_in, embeddings, dense_weight, bias):
    return F.linear(words_in, embeddings) + F.linear(extra_in, dense_weight.t(), bias)


@pytest.mark.parametrize("vocab, extra", [(1300, 24), (512, 24), (700, 0)])  # a partial last block; one block; H == E
def test_blocks_equal_two_products_values_and_gradients(vocab, extra):
    g = torch.Generator().manual_seed(0)
    words_in = torch.randn(3, 5, 8, generator=g, requires_grad=True)  # (B, T, E)
    extra_in = torch.randn(3, 5, extra, generator=g, requires_grad=True)  # (B, T, H - E)
    embeddings = torch.randn(vocab, 8, generator=g, requires_grad=True)  # (V, E)
    dense_weight = torch.randn(extra, vocab, generator=g, requires_grad=True)  # (H - E, V)
    bias = torch.randn(vocab, generator=g, requires_grad=True)
    params = (words_in, extra_in, embeddings, dense_weight, bias)
    got = modeling.vocabulary_blocks(*params)
    want = two_products(*params)
    assert got.shape == (3, 5, vocab) and got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    upstream = torch.randn(got.shape, generator=g)
    got_grads = torch.autograd.grad(got, params, upstream, allow_unused=True)
    want_grads = torch.autograd.grad(want, params, upstream, allow_unused=True)
    for name, a, b in zip(["words_in", "extra_in", "embeddings", "dense_weight", "bias"], got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=lambda m: f"gradient of {name}: {m}")


@pytest.mark.parametrize("vocab, extra", [(1300, 24), (512, 24), (700, 0)])
def test_blocks_without_autograd_fill_one_buffer_with_the_same_bits(vocab, extra):
    """Without autograd the blocks go through one reused buffer into the output: the same bits as the
    blocks autograd records and concatenates."""
    g = torch.Generator().manual_seed(1)
    params = (torch.randn(3, 5, 8, generator=g), torch.randn(3, 5, extra, generator=g), torch.randn(vocab, 8, generator=g),
              torch.randn(extra, vocab, generator=g), torch.randn(vocab, generator=g))
    recorded = modeling.vocabulary_blocks(*params)
    with torch.no_grad():
        buffered = modeling.vocabulary_blocks(*params)
    assert buffered.shape == (3, 5, vocab) and buffered.is_contiguous()
    assert torch.equal(buffered, recorded)
    torch.testing.assert_close(buffered, two_products(*params), rtol=1e-5, atol=1e-5)


def test_head_uses_blocks_on_cpu_and_matches_the_plain_products(monkeypatch):
    """The model's logits with the blocks equal its logits with the plain two products (the GPU path)."""
    from tests.harness.models import make_pt, pt_inputs

    model = make_pt("MobileBertForMaskedLM")
    x = pt_inputs(model.config)
    calls = []
    real = modeling.vocabulary_blocks
    monkeypatch.setattr(modeling, "vocabulary_blocks", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(modeling, "VOCAB_BLOCK", 7)  # several blocks, the last one partial
    monkeypatch.setattr(modeling, "ONEDNN_HEAD_ROWS", 0)  # more rows than the oneDNN products take
    with torch.no_grad():
        blocked = model(**x).logits
        assert calls, "the CPU head did not use vocabulary_blocks"
        monkeypatch.setattr(modeling, "vocabulary_blocks", lambda *a: two_products(*a))
        plain = model(**x).logits
    torch.testing.assert_close(blocked, plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mask_positions", [None, [[1, 3], [0, 5]]], ids=["all_rows", "mask_positions"])
def test_few_rows_in_inference_take_the_onednn_products(monkeypatch, mask_positions):
    """Up to ONEDNN_HEAD_ROWS rows, without autograd, the CPU head is two oneDNN products (the second adding
    the first in its epilogue): equal to the plain two products; with autograd the blocks."""
    from tests.harness.models import make_pt, pt_inputs

    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch build has no oneDNN")
    model = make_pt("MobileBertForMaskedLM")
    x = dict(pt_inputs(model.config), mask_positions=None if mask_positions is None else torch.tensor(mask_positions))
    used = []
    for name in ("onednn_products", "vocabulary_blocks"):
        real = getattr(modeling, name)
        monkeypatch.setattr(modeling, name, lambda *a, real=real, name=name: used.append(name) or real(*a))
    with torch.no_grad():
        got = model(**x).logits
        assert used == ["onednn_products"]
        monkeypatch.setattr(modeling, "onednn_products", lambda *a: two_products(*a))
        want = model(**x).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    used.clear()
    model(**x).logits.sum().backward()
    assert used == ["vocabulary_blocks"]
    with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
        model(**x)
    assert used == ["vocabulary_blocks"] * 2


def logits_module(model):
    """model(input_ids, attention_mask, token_type_ids) -> (logits,), as the exporter traces it (tensors in and out)."""
    from mobilebert_pt.export import NamedOutputs

    return NamedOutputs(model, ["logits"]).eval()


@pytest.mark.parametrize("head", ["onednn_rows", "block_rows", "kept_copy"])
def test_jit_trace_under_no_grad_records_the_plain_products(monkeypatch, head):
    """torch.jit.trace (and torch.onnx.export's TorchScript tracer) under no_grad: the graph cannot hold oneDNN's
    op (it failed with 'unsupported input list type: Scalar?') nor the buffered blocks' writes, so the head
    records the blocks autograd would; the traced model gives the eager logits, on other inputs too."""
    import warnings

    from tests.harness.models import make_pt, pt_inputs, relative_error

    model = make_pt("MobileBertForMaskedLM").eval()
    if head == "block_rows":
        monkeypatch.setattr(modeling, "ONEDNN_HEAD_ROWS", 0)
    if head == "kept_copy":
        model.cache_vocabulary_projection()
    x = pt_inputs(model.config)
    wrapped = logits_module(model)
    args = (x["input_ids"], x["attention_mask"], x["token_type_ids"])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the host-side input checks, as in export.py
        traced = torch.jit.trace(wrapped, args, strict=False)
        assert not [n.kind() for n in traced.inlined_graph.nodes() if "mkldnn" in n.kind()]
        other_ids = torch.flip(x["input_ids"], dims=[1])
        for ids in (x["input_ids"], other_ids):
            got, want = traced(ids, *args[1:])[0], wrapped(ids, *args[1:])[0]
            assert relative_error(got.numpy(), want.numpy()) < 1e-5
    assert head != "kept_copy" or model.cls.predictions.stacked_cache is not None  # eager did use the copy


def test_onnx_export_under_no_grad_gives_the_eager_logits(tmp_path):
    """A user's own torch.onnx.export (TorchScript tracer) inside no_grad: it failed on the head's oneDNN op."""
    import warnings

    ort = pytest.importorskip("onnxruntime")
    from tests.harness.models import make_pt, pt_inputs, relative_error

    model = logits_module(make_pt("MobileBertForMaskedLM"))
    x = pt_inputs(model.model.config)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    args, path = tuple(x[name] for name in names), str(tmp_path / "mlm.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on the host-side checks; the legacy exporter's notice
        torch.onnx.export(model, args, path, dynamo=False, input_names=names, opset_version=17)
        want = model(*args)[0].numpy()
    got = ort.InferenceSession(path).run(None, {name: value.numpy() for name, value in zip(names, args)})[0]
    assert relative_error(got, want) < 1e-5
