"""On-device export (mobilebert_common.export, mobilebert_pt.export_onnx, mobilebert_tf.export_tflite, the CLI).

A tiny checkpoint of every head (order-one random weights, a real vocabulary) is exported to both
formats once per module; the tests read those files back in their runtimes, on inputs of another
batch size (and length, for dynamic exports) than the command's probe, and compare with the
PyTorch model: the relative difference is computed here, from the numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mobilebert_pt
from mobilebert_common.export import (
    EXPORT_CLASSES,
    OUTPUTS,
    ExportPlan,
    plan_export,
    probe_batch,
    relative_difference,
    run_export,
    top_k_agreement,
)
from mobilebert_common.quantization import QUANTIZATIONS, check_quantization, describe
from tests.harness.models import build_pt, random_weights
from tests.harness.models import random_inputs, tiny_config

onnx = pytest.importorskip("onnx", reason="the export extra: pip install 'mobilebert-suite[export]'")
ort = pytest.importorskip("onnxruntime", reason="the export extra: pip install 'mobilebert-suite[export]'")

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the capital of france is paris . mobilebert a compact model that runs on mobile phones and answers questions "
         "quickly short one quick brown fox jumps over lazy dog near river its largest city it was distilled from "
         "larger teacher network yes did not move at all").split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(WORDS)]
SEQ = 16
TOLERANCE = 1e-4


def write_checkpoint(directory: Path, architecture: str, scale_embeddings: float = 1.0) -> str:
    config = tiny_config(vocab_size=len(VOCAB))
    weights = random_weights(config, architecture, "pt")
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    weights[key] = weights[key] * scale_embeddings
    directory.mkdir(parents=True)
    build_pt(architecture, config, weights).save_pretrained(str(directory))
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return str(directory)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict:
    """task -> checkpoint directory of that task's class."""
    root = tmp_path_factory.mktemp("checkpoints")
    return {task: write_checkpoint(root / cls, cls) for task, cls in EXPORT_CLASSES.items()}


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("exports")


def export(fn, checkpoint, task, out, **kwargs):
    lines = []
    result = fn(checkpoint, task, str(out), log=lines.append, **kwargs)
    return result, "\n".join(lines)


@pytest.fixture(scope="module")
def onnx_exports(checkpoints, out_dir) -> dict:
    """task -> (result, printed report) of a float32, dynamic (any batch, any length) ONNX export."""
    return {task: export(mobilebert_pt.export_onnx, ckpt, task, out_dir / f"{task}.onnx", dynamic=True)
            for task, ckpt in checkpoints.items()}


@pytest.fixture(scope="module")
def tflite_exports(checkpoints, out_dir) -> dict:
    """task -> (result, printed report) of a float32 TFLite export of sequence length SEQ (any batch)."""
    mobilebert_tf = pytest.importorskip("mobilebert_tf")
    return {task: export(mobilebert_tf.export_tflite, ckpt, task, out_dir / f"{task}.tflite", seq_len=SEQ)
            for task, ckpt in checkpoints.items()}


def fresh_inputs(task: str, seq: int) -> dict:
    """Inputs unlike the probe's (3 rows, or 2 examples x 3 choices; other ids), int64."""
    config = tiny_config(vocab_size=len(VOCAB))
    if EXPORT_CLASSES[task] != "MobileBertForMultipleChoice":
        return random_inputs(config, batch=3, seq=seq, seed=11)
    choices = [random_inputs(config, batch=2, seq=seq, seed=20 + c) for c in range(3)]
    return {k: np.stack([c[k] for c in choices], axis=1) for k in choices[0]}


def pytorch_outputs(checkpoint: str, task: str, inputs: dict) -> dict:
    model = getattr(mobilebert_pt, EXPORT_CLASSES[task]).from_pretrained(checkpoint).eval()
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, return_dict=True)
    return {name: out[name].numpy() for name in OUTPUTS[EXPORT_CLASSES[task]]}


def assert_command_parity(result, report: str, task: str):
    names = [row.name for row in result.parity]
    assert names == list(OUTPUTS[EXPORT_CLASSES[task]])
    for row in result.parity:
        assert row.relative_difference < TOLERANCE, (row.name, row.relative_difference)
    assert "parity: float32 export within relative 0.0001" in report
    for name in names:
        assert f"  {name} " in report


