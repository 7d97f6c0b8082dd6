"""pytorch_model.bin: read without torch (zip format), legacy files and writing through torch.

    read_pytorch_bin(path) -> {name: array}   zip-format files (torch >= 1.6) with numpy alone, by a
                                              restricted unpickler (tensors and plain containers only,
                                              the spirit of torch.load(weights_only=True)); legacy
                                              pre-1.6 files through torch.load(weights_only=True)
    write_pytorch_bin(path, tensors)          torch.save of {name: tensor}, atomically (needs torch)
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from typing import Dict

import numpy as np

from mobilebert_common.files import atomic_path
from mobilebert_common.weight_files import corrupt_file_error

from .arrays import BF16, need_file

KIND = "PyTorch (pytorch_model.bin)"
# A legacy (pre-1.6, non-zip) torch.save file starts with a protocol-2 pickle of torch's magic
# number 0x1950a86a20f9469cfc6c (LONG1, 10 bytes, little-endian).
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + bytes.fromhex("6cfc9c46f9206aa85019")

# torch's storage classes -> numpy dtype. Only these, the tensor rebuild functions and OrderedDict may
# appear in the pickle: anything else could run code.
_STORAGES = {"DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
             "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
             "ByteStorage": np.uint8, "BoolStorage": np.bool_}
if BF16 is not None:
    _STORAGES["BFloat16Storage"] = BF16


class _Storage:
    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    # storage: a flat numpy array of the storage's dtype; size/stride in elements.
    size, stride = tuple(size), tuple(stride)
    if not size:
        return np.array(storage[storage_offset])  # 0-d
    view = np.lib.stride_tricks.as_strided(storage[storage_offset:], shape=size,
                                           strides=tuple(s * storage.itemsize for s in stride))
    return np.array(view)  # own the memory, contiguous


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *args):
    return data


_ALLOWED = {("collections", "OrderedDict"): OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}


def _unwrap(state):
    # Some training scripts save {"state_dict": {...}, ...}.
    return state["state_dict"] if isinstance(state, dict) and isinstance(state.get("state_dict"), dict) else state


def _flat_state(path: str, state) -> Dict[str, np.ndarray]:
    state = _unwrap(state)
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ValueError(f"{path} does not hold a flat state dict of tensors")
    return dict(state)


def read_pytorch_bin(path) -> Dict[str, np.ndarray]:
    """{name: array} of a pytorch_model.bin, without running pickled code."""
    path = need_file(path)
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_MAGIC))
    if head == _LEGACY_MAGIC:
        return _read_legacy(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise corrupt_file_error(path, KIND, f"not a zip archive ({err}); torch.save has written zip files since "
                                             "torch 1.6, and legacy files start with torch's magic number") from None
    with archive:
        names = archive.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise ValueError(f"{path}: no data.pkl in the archive; not a PyTorch checkpoint")
        prefix = pkl[: -len("data.pkl")]
        storages = {}

        class Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if (module, name) in _ALLOWED:
                    return _ALLOWED[(module, name)]
                if module == "torch" and name in _STORAGES:
                    return _Storage(_STORAGES[name])
                raise ValueError(
                    f"{path} holds {module}.{name}, which is not a tensor; only tensors and plain containers are "
                    f"read (weights_only): refusing to run code from a pickle")

            def persistent_load(self, pid):
                # ('storage', storage_type, key, location, numel)
                if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
                    raise ValueError(f"{path}: unexpected persistent id {pid!r}")
                storage_type, key = pid[1], pid[2]
                if not isinstance(storage_type, _Storage):
                    raise ValueError(f"{path}: unsupported storage {storage_type!r}")
                if key not in storages:
                    raw = archive.read(f"{prefix}data/{key}")
                    storages[key] = np.frombuffer(raw, dtype=storage_type.dtype.newbyteorder("<"))
                return storages[key]

        try:
            with archive.open(pkl) as f:
                state = Unpickler(f).load()
        except ValueError:
            raise
        except (pickle.UnpicklingError, EOFError, KeyError, zipfile.BadZipFile, OSError, TypeError) as err:
            raise corrupt_file_error(path, KIND, err) from None
    return _flat_state(path, state)


def _torch(purpose: str):
    try:
        import torch
    except ImportError:
        raise ImportError(f"{purpose} needs torch (pip install torch, or the suite's [pt] extra); "
                          "model.safetensors is read and written without it") from None
    return torch


def _read_legacy(path: str) -> Dict[str, np.ndarray]:
    """A pre-1.6 torch.save file: only torch reads that format; weights_only=True keeps code out."""
    torch = _torch(f"{path} is in the legacy (pre-1.6, non-zip) torch.save format; reading it")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"{path} holds objects other than tensors; it is only read with weights_only=True "
                         f"(no arbitrary code): {str(err).splitlines()[0]}") from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError) as err:
        raise corrupt_file_error(path, KIND, err) from None
    state = _unwrap(state)
    if isinstance(state, dict):
        state = {k: _to_numpy(torch, v, path) if isinstance(v, torch.Tensor) else v for k, v in state.items()}
    return _flat_state(path, state)


def _to_numpy(torch, tensor, path: str) -> np.ndarray:
    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
        if BF16 is None:
            raise ValueError(f"{path} holds bfloat16 tensors; install ml_dtypes to read them without torch's types")
        return tensor.view(torch.int16).numpy().view(BF16).copy()
    return tensor.numpy().copy()


def _to_torch(torch, name: str, array: np.ndarray):
    array = np.ascontiguousarray(array)
    if BF16 is not None and array.dtype == BF16:
        return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16)
    if not array.flags.writeable:
        array = array.copy()
    try:
        return torch.from_numpy(array)
    except TypeError as err:
        raise ValueError(f"tensor {name!r} has dtype {array.dtype}, which a PyTorch checkpoint cannot hold: {err}") from None


def write_pytorch_bin(path, tensors: Dict[str, np.ndarray]) -> None:
    """torch.save({name: tensor}) in the zip format torch.load(weights_only=True) reads, atomically (temp + rename)."""
    torch = _torch("writing pytorch_model.bin")
    state = OrderedDict((name, _to_torch(torch, name, np.asarray(a))) for name, a in tensors.items())
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
