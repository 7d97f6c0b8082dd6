"""Dynamic int8 for CPU inference: ``mobilebert_pt.quantize_dynamic(model)``, or
``from_pretrained(..., quantize="dynamic-int8")``.

The meaning is mobilebert_common.quantization's "dynamic-int8": the weights of every Linear layer that
runs stored as int8, per output channel (torch's per-channel dynamic qconfig, fbgemm / x86 kernels), the
activations quantized at run time, row by row; everything else (embeddings, norms, softmax) float32.

The masked-LM head multiplies by the tied word embeddings and its own dense weight (modeling.py), not
through a Linear; modules that hold such products offer ``single_projection()`` (the masked-LM head builds
one Linear H -> V from [E | dense.weight^T] (V, H) and the output bias), which is quantized like the
others (the input embedding table stays float32). The float dense and decoder weights stay in the model,
unused, so get_output_embeddings keeps working.

Inference only: int8 weights are not parameters and get no gradients; a quantized model is in eval mode,
refuses train() and cannot be saved with save_pretrained (quantize the float model after loading instead).
This module knows no MobileBERT class (the generic loader, pretrained.py, calls it).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from mobilebert_common.quantization import DYNAMIC_INT8, NONE, QUANTIZATIONS


def _refuse_training(model: nn.Module, mode: bool = True):
    if mode:
        raise ValueError(f"this {type(model).__name__} is quantized ({DYNAMIC_INT8}) for inference: its int8 weights "
                         "cannot be trained. Train the float32 model, then call mobilebert_pt.quantize_dynamic on it")
    return nn.Module.train(model, False)


def _refuse_saving(model: nn.Module, *args, **kwargs):
    raise ValueError(f"a {DYNAMIC_INT8} model cannot be saved with save_pretrained (its checkpoint layout is float); "
                     "save the float32 model and quantize after loading")


def check_loading_quantization(quantize) -> bool:
    """from_pretrained's quantize=: None / "none" -> False, "dynamic-int8" -> True, anything else a ValueError."""
    if quantize is None or quantize == NONE:
        return False
    if quantize == DYNAMIC_INT8:
        return True
    other = ", ".join(repr(q) for q in QUANTIZATIONS if q not in (NONE, DYNAMIC_INT8))
    raise ValueError(f"quantize={quantize!r} is not offered by from_pretrained; allowed: None, 'none', "
                     f"{DYNAMIC_INT8!r} (CPU int8). For {other} use torch_dtype=torch.float16 or the export's --quantize")


def quantize_dynamic(model: nn.Module, in_place: bool = False) -> nn.Module:
    """A copy of ``model`` (a MobileBERT model, float32, on the CPU) with every Linear that runs as a dynamic
    int8 Linear (module docstring); the model itself is unchanged unless in_place (from_pretrained's own
    fresh model: no second copy). The result is in eval mode and stays there."""
    if not isinstance(model, nn.Module) or not hasattr(model, "config_class"):
        raise ValueError(f"quantize_dynamic takes a MobileBERT PyTorch model, got {type(model).__name__}")
    if getattr(model, "quantization", None) == DYNAMIC_INT8:
        raise ValueError(f"this {type(model).__name__} is already quantized ({DYNAMIC_INT8})")
    if model.device.type != "cpu" or model.dtype != torch.float32:
        raise ValueError(f"{DYNAMIC_INT8} runs on the CPU in float32; this model is {model.dtype} on {model.device}. "
                         "Load it with device_map='cpu' and torch_dtype=torch.float32 (the defaults), then quantize")
    if not in_place:
        model = copy.deepcopy(model)  # deepcopy keeps the decoder tied to the embeddings
    model.eval()
    skip = set()
    for name, module in model.named_modules():
        if hasattr(module, "single_projection"):
            skip |= {f"{name}.{holder}" for holder in module.single_projection()}  # weight holders, never called
    names = {name for name, m in model.named_modules() if isinstance(m, nn.Linear) and name not in skip}
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    torch.ao.quantization.quantize_dynamic(model, {name: qconfig for name in names}, dtype=torch.qint8, inplace=True)
    model.train = _refuse_training.__get__(model)
    model.save_pretrained = _refuse_saving.__get__(model)
    model.quantization = DYNAMIC_INT8
    return model