# ---------------------------------------------------------------------------------------- float32 parity


@pytest.mark.parametrize("task", list(EXPORT_CLASSES))
def test_onnx_reproduces_the_pytorch_model(task, checkpoints, onnx_exports):
    result, report = onnx_exports[task]
    assert_command_parity(result, report, task)
    assert "onnx.checker passed" in report
    onnx.checker.check_model(result.path)
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]
    names = [o.name for o in session.get_outputs()]
    assert names == list(OUTPUTS[EXPORT_CLASSES[task]])
    for seq in (11, 23):  # dynamic: lengths the export never saw, batch 3 (the probe has 4 rows)
        inputs = fresh_inputs(task, seq)
        expected = pytorch_outputs(checkpoints[task], task, inputs)
        got = dict(zip(names, session.run(names, inputs)))
        for name in names:
            assert got[name].shape == expected[name].shape
            assert relative_difference(got[name], expected[name]) < TOLERANCE, (name, seq)


@pytest.mark.parametrize("task", list(EXPORT_CLASSES))
def test_tflite_reproduces_the_model(task, checkpoints, tflite_exports):
    from mobilebert_tf.export import signature_runner

    result, report = tflite_exports[task]
    assert_command_parity(result, report, task)
    assert "builtin ops only" in report
    runner = signature_runner(result.path)
    assert sorted(runner.get_input_details()) == ["attention_mask", "input_ids", "token_type_ids"]
    assert sorted(runner.get_output_details()) == sorted(OUTPUTS[EXPORT_CLASSES[task]])
    inputs = fresh_inputs(task, SEQ)
    got = runner(**{k: v.astype(np.int32) for k, v in inputs.items()})
    # The checkpoint's PyTorch logits: the Keras model matches them (tests/test_equivalence.py), so must its export.
    expected = pytorch_outputs(checkpoints[task], task, inputs)
    for name, value in expected.items():
        assert got[name].shape == value.shape
        assert relative_difference(got[name], value) < TOLERANCE, name


# ---------------------------------------------------------------------------------------- quantized


@pytest.fixture(scope="module")
def quantized(checkpoints, out_dir) -> dict:
    mobilebert_tf = pytest.importorskip("mobilebert_tf")
    runs = {}
    for fmt, fn in (("onnx", mobilebert_pt.export_onnx), ("tflite", mobilebert_tf.export_tflite)):
        for q in ("dynamic-int8", "float16"):
            runs[fmt, q] = export(fn, checkpoints["fill-mask"], "fill-mask", out_dir / f"q-{q}.{fmt}", seq_len=SEQ,
                                  quantize=q)
    return runs


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
@pytest.mark.parametrize("quantize", ["dynamic-int8", "float16"])
def test_quantized_exports_report_drift_and_agreement(fmt, quantize, quantized):
    result, report = quantized[fmt, quantize]
    (row,) = result.parity
    assert row.name == "logits"
    assert 0 < row.relative_difference < 0.5  # drift, reported and finite, of a model that still works
    assert row.top1 is not None and row.top5 is not None and row.top1 >= 0.5 and row.rows == 4  # the four [MASK]s
    assert f"drift of the {quantize} export" in report and "no parity claimed" in report
    assert "parity: float32" not in report
    assert os.path.getsize(result.path) == result.size_bytes


def test_onnx_dynamic_int8_quantizes_the_linear_layers_only(quantized):
    model = onnx.load(quantized["onnx", "dynamic-int8"][0].path)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulInteger") >= 10  # every Linear with a weight
    dtypes = {i.name: i.data_type for i in model.graph.initializer}
    embeddings = [n for n in dtypes if n.endswith("embeddings.weight")]
    assert embeddings and all(dtypes[n] == onnx.TensorProto.FLOAT for n in embeddings)
    per_channel = [i for i in model.graph.initializer if i.name.endswith("_scale") and len(i.dims) == 1]
    assert per_channel  # one scale per output channel


