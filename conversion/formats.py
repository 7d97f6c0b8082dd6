"""Readers and writers for the weight files MobileBERT users have, with numpy only.

    read_safetensors(path)                  model.safetensors            -> {PT name: array}
    read_sharded_safetensors(index_path)    model.safetensors.index.json -> {PT name: array}
    read_pytorch_bin(path)                  pytorch_model.bin (zip pickle, tensors only) -> {PT name: array}
    read_tf_h5(path)                        tf_model.h5 (Keras h5 weights) -> {TF name without model prefix: array}
    read_weights(files)                     a located checkpoint (mobilebert_common.weight_files.WeightFiles)
    write_safetensors(path, tensors, metadata)                  atomic
    write_sharded_safetensors(directory, tensors, max_shard_size, metadata)
                                            model-0000i-of-0000n.safetensors + the hub's index JSON, all or nothing
    write_pytorch_bin(path, tensors)        torch.save (needs torch), atomic
    write_tf_h5(path, weights, model_name)  atomic; the group/attribute structure of Keras h5 weight files

Every error names the file. bfloat16 arrays use ml_dtypes (installed with tensorflow / jax) when present.
pytorch_model.bin lives in conversion/pytorch_bin.py (re-exported here).
"""

from __future__ import annotations

import json
import math
import os
import struct
from typing import Dict, List, Optional, Union

import numpy as np

from mobilebert_common.files import atomic_path, atomic_write_text
from mobilebert_common.staging import staged_directory
from mobilebert_common.weight_files import (SAFE_INDEX_NAME, SAFE_WEIGHTS_NAME, SHARD_NAME, WeightFiles,
                                            corrupt_file_error, index_json, parse_size, plan_shards, read_index,
                                            shard_name)

from .arrays import BF16 as _BF16
from .arrays import is_int, shape_problem
from .arrays import need_file as _need_file
from .pytorch_bin import read_pytorch_bin, write_pytorch_bin  # noqa: F401  (part of this module's API)

# safetensors dtype tag <-> numpy dtype
_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
              "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
if _BF16 is not None:
    _ST_DTYPES["BF16"] = _BF16
_ST_TAGS = {np.dtype(v): k for k, v in _ST_DTYPES.items()}


# ----------------------------------------------------------------------------- safetensors
_MAX_HEADER = 100_000_000  # bytes; the safetensors library's own limit


