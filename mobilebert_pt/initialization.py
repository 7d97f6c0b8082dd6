"""Weight initialisation: the paper's truncated normal, once per module, and not at all while loading.

from_pretrained builds the model inside ``no_init()`` (post_init draws nothing), copies the checkpoint
in one tensor at a time, then initialises only the weights the checkpoint did not provide
(``init_parameters``): no time is spent drawing numbers that are overwritten, and the weights are
never held twice.
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
    """Normal(0, std) cut at +-2 std, in place by inverse CDF: exact, no loop, no extra buffer (torch's
    trunc_normal_ resamples with full-size float temporaries: seconds and hundreds of MB on a 30k vocabulary)."""
    if tensor.numel() == 0:
        return tensor
    edge = math.erf(2.0 / math.sqrt(2.0))  # erf's value at 2 std: uniform on (-edge, edge) -> within +-2 std
    tensor.uniform_(-edge, edge)
    tensor.erfinv_().mul_(std * math.sqrt(2.0)).clamp_(-2 * std, 2 * std)  # clamp: float rounding only
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
