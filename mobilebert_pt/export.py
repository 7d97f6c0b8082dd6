"""ONNX export of the PyTorch models, checked in ONNX Runtime: ``export_onnx`` and `mobilebert export --format onnx`.

    from mobilebert_pt import export_onnx
    export_onnx("google/mobilebert-uncased", "fill-mask", "mobilebert.onnx", seq_len=128)

The framework-free flow (arguments, probe batch, parity, report, all-or-nothing write) is
mobilebert_common.export; this module loads the PyTorch model, exports it and runs the file.

The exporter is torch.onnx.export's TorchScript tracer (dynamo=False). torch 2.13's default
exporter (dynamo=True, through torch.export) also takes these models (while tracing, the input
checks read no value on the host: inputs.py; tests/test_pt_torch_export.py runs it), but the tracer
is faster and its files are the ones this module has checked in every runtime and quantization.
The tracer runs the input checks once, on the tracing batch, and records only the tensor operations,
with the batch, choices and (with dynamic=True) sequence axes symbolic.
The tracing batch differs from the probe batch in size and values, so the parity check would
catch anything the trace had frozen. The graph itself holds no input checks (as with any ONNX
model): validate ids on the host.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import warnings
from typing import Callable, Dict, Optional

import numpy as np
import torch

from mobilebert_common.export import (
    INPUT_NAMES,
    OUTPUTS,
    ExportPlan,
    ExportResult,
    check_head_weights,
    load_options,
    plan_export,
    quiet_loading,
    require,
    run_export,
)
from mobilebert_common.quantization import DYNAMIC_INT8, FLOAT16, NONE
from mobilebert_pt import modeling  # the task classes; not through the package, whose export_onnx is this module's

OPSET = 17  # LayerNormalization is an ONNX op from 17 on; ONNX Runtime and onnx.checker both take it


def export_onnx(model, task: str, out, *, seq_len: Optional[int] = None, dynamic: bool = False, quantize: str = NONE,
                force: bool = False, log: Callable[[str], None] = print, hub_kwargs: Optional[dict] = None) -> ExportResult:
    """Export the ``task`` head of checkpoint ``model`` (a directory or hub repo id) to the ONNX file ``out``.

    Inputs input_ids, attention_mask, token_type_ids (int64, (batch, seq), multiple-choice (batch,
    choices, seq)); outputs under the model's names (logits, start_logits / end_logits, ...). Any
    batch size; sequence length ``seq_len`` (default 128, at most max_position_embeddings) or any
    with ``dynamic=True``. ``quantize``: see mobilebert_common.quantization. The file is written
    only when it runs in ONNX Runtime and, in float32, reproduces the PyTorch model within relative
    1e-4 on a probe batch (printed through ``log``); an existing ``out`` needs ``force=True``.
    """
    plan = plan_export("onnx", model, task, out, seq_len=seq_len, dynamic=dynamic, quantize=quantize, force=force,
                       hub_kwargs=hub_kwargs)
    require("onnx", "onnx", "ONNX export")
    require("onnxruntime", "onnxruntime", "Running the ONNX export (its parity check)")
    return run_export(plan, OnnxBackend(hub_kwargs), log=log, hub_kwargs=hub_kwargs)


class NamedOutputs(torch.nn.Module):
    """The model called with the three named inputs, its outputs as a tuple in OUTPUTS order (what ONNX names)."""

    def __init__(self, model: torch.nn.Module, names):
        super().__init__()
        self.model = model
        self.names = tuple(names)

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=True)
        return tuple(out[name] for name in self.names)


class OnnxBackend:
    def __init__(self, hub_kwargs: Optional[dict] = None):
        self.hub_kwargs = dict(hub_kwargs or {})

    def load(self, plan: ExportPlan) -> torch.nn.Module:
        cls = getattr(modeling, plan.class_name)
        with quiet_loading():
            model, info = cls.from_pretrained(plan.source, torch_dtype=torch.float32, output_loading_info=True,
                                              **load_options(plan.source, "pt", self.hub_kwargs), **self.hub_kwargs)
        check_head_weights(plan, info["missing_keys"])
        return model.eval()

    def run_source(self, model, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        with torch.no_grad():
            out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, return_dict=True)
        return {name: value.float().numpy() for name, value in out.items() if isinstance(value, torch.Tensor)}

    def convert(self, model, plan: ExportPlan, path: str, log: Callable[[str], None]) -> None:
        onnx = require("onnx", "onnx", "ONNX export")
        if plan.quantize == DYNAMIC_INT8:
            quantization = require("onnxruntime.quantization", "onnxruntime", "ONNX dynamic-int8 quantization")
            with tempfile.TemporaryDirectory() as folder:
                float32 = os.path.join(folder, "float32.onnx")
                trace_to_onnx(model, plan, float32)
                with quiet_quantizer():
                    # Linear layers only (MatMul/Gemm with a weight): the embedding tables stay float32.
                    quantization.quantize_dynamic(float32, path, weight_type=quantization.QuantType.QInt8, per_channel=True,
                                                  op_types_to_quantize=["MatMul", "Gemm"])
        elif plan.quantize == FLOAT16:
            try:  # the tracing run itself may overflow (the model raises at inf/NaN)
                trace_to_onnx(copy.deepcopy(model).half(), plan, path)
            except ValueError as err:
                raise ValueError(f"the float16 export failed while tracing: {err} Export float32 (quantize none) or "
                                 "dynamic-int8 instead; nothing written") from None
        else:
            trace_to_onnx(model, plan, path)
        onnx.checker.check_model(path)  # by path: the check also covers files past protobuf's 2 GB
        log(f"onnx: opset {OPSET}, TorchScript tracer (torch.onnx.export dynamo=False), onnx.checker passed")

    def run_exported(self, path: str, plan: ExportPlan, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        ort = require("onnxruntime", "onnxruntime", "Running the ONNX export")
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        values = session.run(list(plan.output_names), {name: inputs[name] for name in INPUT_NAMES})
        return dict(zip(plan.output_names, values))


def tracing_inputs(plan: ExportPlan, dtype=torch.long) -> tuple:
    """(input_ids, attention_mask, token_type_ids) of another size and other values than the probe batch:
    (2, [2,] T) with T = seq_len, or 9 tokens when dynamic; the last row padded."""
    config = plan.config
    length = plan.seq_len or min(9, config.max_position_embeddings)
    shape = (2, 2, length) if len(plan.input_layout) == 3 else (2, length)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, config.vocab_size, shape, generator=generator, dtype=dtype)
    mask = torch.ones(shape, dtype=dtype)
    mask[-1, ..., length // 2:] = 0
    return ids, mask, torch.zeros(shape, dtype=dtype)


def trace_to_onnx(model: torch.nn.Module, plan: ExportPlan, path: str) -> None:
    axes = {name: plan.varying_axes(plan.input_layout) for name in INPUT_NAMES}
    axes.update({name: plan.varying_axes(layout) for name, layout in OUTPUTS[plan.class_name].items()})
    with warnings.catch_warnings():
        # Expected, see the module docstring: the tracer's note on the host-side checks, and torch's
        # notice that this exporter is the older one.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=r".*Constant folding - Only steps=1.*")
        torch.onnx.export(NamedOutputs(model, plan.output_names).eval(), tracing_inputs(plan), path, dynamo=False,
                          input_names=list(INPUT_NAMES), output_names=list(plan.output_names), dynamic_axes=axes,
                          opset_version=OPSET, do_constant_folding=True)


@contextlib.contextmanager
def quiet_quantizer():
    """onnxruntime's quantizer logs a shape-inference warning per integer tensor (shapes, masks) on the root logger."""
    previous = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logging.root.setLevel(previous)
