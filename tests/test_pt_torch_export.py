"""torch.export (the entry to ExecuTorch and to torch.onnx's default exporter) takes every model with a
symbolic batch and sequence length: the output classes are pytree nodes (modeling.OUTPUT_CLASSES), the
input checks cost no host read while tracing, and nothing specialises on a short sequence."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mobilebert_pt  # noqa: E402
from tests.harness.models import ARCHITECTURES, make_pt, pt_inputs, relative_error  # noqa: E402

HEADS = ARCHITECTURES  # the backbone and every head


def dynamic_shapes(inputs: dict, config, cls_name: str) -> dict:
    from torch.export import Dim

    batch, seq = Dim("batch", min=1, max=64), Dim("seq", min=2, max=config.max_position_embeddings)
    if cls_name == "MobileBertForMultipleChoice":
        return {k: {0: batch, 1: Dim("choices", min=1, max=8), 2: seq} for k in inputs}
    return {k: {0: batch, 1: seq} for k in inputs}


def resized(inputs: dict, batch: int, seq: int) -> dict:
    """The inputs repeated / cut to (batch, seq) (multiple choice: (batch, choices, seq))."""
    out = {}
    for k, v in inputs.items():
        v = v.repeat(*([-(-batch // v.shape[0])] + [1] * (v.dim() - 1)))[:batch]
        v = v.repeat(*([1] * (v.dim() - 1) + [-(-seq // v.shape[-1])]))[..., :seq]
        out[k] = v.contiguous()
    return out


@pytest.mark.parametrize("cls_name", HEADS)
def test_every_model_exports_with_symbolic_batch_and_length(cls_name):
    model = make_pt(cls_name).eval()
    x = pt_inputs(model.config, cls_name)
    program = torch.export.export(model, args=(), kwargs=x, dynamic_shapes=dynamic_shapes(x, model.config, cls_name))
    exported = program.module()
    for batch, seq in [(1, 2), (2, 7), (3, 5), (5, model.config.max_position_embeddings)]:
        inputs = resized(x, batch, seq)
        got, want = exported(**inputs), model(**inputs)
        assert type(got) is type(want) and got.keys() == want.keys()
        for key in want.keys():
            assert relative_error(got[key].detach().numpy(), want[key].detach().numpy()) < 1e-6, (key, batch, seq)


def test_exported_masked_lm_computes_the_loss_and_marks_a_bad_id_with_nan():
    """No host read is traced, so an id outside the vocabulary cannot raise inside the program: its rows
    become NaN (never a plausible wrong number, never an out-of-bounds read), as under torch.compile."""
    model = make_pt("MobileBertForMaskedLM").eval()
    x = pt_inputs(model.config)
    labels = torch.where(x["attention_mask"] > 0, x["input_ids"], torch.full_like(x["input_ids"], -100))
    program = torch.export.export(model, args=(), kwargs={**x, "labels": labels})
    got, want = program.module()(**x, labels=labels), model(**x, labels=labels)
    assert abs(got.loss.item() - want.loss.item()) <= 1e-6 * abs(want.loss.item())
    assert relative_error(got.logits.detach().numpy(), want.logits.detach().numpy()) < 1e-6
    bad = x["input_ids"].clone()
    bad[1, 3] = model.config.vocab_size + 5
    logits = program.module()(**{**x, "input_ids": bad}, labels=labels).logits
    assert torch.isnan(logits[1]).any() and torch.isfinite(logits[0]).all()
    with pytest.raises(ValueError, match="input_ids"):
        model(**{**x, "input_ids": bad})  # eager keeps its clear error


def test_torch_onnx_default_exporter_gives_the_same_logits_in_onnxruntime(tmp_path):
    """torch.onnx.export(dynamo=True), torch's default, goes through torch.export: what users already call."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = make_pt("MobileBertForSequenceClassification").eval()
    x = pt_inputs(model.config)
    path = str(tmp_path / "model.onnx")
    torch.onnx.export(model, (), path, kwargs=x, dynamo=True, input_names=list(x), output_names=["logits"],
                      verbose=False)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {k: v.numpy() for k, v in x.items()})
    assert relative_error(logits, model(**x).logits.detach().numpy()) < 1e-5
    assert np.argmax(logits, -1).tolist() == model(**x).logits.argmax(-1).tolist()


def test_every_output_class_is_registered_and_round_trips_through_pytree():
    from torch.utils import _pytree

    from mobilebert_pt.modeling import OUTPUT_CLASSES

    outputs = {}
    for name in HEADS:
        model = make_pt(name).eval()
        outputs[name] = model(**pt_inputs(model.config, name))
    assert {type(out) for out in outputs.values()} == set(OUTPUT_CLASSES)
    for out in outputs.values():
        leaves, spec = _pytree.tree_flatten(out)
        rebuilt = _pytree.tree_unflatten(leaves, spec)
        assert type(rebuilt) is type(out) and rebuilt.keys() == out.keys()
        assert all(torch.equal(rebuilt[k], out[k]) for k in out.keys())
