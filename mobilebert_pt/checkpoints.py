"""Checkpoint files for PyTorch: reading safetensors, sharded safetensors, pytorch_model.bin and tf_model.h5;
writing safetensors (one file or shards + index) and pytorch_model.bin.

``open_checkpoint`` finds the weights of a directory or hub repo (mobilebert_common.weight_files, the
one locator both frameworks and the converter share) and returns a ``Checkpoint``: the
names, shapes and dtypes up front (safetensors: from the header, nothing loaded yet) and the tensors
one at a time, so ``from_pretrained`` holds each weight once. Corrupt or truncated files are a
ValueError naming the file, never a raw safetensors/pickle traceback. A failed write leaves no
half-written file: every file goes to a temporary name first (files.atomic_path).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch

from conversion.convert import tf_to_pt
from conversion.formats import read_tf_h5
from mobilebert_common.files import atomic_path, atomic_write_text
from mobilebert_common.hub import resolve_file
from mobilebert_common.weight_files import (  # noqa: F401  (the names are part of this module's API)
    BIN_WEIGHTS_NAME, SAFE_INDEX_NAME, SAFE_WEIGHTS_NAME, TF_WEIGHTS_NAME, corrupt_file_error, index_json, locate_weights,
    parse_size, plan_shards, read_index, shard_name, stale_weight_files, weights_format,
)

_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}


@dataclass
class Checkpoint:
    source: str  # the file(s), for messages
    shapes: Dict[str, Tuple[int, ...]]
    dtypes: Dict[str, torch.dtype]
    get: Callable[[str], torch.Tensor]  # key -> tensor (on the load device for safetensors, else CPU)

    @property
    def float_dtype(self) -> Optional[torch.dtype]:
        """The floating dtype the weights are stored in (torch_dtype="auto")."""
        return next((d for d in self.dtypes.values() if d.is_floating_point), None)


def _open_safetensors(files, device: torch.device, source: str, weight_map: Optional[Dict[str, str]] = None) -> Checkpoint:
    """Open each file once; the headers give names, shapes and dtypes without reading any tensor."""
    from safetensors import SafetensorError, safe_open

    handles, shapes, dtypes, owner = {}, {}, {}, {}
    load_device = str(device) if device.type in ("cpu", "cuda") else "cpu"
    for path in files:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{source} names the weights file {path}, which does not exist")
        try:
            handle = safe_open(path, framework="pt", device=load_device)
            handles[path] = handle
            for key in handle.keys():
                piece = handle.get_slice(key)
                shapes[key] = tuple(piece.get_shape())
                dtypes[key] = _SAFETENSORS_DTYPES.get(piece.get_dtype(), torch.float32)
                owner[key] = path
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise corrupt_file_error(path, "safetensors", err) from None
    if weight_map is not None:
        absent = [k for k in weight_map if k not in owner]
        if absent:
            raise ValueError(f"{source} lists tensors that its shards do not hold: {', '.join(absent[:5])}")

    def get(key: str) -> torch.Tensor:
        path = owner[key]
        try:
            return handles[path].get_tensor(key)
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise corrupt_file_error(path, "safetensors", err) from None

    return Checkpoint(source, shapes, dtypes, get)


def _from_state_dict(state: dict, source: str) -> Checkpoint:
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{source} does not hold a flat dict of named tensors (a state_dict)")
    return Checkpoint(
        source, {k: tuple(v.shape) for k, v in state.items()}, {k: v.dtype for k, v in state.items()}, state.__getitem__
    )


def _load_bin(path: str) -> Checkpoint:
    # weights_only: a pickle may run code; only tensors and plain containers are accepted.
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} holds objects other than tensors, or is not a PyTorch checkpoint; it is only read with "
            f"weights_only=True (no arbitrary code): {str(err).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError) as err:
        raise corrupt_file_error(path, "PyTorch (pytorch_model.bin)", err) from None
    return _from_state_dict(state, path)


def _load_tf_h5(path: str, config, architecture: Optional[str]) -> Checkpoint:
    try:
        pt_weights = tf_to_pt(read_tf_h5(path), config, architecture=architecture)
    except ValueError as err:  # ConversionError is a ValueError
        raise ValueError(f"{path}: {err}") from None
    except OSError as err:
        raise corrupt_file_error(path, "Keras HDF5 (tf_model.h5)", err) from None
    return _from_state_dict({k: torch.from_numpy(v.copy()) for k, v in pt_weights.items()}, path)


def _open(files, device: torch.device, config, architecture: Optional[str]) -> Checkpoint:
    if files.format == "safetensors":
        return _open_safetensors([files.path], device, files.path)
    if files.format == "sharded":
        return _open_safetensors(files.shards, device, files.path, read_index(files.path))
    if files.format == "bin":
        return _load_bin(files.path)
    return _load_tf_h5(files.path, config, architecture)


def open_checkpoint(
    source: str, *, from_tf: bool, hub_kwargs: dict, device: torch.device, config, architecture: Optional[str] = None
) -> Checkpoint:
    """The weights of a directory, a single weights file (any format, by its name), or a hub repo id:
    model.safetensors, then the sharded index, then pytorch_model.bin; tf_model.h5 with from_tf."""
    if os.path.isfile(source):
        return open_weights_file(source, device=device, config=config, architecture=architecture)
    # resolve_file is looked up here, at call time (tests replace it).
    if from_tf:
        files = locate_weights(source, "tf", hub_kwargs, resolve_file, other_hint="load it without from_tf=True.")
    else:
        files = locate_weights(source, "pt", hub_kwargs, resolve_file, other_hint="pass from_tf=True to convert it.")
    return _open(files, device, config, architecture)


def open_weights_file(path: str, *, device: torch.device, config, architecture: Optional[str] = None) -> Checkpoint:
    """A weights file given directly, by its name (.safetensors, .safetensors.index.json, .bin/.pt/.pth, .h5)."""
    kind = "tf" if weights_format(path) == "h5" else "pt"
    return _open(locate_weights(path, kind), device, config, architecture)


# ---------------------------------------------------------------------------------------- writing


def remove_stale_weights(directory: str) -> None:
    """Weights of an earlier save would shadow or contradict the new ones (model.safetensors is read first)."""
    for name in stale_weight_files(os.listdir(directory), "pt"):
        os.remove(os.path.join(directory, name))


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor]) -> List[str]:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.cpu() for k, v in tensors.items()}, tmp, metadata={"format": "pt"})
    return [path]


def write_shards(directory: str, state: Dict[str, torch.Tensor], max_shard_size: Union[int, str]) -> List[str]:
    """model-0000i-of-0000n.safetensors of at most max_shard_size bytes each (a larger tensor gets its own) + index."""
    nbytes = {key: tensor.numel() * tensor.element_size() for key, tensor in state.items()}
    shards = plan_shards(nbytes.items(), parse_size(max_shard_size))
    if len(shards) == 1:  # as the hub does: a checkpoint that fits in one shard is model.safetensors
        return write_safetensors(os.path.join(directory, SAFE_WEIGHTS_NAME), state)
    weight_map, written = {}, []
    for i, keys in enumerate(shards, start=1):
        name = shard_name(i, len(shards))
        written += write_safetensors(os.path.join(directory, name), {key: state[key] for key in keys})
        weight_map.update(dict.fromkeys(keys, name))
    index = os.path.join(directory, SAFE_INDEX_NAME)
    atomic_write_text(index, index_json(weight_map, sum(nbytes.values())))
    return written + [index]


def write_pickle(path: str, tensors: Dict[str, torch.Tensor]) -> List[str]:
    """pytorch_model.bin (safe_serialization=False): a torch pickle of the tensors only."""
    with atomic_path(path) as tmp:
        torch.save({k: v.cpu() for k, v in tensors.items()}, tmp)
    return [path]
