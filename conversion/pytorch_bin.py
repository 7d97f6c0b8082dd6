"""pytorch_model.bin: read without torch (zip format), legacy files and writing through torch.

    read_pytorch_bin(path) -> {name: array}   zip-format files (torch >= 1.6) with numpy alone, by a
                                              restricted unpickler (tensors and plain containers only,
                                              the spirit of torch.load(weights_only=True)); legacy
                                              pre-1.6 files through torch.load(weights_only=True)
    write_pytorch_bin(path, tensors)          torch.save of {name: tensor}, atomically (needs torch)
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import zipfile
import zlib
from collections import OrderedDict
from typing import Dict

import numpy as np

from mobilebert_common.files import atomic_path
from mobilebert_common.weight_files import corrupt_file_error

from .arrays import BF16, is_int, need_file, shape_problem

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

# What a damaged archive or pickle raises while it is read (zipfile, zlib and the C unpickler).
_DAMAGE = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
           OverflowError, RecursionError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError)


class _Refused(ValueError):
    """A check of this reader failed; the message already names the file."""


class _Sealed:
    """Objects the unpickler hands out: a pickle may not set their state (BUILD) behind the checks' back."""

    __slots__ = ()

    def __setstate__(self, state):
        raise TypeError(f"the pickle sets the state of a {type(self).__name__.strip('_')}; torch.save never does")


class _StorageType(_Sealed):
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _Storage(_Sealed):
    """A storage record of the archive: data/<key>, ``numel`` elements of ``dtype`` (read when a tensor needs it)."""

    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel


class _Tensor(_Sealed):
    """A tensor as the pickle describes it: a strided view of a storage, checked when it is materialised."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *args):
    if not isinstance(data, _Tensor):
        raise TypeError(f"a parameter wraps {type(data).__name__}, not a tensor")
    return data


_ALLOWED = {("collections", "OrderedDict"): OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}


def _view_problem(t: _Tensor) -> str:
    """Why the tensor's view does not lie inside its storage, or "" (size, stride, offset in elements)."""
    if not isinstance(t.storage, _Storage):
        return f"its storage is a {type(t.storage).__name__}, not a storage record"
    if not (is_int(t.offset) and t.offset >= 0):
        return f"storage offset {t.offset!r} is not an integer >= 0"
    problem = shape_problem(t.size, "size")
    if problem:
        return problem
    if not (isinstance(t.stride, (list, tuple)) and len(t.stride) == len(t.size)
            and all(is_int(s) and s >= 0 for s in t.stride)):
        return f"stride {t.stride!r} must be {len(t.size)} integer(s) >= 0, one per dimension of size {list(t.size)}"
    numel, have = math.prod(t.size), t.storage.numel
    if numel == 0:
        return "" if t.offset <= have else f"storage offset {t.offset} lies past the {have} elements of its storage"
    if numel > have:  # also refuses stride-0 expansions, which would make a small file a huge array
        return f"size {list(t.size)} has {numel} elements but its storage {t.storage.key!r} holds only {have}"
    last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride))
    if last >= have:
        return (f"the view (offset {t.offset}, size {list(t.size)}, stride {list(t.stride)}) reaches element {last} "
                f"of storage {t.storage.key!r}, which holds {have} {t.storage.dtype.name} elements")
    return ""