def _safetensors_header(data: bytearray):
    """(header dict, start of the data section) of a safetensors file's bytes; ValueError saying what is wrong."""
    if len(data) < 8:
        raise ValueError(f"{len(data)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER:
        raise ValueError(f"header length {n} is over the {_MAX_HEADER}-byte limit of the format")
    if 8 + n > len(data):
        raise ValueError(f"header of {n} bytes runs past the end of the {len(data)}-byte file")
    try:
        header = json.loads(bytes(data[8:8 + n]))
    except RecursionError:
        raise ValueError("header nests too deeply to be a safetensors header") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    if not isinstance(header.get("__metadata__", {}), dict):
        raise ValueError("__metadata__ is not a JSON object")
    return header, 8 + n


def _safetensors_layout(header: dict, size: int) -> list:
    """[(name, dtype, shape, begin, end)] in header order, checked: known dtypes, shapes of ints >= 0, byte
    ranges that match the shapes and tile the ``size``-byte data section, in order, without overlap or gap
    (as the safetensors library requires)."""
    layout = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise ValueError(f"tensor {name!r:.100} is described by a {type(info).__name__}, not an object")
        tag = info.get("dtype")
        if not isinstance(tag, str) or tag not in _ST_DTYPES:
            extra = " (install ml_dtypes to read bfloat16)" if tag == "BF16" else ""
            raise ValueError(f"tensor {name!r:.100} has unsupported dtype {tag!r:.50}{extra}; "
                             f"allowed: {', '.join(_ST_DTYPES)}")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        problem = shape_problem(shape)
        if problem:
            raise ValueError(f"tensor {name!r:.100}: {problem}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(is_int(o) and o >= 0 for o in offsets)
                and offsets[0] <= offsets[1]):
            raise ValueError(f"tensor {name!r:.100}: data_offsets {offsets!r:.100} must be [begin, end], "
                             "integers with 0 <= begin <= end")
        dtype = np.dtype(_ST_DTYPES[tag])
        if offsets[1] - offsets[0] != math.prod(shape) * dtype.itemsize:
            raise ValueError(f"tensor {name!r:.100} {tuple(shape)} {tag} takes {math.prod(shape) * dtype.itemsize} "
                             f"bytes, but its data_offsets {offsets} span {offsets[1] - offsets[0]}")
        layout.append((name, dtype, tuple(shape), offsets[0], offsets[1]))
    end = 0
    for name, _, _, begin, stop in sorted(layout, key=lambda t: (t[3], t[4])):
        if begin != end:
            what = "overlaps the tensor before it" if begin < end else f"leaves a gap after byte {end}"
            raise ValueError(f"tensor {name!r:.100} at bytes [{begin}, {stop}) {what}")
        end = stop
    if end != size:
        raise ValueError(f"the tensors cover {end} bytes of the {size}-byte data section")
    return layout


def read_safetensors(path) -> Dict[str, np.ndarray]:
    """{name: array} of a .safetensors file: 8-byte header length, JSON header, raw little-endian data."""
    path = _need_file(path)
    data = bytearray(os.path.getsize(path))  # writable, so the arrays viewing it are too
    with open(path, "rb") as f:
        f.readinto(data)
    try:
        header, base = _safetensors_header(data)
        layout = _safetensors_layout(header, len(data) - base)
    except ValueError as err:  # also JSON and UTF-8 errors
        raise corrupt_file_error(path, "safetensors", err) from None
    return {name: np.frombuffer(data, dtype=dtype.newbyteorder("<"), count=(end - begin) // dtype.itemsize,
                                offset=base + begin).reshape(shape) if end > begin else np.zeros(shape, dtype)
            for name, dtype, shape, begin, end in layout}


def read_sharded_safetensors(index_path) -> Dict[str, np.ndarray]:
    """All tensors of a model.safetensors.index.json and the shards next to it; each name from its listed shard."""
    index_path = _need_file(index_path)
    weight_map = read_index(index_path)
    directory = os.path.dirname(os.path.abspath(index_path))
    out = {}
    for shard in sorted(set(weight_map.values())):
        if not os.path.isfile(os.path.join(directory, shard)):
            raise FileNotFoundError(f"{index_path} lists the shard {shard}, which is not in {directory}")
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


def write_sharded_safetensors(directory, tensors: Dict[str, np.ndarray], max_shard_size: Union[int, str] = "5GB",
                              metadata: Optional[dict] = None) -> List[str]:
    """Shards model-0000i-of-0000n.safetensors of at most ``max_shard_size`` bytes each (a larger tensor
    gets one of its own) and model.safetensors.index.json as the hub writes it:
    {"metadata": {"total_size": bytes}, "weight_map": {name: shard}}. Returns the paths, index last.

    All or nothing: the set is staged and moved in together (mobilebert_common/staging.py). It replaces the
    directory's safetensors weights: a model.safetensors (which loaders would read first) and shards
    of an earlier save go, and come back if the write fails.
    """
    directory = os.fspath(directory)
    limit = parse_size(max_shard_size)
    arrays = {name: np.asarray(a) for name, a in tensors.items()}
    plan = plan_shards([(name, a.nbytes) for name, a in arrays.items()], limit)
    names = [shard_name(i, len(plan)) for i in range(1, len(plan) + 1)]
    present = os.listdir(directory) if os.path.isdir(directory) else []
    stale = [n for n in present if (n == SAFE_WEIGHTS_NAME or SHARD_NAME.fullmatch(n)) and n not in names]
    weight_map = {}
    with staged_directory(directory, remove=stale) as stage:
        for name, shard in zip(names, plan):
            write_safetensors(os.path.join(stage, name), {k: arrays[k] for k in shard}, metadata)
            weight_map.update((k, name) for k in shard)
        atomic_write_text(os.path.join(stage, SAFE_INDEX_NAME),
                          index_json(weight_map, sum(a.nbytes for a in arrays.values())))
    return [os.path.join(directory, n) for n in names + [SAFE_INDEX_NAME]]


def read_weights(files: WeightFiles) -> Dict[str, np.ndarray]:
    """The tensors of a located checkpoint, by its format."""
    readers = {"safetensors": read_safetensors, "sharded": read_sharded_safetensors, "bin": read_pytorch_bin,
               "h5": read_tf_h5}
    return readers[files.format](files.path)


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


# A chunked, compressed dataset stores fewer bytes than it holds; deflate cannot pack more than 1032:1.
_MAX_H5_RATIO = 1032


def _h5_member(h5py, group, path: str, kind):
    """group[path], reached through hard links only: soft and external links (and the external or virtual
    datasets _h5_array refuses) would read other objects or other files. ``kind``: h5py.Group or h5py.Dataset."""
    node = group
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"{path!r:.200} is not a plain HDF5 path (empty, '.' or '..' component)")
        link = node.get(part, getlink=True) if isinstance(node, h5py.Group) else None
        if link is None:
            raise ValueError(f"{path!r:.200}, listed in the file's names, is not in the file")
        if not isinstance(link, h5py.HardLink):
            target = getattr(link, "filename", "") + ":" * hasattr(link, "filename") + getattr(link, "path", "")
            raise ValueError(f"{path!r:.200} is a {type(link).__name__} to {target!r:.200}; a weights file holds its own "
                             "groups and datasets, and links are not followed")
        node = node[part]
    if not isinstance(node, kind):
        raise ValueError(f"{path!r:.200} is a {type(node).__name__}, not a {kind.__name__}")
    return node


