"""save_pretrained's writers: model.safetensors (or shards + index) or pytorch_model.bin, each written atomically.

A failed write leaves no half-written file: every file goes to a temporary name first (files.atomic_path).
"""

from __future__ import annotations

import json
import os
import re
from typing import Dict, Union

import torch

from mobilebert_common.files import atomic_path, atomic_write_text
from mobilebert_pt import checkpoints


def shard_limit(max_shard_size: Union[int, str]) -> int:
    if isinstance(max_shard_size, int):
        return max_shard_size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?i?B)\s*", str(max_shard_size), re.IGNORECASE)
    if not match:
        raise ValueError(f"max_shard_size={max_shard_size!r}: give bytes (int) or a size like '200MB' / '2GB'")
    unit = match.group(2).upper()
    scale = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}[unit]
    return int(float(match.group(1)) * scale)


def remove_stale_weights(directory: str) -> None:
    """Weights of an earlier save would shadow or contradict the new ones (model.safetensors is read first)."""
    for name in os.listdir(directory):
        if name in (checkpoints.SAFE_WEIGHTS_NAME, checkpoints.SAFE_INDEX_NAME, checkpoints.BIN_WEIGHTS_NAME) or re.fullmatch(
            r"model-\d+-of-\d+\.safetensors", name
        ):
            os.remove(os.path.join(directory, name))


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.cpu() for k, v in tensors.items()}, tmp, metadata={"format": "pt"})


def write_shards(directory: str, state: Dict[str, torch.Tensor], limit: int) -> None:
    """model-0000i-of-0000n.safetensors of at most ``limit`` bytes each (a larger tensor gets its own) + index."""
    shards, current, size = [], {}, 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if current and size + nbytes > limit:
            shards.append(current)
            current, size = {}, 0
        current[key] = tensor
        size += nbytes
    shards.append(current)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards, start=1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(os.path.join(directory, name), shard)
        for key, tensor in shard.items():
            weight_map[key] = name
            total += tensor.numel() * tensor.element_size()
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    atomic_write_text(os.path.join(directory, checkpoints.SAFE_INDEX_NAME), json.dumps(index, indent=2) + "\n")


def write_pickle(path: str, tensors: Dict[str, torch.Tensor]) -> None:
    """pytorch_model.bin (safe_serialization=False): a torch pickle of the tensors only."""
    with atomic_path(path) as tmp:
        torch.save({k: v.cpu() for k, v in tensors.items()}, tmp)
