"""Weight initialisation: the paper's truncated normal, once per module, and none at all while loading.

from_pretrained builds the model on the "meta" device inside ``no_init()`` (no memory, no random
numbers), allocates it once in the target dtype, copies the checkpoint in, then initialises only the
weights the checkpoint did not provide (``init_parameters``): the weights are never held twice and
no time is spent drawing numbers that are overwritten.
"""

from __future__ import annotations

import contextlib
import math
import threading
from typing import Iterable

import torch
from torch import nn

_state = threading.local()


@contextlib.contextmanager
def no_init():
    """post_init() inside this block ties weights but draws nothing (the caller fills every weight)."""
    previous = getattr(_state, "skip", False)
    _state.skip = True
    try:
        yield
    finally:
        _state.skip = previous


def init_skipped() -> bool:
    return getattr(_state, "skip", False)


@torch.no_grad()
def truncated_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """Normal(0, std) cut at +-2 std, in place by inverse CDF: no rejection loop, no temporaries (torch's
    trunc_normal_ resamples with extra full-size buffers, seconds and hundreds of MB on a 30k vocabulary)."""
    if tensor.numel() == 0:
        return tensor
    low = 0.5 * (1.0 + math.erf(-2.0 / math.sqrt(2.0)))  # Phi(-2)
    tensor.uniform_(2 * low - 1, 1 - 2 * low)  # erf's range for [-2, 2] std
    tensor.erfinv_().mul_(std * math.sqrt(2.0)).clamp_(-2 * std, 2 * std)
    return tensor


@torch.no_grad()
def init_module(module: nn.Module, std: float) -> None:
    """Truncated normal(0, initializer_range) at +-2 std for weights, zero biases, norms at identity,
    as the paper's TF code initialises. The masked-LM output bias (a parameter of the head) starts at 0."""
    from mobilebert_pt.heads import MobileBertLMPredictionHead
    from mobilebert_pt.modeling import NoNorm

    if isinstance(module, nn.Linear):
        truncated_normal_(module.weight, std)
        if module.bias is not None:
            module.bias.zero_()
    elif isinstance(module, nn.Embedding):
        truncated_normal_(module.weight, std)
        if module.padding_idx is not None:
            module.weight[module.padding_idx].zero_()
    elif isinstance(module, (nn.LayerNorm, NoNorm)):
        module.weight.fill_(1.0)
        module.bias.zero_()
    elif isinstance(module, MobileBertLMPredictionHead):
        module.bias.zero_()


@torch.no_grad()
def init_parameters(model: nn.Module, names: Iterable[str], std: float) -> None:
    """Initialise the named parameters only (the rest keep their loaded values), module by module."""
    owners = {}
    for name in names:
        module_name, _, _ = name.rpartition(".")
        owners.setdefault(module_name, set()).add(name.rpartition(".")[2])
    for module_name, params in owners.items():
        module = model.get_submodule(module_name)
        keep = {k: p.detach().clone() for k, p in module.named_parameters(recurse=False) if k not in params}
        init_module(module, std)
        for k, value in keep.items():  # a loaded sibling (e.g. a bias of the right shape) stays
            getattr(module, k).copy_(value)