def _h5_array(dataset, name: str) -> np.ndarray:
    """A weight's numeric dataset, read after checking that its data lies in this file."""
    if dataset.is_virtual or dataset.external:
        raise ValueError(f"{name!r} is a {'virtual' if dataset.is_virtual else 'external-storage'} dataset, whose "
                         "data lies in other files; weights files hold their data themselves")
    if dataset.shape is None or dataset.dtype.kind not in "biuf" or dataset.dtype.shape:
        raise ValueError(f"{name!r} holds {dataset.dtype} {dataset.shape}, not a numeric array")
    problem = shape_problem(dataset.shape)
    stored = dataset.id.get_storage_size()
    if not problem and dataset.nbytes > _MAX_H5_RATIO * stored:
        problem = f"{dataset.nbytes} bytes are declared but {stored} stored"
    if problem:
        raise ValueError(f"{name!r}: {problem}")
    return np.asarray(dataset[()])


def read_tf_h5(path) -> Dict[str, np.ndarray]:
    """{TF weight name without the model prefix: array} of a Keras h5 weights file (the hub's tf_model.h5).

    Every layer in layer_names and every weight in a layer's weight_names must be there; links, external
    or virtual datasets and non-numeric data are refused, naming the entry.
    """
    path = _need_file(path)
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError, RuntimeError) as err:
        raise corrupt_file_error(path, "Keras HDF5 (tf_model.h5)", err) from None
    out = {}
    try:
        with f:
            root = f
            if "layer_names" not in f.attrs and "layer_names0" not in f.attrs and f.get("model_weights", getlink=True):
                root = _h5_member(h5py, f, "model_weights", h5py.Group)  # a whole-model .h5 (model.save) keeps them here
            layer_names = _read_names_attr(root, "layer_names")
            if not layer_names:
                raise ValueError("no layer_names attribute: not a Keras weights file")
            for layer in layer_names:
                group = _h5_member(h5py, root, layer, h5py.Group)
                for weight in _read_names_attr(group, "weight_names"):
                    # "tf_mobile_bert_for_pre_training/mobilebert/embeddings/..." -> "mobilebert/embeddings/..."
                    name = weight if weight.startswith(layer + "/") else weight.split("/", 1)[-1]
                    out[name] = _h5_array(_h5_member(h5py, group, weight, h5py.Dataset), weight)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as err:
        raise corrupt_file_error(path, "Keras HDF5 (tf_model.h5)", err) from None
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