class _BinReader(pickle.Unpickler):
    """The restricted unpickler of one archive: tensors and plain containers, storages checked against the archive."""

    def __init__(self, path: str, archive: zipfile.ZipFile, pkl: str):
        self.path, self.archive = path, archive
        self.prefix = pkl[: -len("data.pkl")]
        self.storages: Dict[str, _Storage] = {}
        self.data: Dict[str, np.ndarray] = {}  # storage key -> its flat array, read on first use
        order = archive.read(self.prefix + "byteorder").strip() if self.record("byteorder") else b"little"
        if order not in (b"little", b"big"):
            raise self.refuse(f"its byteorder record says {order[:20]!r}; torch writes little or big")
        self.order = "<" if order == b"little" else ">"
        data = archive.read(pkl)
        self.check_memo(data)
        super().__init__(io.BytesIO(data))
        self.state = self.load()

    def check_memo(self, data: bytes) -> None:
        """The C unpickler grows its memo to the largest index a PUT names, so 5 bytes could ask for gigabytes.
        Python's pickler numbers the memo 0, 1, 2...: an index past the count of opcodes before it is refused."""
        for count, (op, arg, _) in enumerate(pickletools.genops(data)):
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and int(arg) > count:
                raise self.refuse(f"its pickle stores memo entry {arg} after only {count} opcodes; torch.save numbers them in order")

    def record(self, name: str):
        """The ZipInfo of the archive's record ``name`` (e.g. "data/0"), or None."""
        try:
            return self.archive.getinfo(self.prefix + name)
        except KeyError:
            return None

    def refuse(self, why: str):
        return _Refused(f"{self.path} is not a valid {KIND} file: {why}")

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGES:
            return _StorageType(name)
        raise _Refused(f"{self.path} holds {module}.{name}, which is not a tensor; only tensors and plain containers "
                       "are read (weights_only): refusing to run code from a pickle")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel), as torch.save writes it
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)
                and isinstance(pid[2], str) and is_int(pid[4]) and pid[4] >= 0):
            raise self.refuse(f"persistent id {pid!r:.200} is not ('storage', <torch storage class>, key, location, numel)")
        key, dtype, numel = pid[2], np.dtype(_STORAGES[pid[1].name]), int(pid[4])
        known = self.storages.get(key)
        if known is not None:
            if (known.dtype, known.numel) != (dtype, numel):
                raise self.refuse(f"storage {key!r} is described as {known.numel} {known.dtype.name} and as "
                                  f"{numel} {dtype.name} elements")
            return known
        info = self.record(f"data/{key}")
        if info is None:
            raise self.refuse(f"storage {key!r:.100} has no record data/{key:.100} in the archive")
        if info.file_size != numel * dtype.itemsize:
            raise self.refuse(f"storage {key!r} holds {info.file_size} bytes, but {numel} {dtype.name} elements "
                              f"take {numel * dtype.itemsize}")
        self.storages[key] = _Storage(key, dtype, numel)
        return self.storages[key]

    def array(self, name: str, t: _Tensor) -> np.ndarray:
        """The tensor ``name`` as an array of its own, after checking that its view lies inside its storage."""
        problem = _view_problem(t)
        if problem:
            raise self.refuse(f"tensor {name!r}: {problem}")
        storage = t.storage
        if math.prod(t.size) == 0:
            return np.zeros(t.size, storage.dtype)
        if storage.key not in self.data:
            raw = self.archive.read(f"{self.prefix}data/{storage.key}")
            self.data[storage.key] = np.frombuffer(raw, storage.dtype.newbyteorder(self.order), count=storage.numel)
        flat = self.data[storage.key]
        # A dimension of size 1 never steps: its stride (which may be anything) is left out of the view.
        strides = tuple(s * flat.itemsize if n > 1 else 0 for n, s in zip(t.size, t.stride))
        view = np.lib.stride_tricks.as_strided(flat[t.offset:], shape=tuple(t.size), strides=strides, writeable=False)
        return np.array(view, dtype=storage.dtype)  # own the memory, contiguous, native byte order


def _unwrap(state):
    # Some training scripts save {"state_dict": {...}, ...}.
    return state["state_dict"] if isinstance(state, dict) and isinstance(state.get("state_dict"), dict) else state


def _flat_state(path: str, state, tensor_type) -> dict:
    """The state dict of a checkpoint, checked: {str name: tensor_type}."""
    state = _unwrap(state)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, tensor_type):
            what = f"key {key!r:.100} is not a string" if not isinstance(key, str) else \
                f"{key!r:.100} is a {type(value).__name__}, not a tensor"
            raise ValueError(f"{path} does not hold a flat state dict of tensors: {what}")
    return dict(state)


def read_pytorch_bin(path) -> Dict[str, np.ndarray]:
    """{name: array} of a pytorch_model.bin, without running pickled code; every view checked against its storage."""
    path = need_file(path)
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_MAGIC))
    if head == _LEGACY_MAGIC:
        return _read_legacy(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as err:
        raise corrupt_file_error(path, KIND, f"not a zip archive ({err}); torch.save has written zip files since "
                                             "torch 1.6, and legacy files start with torch's magic number") from None
    with archive:
        pkl = next((n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise ValueError(f"{path}: no data.pkl in the archive; not a PyTorch checkpoint")
        try:
            reader = _BinReader(path, archive, pkl)
            state = _flat_state(path, reader.state, _Tensor)
            return {name: reader.array(name, t) for name, t in state.items()}
        except _Refused as err:
            raise ValueError(str(err)) from None
        except _DAMAGE as err:
            raise corrupt_file_error(path, KIND, f"{type(err).__name__}: {err}") from None


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
    return _flat_state(path, state, np.ndarray)


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