def test_float16_exports_store_float16_weights(quantized):
    model = onnx.load(quantized["onnx", "float16"][0].path)
    assert {i.data_type for i in model.graph.initializer if len(i.dims) == 2} == {onnx.TensorProto.FLOAT16}
    from mobilebert_tf.export import interpreter_class

    interpreter = interpreter_class()(model_path=quantized["tflite", "float16"][0].path)
    assert any(t["dtype"] == np.float16 for t in interpreter.get_tensor_details())
    interpreter = interpreter_class()(model_path=quantized["tflite", "dynamic-int8"][0].path)
    assert any(t["dtype"] == np.int8 for t in interpreter.get_tensor_details())


def test_float16_overflow_fails_and_names_the_reason(tmp_path):
    big = write_checkpoint(tmp_path / "big", "MobileBertForMaskedLM", scale_embeddings=1e6)
    out = tmp_path / "out" / "big.onnx"
    with pytest.raises(ValueError, match="65504"):
        export(mobilebert_pt.export_onnx, big, "fill-mask", out, seq_len=SEQ, quantize="float16")
    assert not (tmp_path / "out").exists()  # nothing written, not even the folder


# ---------------------------------------------------------------------------------------- bad input


def test_tflite_that_needs_flex_ops_is_refused(checkpoints, tmp_path):
    """A fully dynamic Keras graph needs TF's StridedSlice (Flex): said, and refused, since the LiteRT
    interpreter here cannot run it to check parity."""
    mobilebert_tf = pytest.importorskip("mobilebert_tf")
    out = tmp_path / "dynamic.tflite"
    lines = []
    with pytest.raises(ValueError, match=r"needs TensorFlow ops through SELECT_TF_OPS .*nothing written.*--seq-len N"):
        mobilebert_tf.export_tflite(checkpoints["text-classification"], "text-classification", str(out), dynamic=True,
                                    log=lines.append)
    assert any("converting with SELECT_TF_OPS" in line and "tf.StridedSlice" in line for line in lines)
    assert os.listdir(tmp_path) == []


def test_unknown_format_task_and_quantization(checkpoints, tmp_path):
    out = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match=r"unknown export format 'coreml'; choose one of: tflite, onnx"):
        plan_export("coreml", checkpoints["fill-mask"], "fill-mask", str(out))
    with pytest.raises(ValueError, match=r"unknown task 'translation'; export takes one of: fill-mask, .*pretraining"):
        mobilebert_pt.export_onnx(checkpoints["fill-mask"], "translation", str(out))
    with pytest.raises(ValueError, match=r"unknown quantization 'int4'; choose one of: none, dynamic-int8, float16"):
        mobilebert_pt.export_onnx(checkpoints["fill-mask"], "fill-mask", str(out), quantize="int4")
    assert not out.exists()


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_a_task_the_checkpoint_cannot_serve(fmt, checkpoints, tmp_path):
    fn = mobilebert_pt.export_onnx if fmt == "onnx" else pytest.importorskip("mobilebert_tf").export_tflite
    out = tmp_path / f"qa.{fmt}"
    with pytest.raises(ValueError, match=r"cannot serve question-answering: .*saved from MobileBertForMaskedLM.* lack 2 "
                                         r"weights of MobileBertForQuestionAnswering .*qa_outputs"):
        export(fn, checkpoints["fill-mask"], "question-answering", out, seq_len=SEQ)
    assert os.listdir(tmp_path) == []


def test_existing_output_needs_force_and_the_source_is_never_replaced(checkpoints, tmp_path):
    out = tmp_path / "m.onnx"
    out.write_text("keep")
    with pytest.raises(FileExistsError, match=r"m.onnx exists; pass --force \(force=True\) to replace it"):
        mobilebert_pt.export_onnx(checkpoints["text-classification"], "text-classification", str(out), seq_len=SEQ)
    assert out.read_text() == "keep"
    result, _ = export(mobilebert_pt.export_onnx, checkpoints["text-classification"], "text-classification", out,
                       seq_len=SEQ, force=True)
    assert result.parity[0].relative_difference < TOLERANCE and out.read_bytes()[:4] != b"keep"
    source = Path(checkpoints["text-classification"]) / "model.safetensors"
    before = source.read_bytes()
    with pytest.raises(ValueError, match="file of the source checkpoint"):
        mobilebert_pt.export_onnx(str(source.parent), "text-classification", str(source), seq_len=SEQ, force=True)
    assert source.read_bytes() == before


