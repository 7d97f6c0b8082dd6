"""Reading checkpoint files (safetensors, sharded safetensors, pytorch_model.bin, tf_model.h5) for PyTorch.

``open_checkpoint`` finds the weights of a directory or hub repo (mobilebert_common.weight_files, the
one locator both frameworks and the converter share) and returns a ``Checkpoint``: the
names, shapes and dtypes up front (safetensors: from the header, nothing loaded yet) and the tensors
one at a time, so ``from_pretrained`` holds each weight once. Corrupt or truncated files are a
ValueError naming the file, never a raw safetensors/pickle traceback.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch

from mobilebert_common.hub import resolve_file
from mobilebert_common.weight_files import (  # noqa: F401  (the names are part of this module's API)
    BIN_WEIGHTS_NAME, SAFE_INDEX_NAME, SAFE_WEIGHTS_NAME, TF_WEIGHTS_NAME, corrupt_file_error, locate_weights, read_index,
    weights_format,
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
        from conversion.convert import tf_to_pt
        from conversion.formats import read_tf_h5
    except ImportError as err:
        raise ImportError(f"reading {path} (from_tf=True) needs the `conversion` package of this suite: {err}") from None

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
