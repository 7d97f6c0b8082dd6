"""save_pretrained's writers: model.safetensors (or shards + index) or pytorch_model.bin, each written atomically.

A failed write leaves no half-written file: every file goes to a temporary name first (files.atomic_path).
"""

from __future__ import annotations

import os
from typing import Dict, Union

import torch

from mobilebert_common.files import atomic_path, atomic_write_text
from mobilebert_common.weight_files import SAFE_INDEX_NAME, SAFE_WEIGHTS_NAME, index_json, parse_size, plan_shards, shard_name, stale_weight_files


def remove_stale_weights(directory: str) -> None:
    """Weights of an earlier save would shadow or contradict the new ones (model.safetensors is read first)."""
    for name in stale_weight_files(os.listdir(directory), "pt"):
        os.remove(os.path.join(directory, name))


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.cpu() for k, v in tensors.items()}, tmp, metadata={"format": "pt"})


def write_shards(directory: str, state: Dict[str, torch.Tensor], max_shard_size: Union[int, str]) -> None:
    """model-0000i-of-0000n.safetensors of at most max_shard_size bytes each (a larger tensor gets its own) + index."""
    nbytes = {key: tensor.numel() * tensor.element_size() for key, tensor in state.items()}
    shards = plan_shards(nbytes.items(), parse_size(max_shard_size))
    if len(shards) == 1:  # as the hub does: a checkpoint that fits in one shard is model.safetensors
        write_safetensors(os.path.join(directory, SAFE_WEIGHTS_NAME), state)
        return
    weight_map = {}
    for i, keys in enumerate(shards, start=1):
        name = shard_name(i, len(shards))
        write_safetensors(os.path.join(directory, name), {key: state[key] for key in keys})
        weight_map.update(dict.fromkeys(keys, name))
    atomic_write_text(os.path.join(directory, SAFE_INDEX_NAME), index_json(weight_map, sum(nbytes.values())))


def write_pickle(path: str, tensors: Dict[str, torch.Tensor]) -> None:
    """pytorch_model.bin (safe_serialization=False): a torch pickle of the tensors only."""
    with atomic_path(path) as tmp:
        torch.save({k: v.cpu() for k, v in tensors.items()}, tmp)