def test_sequence_length_beyond_the_model(checkpoints, tmp_path):
    out = tmp_path / "m.tflite"
    with pytest.raises(ValueError, match=r"sequence length 41 is more than this model takes "
                                         r"\(config.max_position_embeddings = 40\); choose 8 to 40"):
        plan_export("tflite", checkpoints["fill-mask"], "fill-mask", str(out), seq_len=41)
    with pytest.raises(ValueError, match="--seq-len N\\) or --dynamic, not both"):
        plan_export("tflite", checkpoints["fill-mask"], "fill-mask", str(out), seq_len=16, dynamic=True)
    assert not out.exists()


@pytest.mark.parametrize("missing", ["onnxruntime", "onnx"])
def test_a_missing_extra_names_the_package(missing, checkpoints, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, missing, None)  # `import onnxruntime` now fails as if it were not installed
    out = tmp_path / "m.onnx"
    with pytest.raises(ImportError, match=rf"needs the Python package {missing}.*pip install {missing}.*"
                                          r"mobilebert-suite\[export\]"):
        mobilebert_pt.export_onnx(checkpoints["fill-mask"], "fill-mask", str(out), seq_len=SEQ)
    assert not out.exists()


def test_without_litert_the_tensorflow_interpreter_checks_the_export(monkeypatch):
    tf = pytest.importorskip("tensorflow")
    from mobilebert_tf.export import interpreter_class

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    lines = []
    interpreter_class(lines.append)
    assert "ai-edge-litert is not installed; checking the export in tf.lite.Interpreter" in lines[0]
    monkeypatch.delattr(tf.lite, "Interpreter")
    with pytest.raises(ImportError, match=r"needs the Python package ai-edge-litert.*pip install ai-edge-litert"):
        interpreter_class(lines.append)


def test_a_float32_export_that_disagrees_writes_nothing(checkpoints, tmp_path):
    from mobilebert_pt.export import OnnxBackend

    class Drifting(OnnxBackend):  # a converter bug: the file's logits off by 1e-3 of their range
        def run_exported(self, path, plan, inputs):
            out = super().run_exported(path, plan, inputs)
            return {k: v + 1e-3 * max(1.0, float(np.abs(v).max())) for k, v in out.items()}

    out = tmp_path / "deep" / "er" / "m.onnx"
    plan = plan_export("onnx", checkpoints["token-classification"], "token-classification", str(out), seq_len=SEQ)
    lines = []
    with pytest.raises(ValueError, match=r"does not reproduce the source model \(max relative difference logits: "
                                         r"0\.001 > 0\.0001\); nothing written"):
        run_export(plan, Drifting(), log=lines.append)
    assert os.listdir(tmp_path) == []  # no file, no temporary, no folder
    assert any(line.startswith("  logits ") for line in lines)  # the numbers are printed before the verdict


# ---------------------------------------------------------------------------------------- the pieces


def test_probe_batch_pads_rows_and_masks_tokens(checkpoints):
    from mobilebert_common.export import load_probe_tokenizer

    plan = plan_export("onnx", checkpoints["fill-mask"], "fill-mask", "unused.onnx", seq_len=SEQ)
    probe = probe_batch(plan, load_probe_tokenizer(plan.source))
    ids, mask = probe.inputs["input_ids"], probe.inputs["attention_mask"]
    assert ids.shape == (4, SEQ) and ids.dtype == np.int64
    assert (mask == 0).any(axis=1).sum() >= 2  # padded rows
    assert probe.positions.sum() == 4 and (ids[probe.positions] == VOCAB.index("[MASK]")).all()
    plan = plan_export("onnx", checkpoints["multiple-choice"], "multiple-choice", "unused.onnx", dynamic=True)
    probe = probe_batch(plan, None)  # no vocabulary: random ids of the same layout
    assert probe.inputs["input_ids"].shape == (2, 2, 16) and "random ids" in probe.description
    assert (probe.inputs["token_type_ids"] == 1).any()  # pairs


