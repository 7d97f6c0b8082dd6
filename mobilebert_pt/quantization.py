"""Dynamic int8 for CPU inference: ``mobilebert_pt.quantize_dynamic(model)``.

The meaning is mobilebert_common.quantization's "dynamic-int8": the weights of every Linear layer that
runs stored as int8, per output channel (torch's per-channel dynamic qconfig, fbgemm / x86 kernels), the
activations quantized at run time, row by row; everything else (embeddings, norms, softmax) float32.

The masked-LM head multiplies by the tied word embeddings and its own dense weight (modeling.py), not
through a Linear, so here it gets one Linear H -> V built from [E | dense.weight^T] (V, H) and the
output bias, quantized like the others (the input embedding table stays float32). The float dense and
decoder weights stay in the model, unused, so get_output_embeddings keeps working.

Inference only: int8 weights are not parameters and get no gradients; a quantized model is in eval mode,
refuses train() and cannot be saved with save_pretrained (quantize the float model after loading instead).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from mobilebert_common.quantization import DYNAMIC_INT8
from mobilebert_pt.modeling import MobileBertLMPredictionHead, MobileBertPreTrainedModel


def _head_projection(head: MobileBertLMPredictionHead) -> nn.Linear:
    """The head's two products as one float Linear H -> V: weight [E (V, E) | dense.weight^T (V, H-E)]."""
    words, extra = head.decoder.weight, head.dense.weight.t()
    linear = nn.Linear(words.shape[1] + extra.shape[1], words.shape[0], device=words.device)
    with torch.no_grad():
        linear.weight.copy_(torch.cat([words, extra], dim=1))
        linear.bias.copy_(head.bias)
    return linear


def _refuse_training(model: nn.Module, mode: bool = True):
    if mode:
        raise ValueError(f"this {type(model).__name__} is quantized ({DYNAMIC_INT8}) for inference: its int8 weights "
                         "cannot be trained. Train the float32 model, then call mobilebert_pt.quantize_dynamic on it")
    return nn.Module.train(model, False)


def _refuse_saving(model: nn.Module, *args, **kwargs):
    raise ValueError(f"a {DYNAMIC_INT8} model cannot be saved with save_pretrained (its checkpoint layout is float); "
                     "save the float32 model and quantize after loading")


def quantize_dynamic(model: MobileBertPreTrainedModel) -> MobileBertPreTrainedModel:
    """A copy of ``model`` (float32, on the CPU) with every Linear that runs as a dynamic int8 Linear
    (module docstring); the model itself is unchanged. The copy is in eval mode and stays there."""
    if not isinstance(model, MobileBertPreTrainedModel):
        raise ValueError(f"quantize_dynamic takes a MobileBERT PyTorch model, got {type(model).__name__}")
    if model.device.type != "cpu" or model.dtype != torch.float32:
        raise ValueError(f"{DYNAMIC_INT8} runs on the CPU in float32; this model is {model.dtype} on {model.device}. "
                         "Load it with device_map='cpu' and torch_dtype=torch.float32 (the defaults), then quantize")
    model = copy.deepcopy(model).eval()  # deepcopy keeps the decoder tied to the embeddings
    skip = set()
    for name, module in model.named_modules():
        if isinstance(module, MobileBertLMPredictionHead):
            module.projection = _head_projection(module)
            skip |= {f"{name}.dense", f"{name}.decoder"}  # weight holders, never called
    names = {name for name, m in model.named_modules() if isinstance(m, nn.Linear) and name not in skip}
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    torch.ao.quantization.quantize_dynamic(model, {name: qconfig for name in names}, dtype=torch.qint8, inplace=True)
    model.train = _refuse_training.__get__(model)
    model.save_pretrained = _refuse_saving.__get__(model)
    model.quantization = DYNAMIC_INT8
    return model
