"""Readers and writers for the weight files MobileBERT users have, with numpy only.

    read_safetensors(path)                  model.safetensors            -> {PT name: array}
    read_sharded_safetensors(index_path)    model.safetensors.index.json -> {PT name: array}
    read_pytorch_bin(path)                  pytorch_model.bin (zip pickle, tensors only) -> {PT name: array}
    read_tf_h5(path)                        tf_model.h5 (Keras h5 weights) -> {TF name without model prefix: array}
    write_safetensors(path, tensors, metadata)  atomic
    write_tf_h5(path, weights, model_name)      atomic; the group/attribute structure of Keras h5 weight files

Every error names the file. bfloat16 arrays use ml_dtypes (installed with tensorflow / jax) when present.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from typing import Dict, Optional

import numpy as np

from mobilebert_common.files import atomic_path

try:  # bfloat16 for numpy; optional
    from ml_dtypes import bfloat16 as _BF16
except ImportError:  # pragma: no cover - depends on the environment
    _BF16 = None

# safetensors dtype tag <-> numpy dtype
_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
              "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
if _BF16 is not None:
    _ST_DTYPES["BF16"] = _BF16
_ST_TAGS = {np.dtype(v): k for k, v in _ST_DTYPES.items()}


def _need_file(path) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such weights file: {path}")
    return path


def _corrupt(path: str, kind: str, why) -> ValueError:
    return ValueError(f"{path} is not a valid {kind} file (truncated or corrupt?): {why}")


# ----------------------------------------------------------------------------- safetensors
def read_safetensors(path) -> Dict[str, np.ndarray]:
    """{name: array} of a .safetensors file: 8-byte header length, JSON header, raw little-endian data."""
    path = _need_file(path)
    data = bytearray(os.path.getsize(path))  # writable, so the arrays viewing it are too
    with open(path, "rb") as f:
        f.readinto(data)
    try:
        if len(data) < 8:
            raise ValueError(f"{len(data)} bytes, shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", data[:8])
        if 8 + n > len(data):
            raise ValueError(f"header of {n} bytes runs past the end of the {len(data)}-byte file")
        header = json.loads(bytes(data[8:8 + n]))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        raise _corrupt(path, "safetensors", err) from None
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        tag = info.get("dtype") if isinstance(info, dict) else None
        if tag not in _ST_DTYPES:
            extra = " (install ml_dtypes to read bfloat16)" if tag == "BF16" else ""
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {tag!r}{extra}")
        dtype = np.dtype(_ST_DTYPES[tag])
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if base + end > len(data) or end - start != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise _corrupt(path, "safetensors", f"tensor {name!r} {shape} {tag} does not fit its byte range")
        count = (end - start) // dtype.itemsize
        out[name] = (np.frombuffer(data, dtype=dtype.newbyteorder("<"), count=count, offset=base + start).reshape(shape)
                     if count else np.zeros(shape, dtype))
    return out


def read_sharded_safetensors(index_path) -> Dict[str, np.ndarray]:
    """All tensors of a model.safetensors.index.json and the shards next to it; each name from its listed shard."""
    index_path = _need_file(index_path)
    try:
        with open(index_path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
    except (ValueError, KeyError, TypeError) as err:
        raise _corrupt(index_path, "safetensors index", err) from None
    directory = os.path.dirname(os.path.abspath(index_path))
    out = {}
    for shard in sorted(set(weight_map.values())):
        tensors = read_safetensors(os.path.join(directory, shard))
        wanted = [k for k, v in weight_map.items() if v == shard]
        missing = [k for k in wanted if k not in tensors]
        if missing:
            raise ValueError(f"{index_path}: shard {shard} lacks {', '.join(missing[:5])} that the index lists")
        out.update((k, tensors[k]) for k in wanted)
    return out


def write_safetensors(path, tensors: Dict[str, np.ndarray], metadata: Optional[dict] = None) -> None:
    """Write {name: array} as safetensors (readable by safetensors.torch / transformers), atomically."""
    path = os.fspath(path)
    header, offset = {}, 0
    arrays = []
    for name, array in tensors.items():
        array = np.asarray(array)
        tag = _ST_TAGS.get(array.dtype)
        if tag is None:
            raise ValueError(f"{path}: tensor {name!r} has dtype {array.dtype}, which safetensors cannot store")
        header[name] = {"dtype": tag, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        arrays.append(array)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # data starts 8-byte aligned
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for array in arrays:
                f.write(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes())


# ----------------------------------------------------------------------------- pytorch_model.bin
# torch's storage classes -> numpy dtype. Only these, the tensor rebuild functions and OrderedDict may
# appear in the pickle: anything else could run code (the spirit of torch.load(weights_only=True)).
_STORAGES = {"DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
             "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
             "ByteStorage": np.uint8, "BoolStorage": np.bool_}
if _BF16 is not None:
    _STORAGES["BFloat16Storage"] = _BF16


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


def read_pytorch_bin(path) -> Dict[str, np.ndarray]:
    """{name: array} of a zip-format pytorch_model.bin, without torch and without running pickled code."""
    path = _need_file(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"{path} is not a zip-format PyTorch checkpoint (truncated or corrupt, or the legacy "
                         f"pre-1.6 format: re-save it with torch.save): {err}") from None
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
            raise _corrupt(path, "PyTorch (pytorch_model.bin)", err) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ValueError(f"{path} does not hold a flat state dict of tensors")
    return dict(state)


# ----------------------------------------------------------------------------- tf_model.h5
def _h5py():
    try:
        import h5py
    except ImportError as err:  # pragma: no cover
        raise ImportError(f"reading and writing tf_model.h5 needs h5py: {err}") from None
    return h5py


def _read_names_attr(group, name: str) -> list:
    # Keras splits attributes over 64 KiB into name0, name1, ... (HDF5's attribute size limit).
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            values.extend(group.attrs[f"{name}{i}"])
            i += 1
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _write_names_attr(group, name: str, values: list) -> None:
    data = np.asarray([v.encode("utf-8") for v in values])
    limit = 64512  # HDF5 object header limit, less a margin, as Keras does
    if data.nbytes <= limit:
        group.attrs[name] = data
        return
    chunks = int(np.ceil(data.nbytes / limit))
    while any(part.nbytes > limit for part in np.array_split(data, chunks)):
        chunks += 1
    for i, part in enumerate(np.array_split(data, chunks)):
        group.attrs[f"{name}{i}"] = part


def read_tf_h5(path) -> Dict[str, np.ndarray]:
    """{TF weight name without the model prefix: array} of a Keras h5 weights file (the hub's tf_model.h5)."""
    path = _need_file(path)
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise _corrupt(path, "Keras HDF5 (tf_model.h5)", err) from None
    out = {}
    try:
        with f:
            if "layer_names" not in f.attrs and "layer_names0" not in f.attrs and "model_weights" in f:
                f = f["model_weights"]  # a whole-model .h5 (model.save) keeps the weights here
            layer_names = _read_names_attr(f, "layer_names")
            if not layer_names:
                raise ValueError("no layer_names attribute: not a Keras weights file")
            for layer in layer_names:
                group = f[layer]
                for weight in _read_names_attr(group, "weight_names"):
                    # "tf_mobile_bert_for_pre_training/mobilebert/embeddings/..." -> "mobilebert/embeddings/..."
                    name = weight if weight.startswith(layer + "/") else weight.split("/", 1)[-1]
                    out[name] = np.asarray(group[weight][()])
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise _corrupt(path, "Keras HDF5 (tf_model.h5)", err) from None
    return out


def write_tf_h5(path, weights: Dict[str, np.ndarray], model_name: str) -> None:
    """Write {TF name: array} in the layout Keras' save_weights(h5) and the hub use, atomically.

    Root attrs: backend, keras_version, layer_names (the first name components: "mobilebert",
    "predictions___cls", ...). Each layer group: attr weight_names = "<model_name>/<name>", and the
    dataset at "<layer>/<model_name>/<name>".
    """
    h5py = _h5py()
    path = os.fspath(path)
    layers: Dict[str, list] = {}
    for name in weights:
        layers.setdefault(name.split("/", 1)[0], []).append(name)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["backend"] = b"tensorflow"
            f.attrs["keras_version"] = b"2.21.0"
            _write_names_attr(f, "layer_names", list(layers))
            for layer, names in layers.items():
                group = f.create_group(layer)
                full = [f"{model_name}/{n}" for n in names]
                _write_names_attr(group, "weight_names", full)
                for name, full_name in zip(names, full):
                    array = np.asarray(weights[name])
                    if _BF16 is not None and array.dtype == _BF16:
                        raise ValueError(f"{path}: Keras h5 files cannot hold bfloat16 ({name}); use float32 or float16")
                    group.create_dataset(full_name, data=array)