def test_relative_difference_and_agreement():
    expected = np.array([[1.0, 5.0, 3.0, 0.0, -2.0, 4.0], [200.0, 0.0, 0.0, 0.0, 0.0, 100.0]])
    actual = expected.copy()
    actual[1, 5] = 202.0  # now the best class of row 1
    assert relative_difference(actual, expected) == pytest.approx(102.0 / 200.0)
    assert relative_difference(expected * 1e-3 + 1e-5, expected * 1e-3) == pytest.approx(1e-5)  # max(1, |b|)
    assert top_k_agreement(actual, expected, 1) == 0.5
    assert top_k_agreement(actual, expected, 2) == 1.0  # the same two best classes in both rows


def test_quantization_names_and_meanings():
    assert list(QUANTIZATIONS) == ["none", "dynamic-int8", "float16"]
    assert "Linear/Dense layers stored as int8" in QUANTIZATIONS["dynamic-int8"]
    assert check_quantization("float16") == "float16"
    with pytest.raises(ValueError, match="choose one of: none, dynamic-int8, float16"):
        check_quantization("int8")
    assert describe().startswith("none: float32")


def test_plan_describes_the_axes(checkpoints):
    plan = plan_export("onnx", checkpoints["multiple-choice"], "multiple-choice", "unused.onnx", seq_len=SEQ)
    assert isinstance(plan, ExportPlan) and plan.input_layout == ("batch", "choices", "sequence")
    assert plan.varying_axes(plan.input_layout) == {0: "batch", 1: "choices"}
    plan = plan_export("onnx", checkpoints["question-answering"], "question-answering", "unused.onnx", dynamic=True)
    assert plan.output_names == ("start_logits", "end_logits")
    assert plan.varying_axes(OUTPUTS[plan.class_name]["start_logits"]) == {0: "batch", 1: "sequence"}


# ---------------------------------------------------------------------------------------- the command


def test_cli_exports_and_prints_parity(checkpoints, tmp_path):
    out = tmp_path / "cli.onnx"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    args = ["export", "--format", "onnx", "--model", checkpoints["next-sentence-prediction"],
            "--task", "next-sentence-prediction", str(out), "--seq-len", str(SEQ)]
    done = subprocess.run([sys.executable, "-m", "mobilebert_cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "max rel. diff" in done.stdout and "parity: float32 export within relative 0.0001" in done.stdout
    assert f"wrote {out}" in done.stdout and out.exists()
    again = subprocess.run([sys.executable, "-m", "mobilebert_cli", *args[:2], "coreml", *args[3:]], capture_output=True,
                           text=True, env=env, cwd=ROOT, timeout=300)
    assert again.returncode == 1 and again.stdout == ""
    assert "mobilebert export: error: unknown export format 'coreml'; choose one of: tflite, onnx" in again.stderr


def test_cli_errors_exit_1_and_write_nothing(checkpoints, tmp_path, capsys):
    import argparse

    from mobilebert_cli import export as export_cli

    parser = argparse.ArgumentParser(prog="mobilebert")
    export_cli.add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "m.tflite"
    args = parser.parse_args(["export", "--format", "tflite", "--model", checkpoints["fill-mask"], "--task", "fill-mask",
                              str(out), "--seq-len", "600"])
    assert export_cli.main(args) == 1
    assert "mobilebert export: error: sequence length 600 is more than this model takes" in capsys.readouterr().err
    assert not out.exists()
    help_text = export_cli.add_parser(argparse.ArgumentParser().add_subparsers()).format_help()
    for name in QUANTIZATIONS:
        assert name in help_text
    assert "stored as int8" in help_text


def test_export_names_are_lazy():
    code = ("import sys, mobilebert_pt\n"
            "assert 'export_onnx' in mobilebert_pt.__all__ and 'mobilebert_pt.export' not in sys.modules\n"
            "assert mobilebert_pt.export_onnx.__module__ == 'mobilebert_pt.export'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
