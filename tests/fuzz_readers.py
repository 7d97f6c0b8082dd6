"""Fuzzing the weight-file readers: every call is memory-safe and ends in arrays or a clear error naming the file.

    python3 -m tests.fuzz_readers --iterations 3000 --seed 1 --workers 2     # the long run
    python3 -m tests.fuzz_readers --seed 1 --case 417 --keep /tmp/case417    # rerun one case, keep its files

Readers: conversion.pytorch_bin.read_pytorch_bin, conversion.formats.read_safetensors,
read_sharded_safetensors and read_tf_h5, MobileBertConfig.from_json_file (config.json) and the
tokenizers built from a vocab.txt (load_vocab and both tokenizer classes).

Case ``i`` of seed ``s`` is built from (s, i) alone: a small valid file of one kind (tensors of a tiny
MobileBertConfig), then mutated (bit flips, truncation, insertion, deletion, header and JSON field
edits) or crafted hostile (views past their storage, overlapping safetensors ranges, huge shapes,
HDF5 links to other files, virtual and external datasets, an index pointing outside its directory).
The reader runs in a worker subprocess (restarted after a crash) under a timeout and a memory limit,
so a crash (a signal), a hang or an allocation bomb is reported with the command that reruns the case.

Pass: the reader returns well-formed data (numeric numpy arrays whose every byte is read; a valid config;
a vocabulary on which both tokenizers agree), equal to the data the file describes where the case knows it, or it
raises ValueError / OSError (FileNotFoundError, ...) whose message names a file of the case. Cases
crafted hostile must end in such an error.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import math
import os
import random
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional

import numpy as np

from conversion.arrays import MAX_ELEMENTS, MAX_RANK

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("bin", "safetensors", "sharded", "h5", "config", "vocab")
MEMORY_LIMIT = 4 << 30  # bytes of address space per worker: an allocation bomb is a MemoryError, not an OOM kill
ALLOWED_ERRORS = (ValueError, OSError)  # FileNotFoundError, PermissionError ... are OSErrors


# ============================================================================ a small pickle writer
# torch.save's pickles, written without torch, so that any field can be set to anything.
class Global(NamedTuple):
    module: str
    name: str


class Call(NamedTuple):  # REDUCE: func(*args)
    func: object
    args: tuple


class PersId(NamedTuple):  # BINPERSID: the unpickler's persistent_load(pid)
    pid: object


class Build(NamedTuple):  # BUILD: set the state of obj
    obj: object
    state: object


def pickle_bytes(obj) -> bytes:
    """Protocol-2 pickle opcodes for ``obj`` (None, bool, int, float, str, bytes, tuple, list, dict, and the
    Global / Call / PersId / Build records above), as torch.save writes them."""
    out = io.BytesIO()
    out.write(b"\x80\x02")

    def emit(x):
        if x is None:
            out.write(b"N")
        elif isinstance(x, bool):
            out.write(b"\x88" if x else b"\x89")
        elif isinstance(x, int):
            raw = x.to_bytes(x.bit_length() // 8 + 1, "little", signed=True)
            out.write((b"\x8a" + bytes([len(raw)])) if len(raw) < 256 else (b"\x8b" + struct.pack("<I", len(raw))))
            out.write(raw)
        elif isinstance(x, float):
            out.write(b"G" + struct.pack(">d", x))
        elif isinstance(x, str):
            raw = x.encode("utf-8", "surrogatepass")
            out.write(b"X" + struct.pack("<I", len(raw)) + raw)
        elif isinstance(x, bytes):
            out.write(b"B" + struct.pack("<I", len(x)) + x)
        elif isinstance(x, Global):
            out.write(b"c" + x.module.encode() + b"\n" + x.name.encode() + b"\n")
        elif isinstance(x, Call):
            emit(x.func)
            emit(tuple(x.args))
            out.write(b"R")
        elif isinstance(x, PersId):
            emit(x.pid)
            out.write(b"Q")
        elif isinstance(x, Build):
            emit(x.obj)
            emit(x.state)
            out.write(b"b")
        elif isinstance(x, tuple):
            out.write(b"(")
            for item in x:
                emit(item)
            out.write(b"t")
        elif isinstance(x, list):
            out.write(b"](")
            for item in x:
                emit(item)
            out.write(b"e")
        elif isinstance(x, dict):
            out.write(b"}(")
            for k, v in x.items():
                emit(k)
                emit(v)
            out.write(b"u")
        else:
            raise TypeError(f"pickle_bytes cannot write {type(x).__name__}")

    emit(obj)
    out.write(b".")
    return out.getvalue()


ORDERED_DICT = Call(Global("collections", "OrderedDict"), ())
STORAGE_CLASSES = {"float32": "FloatStorage", "float16": "HalfStorage", "float64": "DoubleStorage",
                   "int64": "LongStorage", "int32": "IntStorage", "int8": "CharStorage", "uint8": "ByteStorage",
                   "bool": "BoolStorage", "bfloat16": "BFloat16Storage"}


def storage_dtype(cls: str) -> Optional[np.dtype]:
    """numpy dtype of a torch storage class name (bfloat16 through ml_dtypes), None if unknown."""
    from conversion.arrays import BF16

    name = {v: k for k, v in STORAGE_CLASSES.items()}.get(cls)
    if name == "bfloat16":
        return None if BF16 is None else np.dtype(BF16)
    return None if name is None else np.dtype(name)


@dataclass
class BinTensor:
    """One tensor of a pytorch_model.bin: a strided view (in elements) of storage ``key``."""
    key: object
    cls: str  # torch storage class name, e.g. "FloatStorage"
    numel: object  # the storage's element count as the persistent id says it
    offset: object
    size: object
    stride: object
    wrapper: str = "tensor"  # "tensor" or "parameter" (torch._utils._rebuild_parameter around it)

    def pickled(self):
        pid = PersId(("storage", Global("torch", self.cls), self.key, "cpu", self.numel))
        size = tuple(self.size) if isinstance(self.size, list) else self.size
        stride = tuple(self.stride) if isinstance(self.stride, list) else self.stride
        t = Call(Global("torch._utils", "_rebuild_tensor_v2"), (pid, self.offset, size, stride, False, ORDERED_DICT))
        return Call(Global("torch._utils", "_rebuild_parameter"), (t, False, ORDERED_DICT)) if self.wrapper == "parameter" else t


@dataclass
class BinSpec:
    """A pytorch_model.bin as torch.save writes it: archive/data.pkl + archive/data/<key> records."""
    tensors: Dict[str, BinTensor]
    records: Dict[str, bytes]  # storage key -> raw little-endian bytes
    state: object = None  # the pickled object; None: {name: tensor} of ``tensors``
    byteorder: str = "little"  # of the records, as archive/byteorder says

    def write(self, path: Path, pkl: Optional[bytes] = None) -> None:
        state = self.state if self.state is not None else {n: t.pickled() for n, t in self.tensors.items()}
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", pkl if pkl is not None else pickle_bytes(state))
            z.writestr("archive/byteorder", self.byteorder)
            for key, raw in self.records.items():
                z.writestr(f"archive/data/{key}", raw)
            z.writestr("archive/version", "3\n")


def bin_spec(arrays: Dict[str, np.ndarray]) -> BinSpec:
    """Each array in a storage of its own, except that the first 2-D one is also viewed transposed and as a
    row slice at an offset (torch.save writes views of one storage so)."""
    tensors, records = {}, {}
    for i, (name, a) in enumerate(arrays.items()):
        key = str(i)
        a = np.array(a, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
        records[key] = a.astype(a.dtype.newbyteorder("<")).tobytes()
        strides = [s // a.itemsize for s in a.strides]
        tensors[name] = BinTensor(key, STORAGE_CLASSES[a.dtype.name], a.size, 0, list(a.shape), strides)
    two_d = next((n for n, a in arrays.items() if a.ndim == 2 and a.shape[0] > 1), None)
    if two_d:
        t = tensors[two_d]
        rows, cols = arrays[two_d].shape
        tensors[two_d + ".T"] = BinTensor(t.key, t.cls, t.numel, 0, [cols, rows], [1, cols], wrapper="parameter")
        tensors[two_d + ".row1"] = BinTensor(t.key, t.cls, t.numel, cols, [cols], [1])
    return BinSpec(tensors, records)


def bin_expected(spec: BinSpec) -> Optional[Dict[str, tuple]]:
    """{name: (dtype, shape, sha256 of the bytes)} the reader must return for ``spec``, computed element by
    element from the storages; None when some view does not lie inside its storage (the read must fail)."""
    out = {}
    for name, t in spec.tensors.items():
        dtype = storage_dtype(t.cls)
        raw = spec.records.get(t.key) if isinstance(t.key, str) else None
        ints = [t.offset, t.numel, *(t.size if isinstance(t.size, list) else [None]),
                *(t.stride if isinstance(t.stride, list) else [None])]
        if (dtype is None or raw is None or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints)
                or len(t.size) != len(t.stride) or len(raw) != t.numel * dtype.itemsize or math.prod(t.size) > t.numel
                or len(t.size) > MAX_RANK or math.prod(n for n in t.size if n) > MAX_ELEMENTS):  # the readers' limits
            return None
        storage = np.frombuffer(raw, dtype.newbyteorder("<"))
        values = []  # (itertools.product would first list each range: an empty view may have huge dimensions)
        for index in itertools.product(*(range(n) for n in t.size)) if math.prod(t.size) else ():
            at = t.offset + sum(i * s for i, s in zip(index, t.stride))
            if at >= len(storage):
                return None
            values.append(storage[at])
        if not values and t.offset > len(storage):
            return None
        array = np.array(values, dtype).reshape(t.size)
        out[name] = (dtype.name, tuple(t.size), hashlib.sha256(array.tobytes()).hexdigest())
    return out


# ============================================================================ valid files
def tiny_arrays(rng: random.Random) -> Dict[str, np.ndarray]:
    """A few small tensors named as a tiny MobileBertConfig's weights, plus the dtypes and shapes files hold:
    float16, int64, bool, a 0-d and an empty tensor."""
    from mobilebert_common.weights import entries
    from tests.harness.models import tiny_config

    config = tiny_config()
    small = [e for e in entries(config, "MobileBertForMaskedLM") if e.transform != "tie" and math.prod(e.shape) <= 600]
    nrng = np.random.default_rng(rng.randrange(2**32))
    out = {e.pt_name: nrng.standard_normal(e.shape).astype(np.float32) for e in rng.sample(small, 4)}
    out["extra.half"] = nrng.standard_normal((3, 5)).astype(np.float16)
    out["extra.ids"] = np.arange(7, dtype=np.int64)
    out["extra.mask"] = nrng.random((2, 3)) > 0.5
    out["extra.scalar"] = np.array(2.5, np.float32)
    out["extra.empty"] = np.zeros((0, 4), np.float32)
    return out


def tf_names(arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The arrays under Keras h5 names: layer "mobilebert" or "predictions___cls", ":0" suffixes."""
    out = {}
    for name, a in arrays.items():
        layer = "predictions___cls" if name.startswith("cls.") else "mobilebert"
        if a.dtype == np.bool_:
            continue  # Keras weights are numbers
        out[f"{layer}/{name.replace('.', '/')}:0"] = a
    return out


def config_text(rng: random.Random) -> str:
    from tests.harness.models import VARIANTS, tiny_config

    return tiny_config(rng.choice(sorted(VARIANTS))).to_json_string()


def vocab_text(rng: random.Random) -> str:
    words = ["the", "a", "city", "river", "paris", "##s", "##ing", "é", "日本", "[unused0]"]
    rng.shuffle(words)
    return "".join(t + "\n" for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])


# ============================================================================ mutations
HOSTILE_INTS = [-1, -(2**63), 0, 1, 2, 3, 7, 255, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, 10**30]
HOSTILE_VALUES = HOSTILE_INTS + [None, True, False, 1.5, float("nan"), "1", "", "x" * 300, [], [1, 2], {}, {"a": 1}]


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """One random byte-level damage: bit flips, special bytes, truncation, insertion, deletion, duplication."""
    data = bytearray(data)
    how = rng.choice(["flip", "flip_head", "special", "truncate", "insert", "delete", "duplicate"])
    n = len(data)
    if n == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    if how in ("flip", "flip_head"):
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(min(n, 256) if how == "flip_head" else n)
            data[i] ^= 1 << rng.randrange(8)
    elif how == "special":
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(n)
            data[i:i + 1] = bytes([rng.choice([0, 0xFF, 0x7F, 0x80])])
    elif how == "truncate":
        del data[rng.randrange(n):]
    elif how == "insert":
        i = rng.randrange(n + 1)
        data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif how == "delete":
        i = rng.randrange(n)
        del data[i:i + rng.randint(1, 64)]
    else:
        i = rng.randrange(n)
        j = rng.randrange(n)
        data[j:j] = data[i:i + rng.randint(1, 256)]
    return bytes(data)


def mutate_json_value(value, rng: random.Random):
    """``value`` (parsed JSON) with one field somewhere replaced, removed or added."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        how = rng.random()
        if how < 0.5:
            value[key] = mutate_json_value(value[key], rng)
        elif how < 0.7:
            del value[key]
        else:
            value[key] = rng.choice(HOSTILE_VALUES)
        return value
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        value[i] = mutate_json_value(value[i], rng)
        return value
    return rng.choice(HOSTILE_VALUES)


def json_text(value) -> str:
    return json.dumps(value, allow_nan=True)


def mutate_json_text(text: str, rng: random.Random) -> bytes:
    """JSON damage: a field edit, a hostile document (deep nesting, a 5000-digit integer, not an object,
    invalid UTF-8, binary junk, empty), or bytes damage."""
    how = rng.random()
    if how < 0.55:
        return json_text(mutate_json_value(json.loads(text), rng)).encode()
    if how < 0.75:
        return rng.choice([b"[" * 100000, b'{"a":' * 50000, b"1" * 5000, b"[]", b'"text"', b"null", b"\xff\xfe{}",
                           b"", b"\x00" * 64, bytes(range(256)), text.encode()[: len(text) // 2],
                           text.replace("}", ', "vocab_size": ' + "9" * 5000 + "}", 1).encode()])
    return mutate_bytes(text.encode(), rng)


# ---------------------------------------------------------------------------- per kind
class Case(NamedTuple):
    kind: str
    how: str  # what was done, for the report
    files: List[Path]  # every file of the case (messages must name one)
    target: Path  # the file the reader is given
    must_fail: bool  # crafted hostile: only a clear error passes
    must_load: bool  # a valid file: only a correct load passes
    expected: Optional[Dict[str, tuple]]  # {name: (dtype, shape, sha256)} a load must give, when known


def build_bin(d: Path, rng: random.Random) -> Case:
    path = d / "pytorch_model.bin"
    spec = bin_spec(tiny_arrays(rng))
    how = rng.choice(["valid", "bytes", "pickle_bytes", "view", "view", "view", "structure", "memo"])
    if how == "valid":
        spec.write(path)
        return Case("bin", how, [path], path, False, True, bin_expected(spec))
    if how == "bytes":
        spec.write(path)
        path.write_bytes(mutate_bytes(path.read_bytes(), rng))
        return Case("bin", how, [path], path, False, False, None)
    if how == "pickle_bytes":  # damage inside data.pkl, the zip around it intact (CRCs right)
        state = {n: t.pickled() for n, t in spec.tensors.items()}
        spec.write(path, pkl=mutate_bytes(pickle_bytes(state), rng))
        return Case("bin", how, [path], path, False, False, None)
    if how == "memo":  # LONG_BINPUT of a huge index: the C unpickler would size its memo to it
        spec.write(path, pkl=b"\x80\x02}r" + struct.pack("<I", rng.choice([2**31, 2**32 - 1, 10**9, 5])) + b".")
        return Case("bin", how, [path], path, True, False, None)
    if how == "view":  # one field of one tensor's view or storage record set to a hostile value
        name = rng.choice(list(spec.tensors))
        t = spec.tensors[name]
        fieldname = rng.choice(["offset", "size", "stride", "numel", "key", "cls", "size_dim", "stride_dim", "record"])
        if fieldname in ("size_dim", "stride_dim") and isinstance(getattr(t, fieldname[:-4]), list) and getattr(t, fieldname[:-4]):
            values = getattr(t, fieldname[:-4])
            values[rng.randrange(len(values))] = rng.choice(HOSTILE_INTS)
        elif fieldname == "record":  # the storage bytes shorter or longer than the persistent id says
            spec.records[t.key] = spec.records[t.key][: rng.randrange(len(spec.records[t.key]) + 1)] + \
                b"\x00" * rng.choice([0, 0, 1, 3, 4, 8])
        elif fieldname == "cls":
            t.cls = rng.choice(list(STORAGE_CLASSES.values()) + ["UntypedStorage", "Tensor"])
        elif fieldname == "key":
            t.key = rng.choice(["99", "../0", "", "0", "1", 0, None, "data.pkl"])
        else:
            setattr(t, fieldname.replace("_dim", ""), rng.choice(HOSTILE_VALUES))
        spec.write(path)
        expected = bin_expected(spec)
        return Case("bin", f"view:{fieldname}", [path], path, expected is None, False, expected)
    # structure: the pickled object itself is not a plain state dict of tensors
    tensor = next(iter(spec.tensors.values())).pickled()
    choices = {
        "not_a_dict": [tensor],
        "int_key": {1: tensor},
        "nested_non_tensor": {"a": tensor, "b": {"c": tensor}},
        "string_value": {"a": "weights"},
        "builtins_global": {"a": Call(Global("builtins", "print"), ("pwned",))},
        "os_system": {"a": Call(Global("os", "system"), ("true",))},
        "storage_as_tensor": {"a": PersId(("storage", Global("torch", "FloatStorage"), "0", "cpu", 4))},
        "bad_pid": {"a": Call(Global("torch._utils", "_rebuild_tensor_v2"), (PersId(("storage", "x")), 0, (1,), (1,)))},
        "pid_not_tuple": {"a": Call(Global("torch._utils", "_rebuild_tensor_v2"), (PersId("0"), 0, (1,), (1,)))},
        "build_storage_class": {"a": Build(Global("torch", "FloatStorage"), {"dtype": "O"})},
        "build_tensor": {"a": Build(tensor, (None, {"storage": None}))},
        "build_ordered_dict": Build(Call(Global("collections", "OrderedDict"), ()), {"x": 1}),
        "parameter_of_int": {"a": Call(Global("torch._utils", "_rebuild_parameter"), (3, False, ORDERED_DICT))},
        "rebuild_no_args": {"a": Call(Global("torch._utils", "_rebuild_tensor_v2"), ())},
        "tensor_as_storage": {"a": Call(Global("torch._utils", "_rebuild_tensor_v2"), (tensor, 0, (1,), (1,)))},
        "state_dict_wrapper": {"state_dict": {n: t.pickled() for n, t in spec.tensors.items()}, "epoch": 3},
        "deep_list": [[[[[[[[[[[]]]]]]]]]]] * 1000,
    }
    what = rng.choice(sorted(choices))
    spec.state = choices[what]
    spec.write(path)
    if what == "state_dict_wrapper":
        return Case("bin", f"structure:{what}", [path], path, False, True, bin_expected(spec))
    # BUILD on the OrderedDict only sets an attribute of it: harmless, an empty state dict.
    return Case("bin", f"structure:{what}", [path], path, what != "build_ordered_dict", False, None)


def safetensors_bytes(header: dict, data: bytes, length: Optional[int] = None) -> bytes:
    raw = json_text(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def split_safetensors(raw: bytes):
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def build_safetensors(d: Path, rng: random.Random) -> Case:
    from conversion.formats import write_safetensors

    path = d / "model.safetensors"
    arrays = {k: v for k, v in tiny_arrays(rng).items()}
    write_safetensors(path, arrays, {"format": "pt"})
    how = rng.choice(["valid", "bytes", "bytes", "header", "header", "header", "crafted"])
    if how == "valid":
        expected = {k: (v.dtype.name, v.shape, hashlib.sha256(v.tobytes()).hexdigest()) for k, v in arrays.items()}
        return Case("safetensors", how, [path], path, False, True, expected)
    if how == "bytes":
        path.write_bytes(mutate_bytes(path.read_bytes(), rng))
        return Case("safetensors", how, [path], path, False, False, None)
    header, data = split_safetensors(path.read_bytes())
    if how == "header":
        path.write_bytes(safetensors_bytes(mutate_json_value(header, rng), data))
        return Case("safetensors", how, [path], path, False, False, None)
    names = [k for k in header if k != "__metadata__" and header[k]["data_offsets"][1] > header[k]["data_offsets"][0]]
    a, b = rng.sample(names, 2)
    what = rng.choice(["overlap", "huge_shape", "shape_overflow", "past_end", "reversed", "header_length",
                       "negative", "float_offsets", "bool_shape", "metadata_list", "gap"])
    if what == "overlap":  # b's range moved onto a's
        header[b]["data_offsets"] = [header[a]["data_offsets"][0],
                                     header[a]["data_offsets"][0] + header[b]["data_offsets"][1] - header[b]["data_offsets"][0]]
    elif what == "huge_shape":
        header[a]["shape"] = [2**40, 2**40]
    elif what == "shape_overflow":  # int64 product wraps to 0: a check in numpy's int64 would pass it
        header[a]["shape"], header[a]["data_offsets"] = [2**32, 2**32], [header[a]["data_offsets"][0]] * 2
    elif what == "past_end":
        header[a]["data_offsets"][1] += 1 << 30
    elif what == "reversed":
        header[a]["data_offsets"].reverse()
    elif what == "header_length":
        path.write_bytes(safetensors_bytes(header, data, rng.choice([0, 1, 2**62, 2**64 - 1, len(data) * 4])))
        return Case("safetensors", f"crafted:{what}", [path], path, True, False, None)
    elif what == "negative":
        header[a]["data_offsets"][0] = -8
    elif what == "float_offsets":
        header[a]["data_offsets"] = [float(x) for x in header[a]["data_offsets"]]
    elif what == "bool_shape":
        header[a]["shape"] = [True] * max(1, len(header[a]["shape"]))
    elif what == "metadata_list":
        header["__metadata__"] = ["format", "pt"]
    else:  # a gap: every tensor after a moved back by 4 bytes, the data section 4 bytes longer
        data = data + b"\x00" * 4
        for k in header:
            if k != "__metadata__" and header[k]["data_offsets"][0] >= header[a]["data_offsets"][1]:
                header[k]["data_offsets"] = [x + 4 for x in header[k]["data_offsets"]]
    path.write_bytes(safetensors_bytes(header, data))
    return Case("safetensors", f"crafted:{what}", [path], path, True, False, None)


def build_sharded(d: Path, rng: random.Random) -> Case:
    from conversion.formats import write_sharded_safetensors

    arrays = tiny_arrays(rng)
    files = [Path(p) for p in write_sharded_safetensors(d, arrays, max_shard_size=1024)]
    index = d / "model.safetensors.index.json"
    how = rng.choice(["valid", "index", "index", "shard", "crafted"])
    if how == "valid":
        expected = {k: (v.dtype.name, v.shape, hashlib.sha256(v.tobytes()).hexdigest()) for k, v in arrays.items()}
        return Case("sharded", how, files, index, False, True, expected)
    if how == "index":
        index.write_bytes(mutate_json_text(index.read_text(), rng))
        return Case("sharded", how, files, index, False, False, None)
    if how == "shard":
        shard = rng.choice(files[:-1])
        shard.write_bytes(mutate_bytes(shard.read_bytes(), rng))
        return Case("sharded", how, files, index, False, False, None)
    value = json.loads(index.read_text())
    name = rng.choice(sorted(value["weight_map"]))
    (d.parent / "outside.safetensors").write_bytes(files[0].read_bytes())  # what "../" would reach
    what = rng.choice(["../outside.safetensors", str(d.parent / "outside.safetensors"), "", ".", "..",
                       "a\x00b.safetensors", "missing.safetensors", "sub/model.safetensors", 3, None, ["x"]])
    value["weight_map"][name] = what
    index.write_text(json_text(value))
    return Case("sharded", f"crafted:{what!r}", files, index, True, False, None)


H5_CRAFTED = ("external_link_layer", "external_link_weight", "soft_link", "soft_link_layer", "virtual_dataset",
              "external_storage", "string_dataset", "group_not_dataset", "missing_layer", "missing_weight",
              "unwritten_huge", "compound", "layer_names_ints", "layer_names_scalar", "dot_path", "null_dataspace")


def craft_h5(path: Path, what: str) -> None:
    """Make the valid tf_model.h5 at ``path`` hostile in one way (H5_CRAFTED); files it points to go beside its folder."""
    import h5py

    other = path.parent.parent / "other.h5"  # a file the crafted links point to
    with h5py.File(other, "w") as f:
        f["secret"] = np.arange(4, dtype=np.float32)
        f.create_group("layer")
    with h5py.File(path, "a") as f:
        layer = f["mobilebert"]
        inner = layer.attrs["weight_names"][0].decode()  # the first weight's dataset path inside its layer group
        if what == "external_link_layer":
            del f["mobilebert"]
            f["mobilebert"] = h5py.ExternalLink(str(other), "/layer")
        elif what == "external_link_weight":
            del layer[inner]
            layer[inner] = h5py.ExternalLink(str(other), "/secret")
        elif what == "soft_link":
            del layer[inner]
            layer[inner] = h5py.SoftLink("/predictions___cls")
        elif what == "soft_link_layer":
            f.move("mobilebert", "moved")
            f["mobilebert"] = h5py.SoftLink("/moved")
        elif what == "virtual_dataset":
            vlayout = h5py.VirtualLayout(shape=(4,), dtype="f4")
            vlayout[:] = h5py.VirtualSource(str(other), "secret", shape=(4,))
            del layer[inner]
            layer.create_virtual_dataset(inner, vlayout)
        elif what == "external_storage":
            raw = path.parent.parent / "raw.bin"
            raw.write_bytes(np.arange(4, dtype=np.float32).tobytes())
            del layer[inner]
            layer.create_dataset(inner, shape=(4,), dtype="f4", external=[(str(raw), 0, 16)])
        elif what == "string_dataset":
            del layer[inner]
            layer[inner] = np.array([b"not", b"numbers"])
        elif what == "group_not_dataset":
            del layer[inner]
            layer.create_group(inner)
        elif what == "missing_layer":
            f.attrs["layer_names"] = np.array(list(f.attrs["layer_names"]) + [b"nowhere"])
        elif what == "missing_weight":
            del layer[inner]
        elif what == "unwritten_huge":  # a chunked dataset of 4 TiB of fill value, no data stored
            del layer[inner]
            layer.create_dataset(inner, shape=(2**20, 2**20), dtype="f4", chunks=(64, 64))
        elif what == "compound":
            del layer[inner]
            layer[inner] = np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])
        elif what == "layer_names_ints":
            f.attrs["layer_names"] = np.arange(3)
        elif what == "layer_names_scalar":
            f.attrs["layer_names"] = b"mobilebert"
        elif what == "dot_path":
            names = [n.decode() for n in layer.attrs["weight_names"]]
            layer.attrs["weight_names"] = np.array([("./" + names[0]).encode()] + [n.encode() for n in names[1:]])
        elif what == "null_dataspace":
            del layer[inner]
            layer.create_dataset(inner, data=h5py.Empty("f4"))
        else:
            raise ValueError(f"unknown crafted h5 case {what!r}; known: {', '.join(H5_CRAFTED)}")


def build_h5(d: Path, rng: random.Random) -> Case:
    from conversion.formats import write_tf_h5

    path = d / "tf_model.h5"
    arrays = tf_names(tiny_arrays(rng))
    write_tf_h5(path, arrays, model_name="tf_mobile_bert_for_masked_lm")
    how = rng.choice(["valid", "bytes", "bytes", "crafted", "crafted"])
    if how == "valid":
        expected = {k: (v.dtype.name, v.shape, hashlib.sha256(v.tobytes()).hexdigest()) for k, v in arrays.items()}
        return Case("h5", how, [path], path, False, True, expected)
    if how == "bytes":
        path.write_bytes(mutate_bytes(path.read_bytes(), rng))
        return Case("h5", how, [path], path, False, False, None)
    what = rng.choice(H5_CRAFTED)
    craft_h5(path, what)
    return Case("h5", f"crafted:{what}", [path], path, True, False, None)


def build_config(d: Path, rng: random.Random) -> Case:
    path = d / "config.json"
    text = config_text(rng)
    how = rng.choice(["valid", "json", "json", "json", "bytes", "field"])
    if how == "valid":
        path.write_text(text)
    elif how == "field":  # one known field set to a hostile value; labels derived from num_labels alone
        values = json.loads(text)
        key = rng.choice(["num_labels", *sorted(values)])  # num_labels more often: labels are built from it
        values[key] = rng.choice(HOSTILE_VALUES)
        if key == "num_labels":
            values.pop("id2label"), values.pop("label2id")
        how = f"field:{key}"
        path.write_text(json_text(values))
    elif how == "json":
        path.write_bytes(mutate_json_text(text, rng))
    else:
        path.write_bytes(mutate_bytes(text.encode(), rng))
    return Case("config", how, [path], path, False, how == "valid", None)


def build_vocab(d: Path, rng: random.Random) -> Case:
    path = d / "vocab.txt"
    text = vocab_text(rng)
    how = rng.choice(["valid", "bytes", "bytes", "crafted"])
    if how == "valid":
        path.write_text(text)
        return Case("vocab", how, [path], path, False, True, None)
    if how == "bytes":
        path.write_bytes(mutate_bytes(text.encode(), rng))
        return Case("vocab", how, [path], path, False, False, None)
    what = rng.choice(["empty", "newline_only", "invalid_utf8", "nul", "binary", "no_mask", "no_unk", "crlf",
                       "long_line", "duplicates", "surrogate", "bom"])
    raw = {"empty": b"", "newline_only": b"\n", "invalid_utf8": text.encode() + b"\xc3\x28\n", "nul": b"\x00" * 100,
           "binary": bytes(range(256)) * 4, "no_mask": text.replace("[MASK]\n", "").encode(),
           "no_unk": text.replace("[UNK]\n", "").encode(), "crlf": text.replace("\n", "\r\n").encode(),
           "long_line": (text + "x" * 100000 + "\n").encode(), "duplicates": (text + text).encode(),
           "surrogate": text.encode() + b"\xed\xa0\x80\n", "bom": b"\xef\xbb\xbf" + text.encode()}[what]
    path.write_bytes(raw)
    return Case("vocab", f"crafted:{what}", [path], path,
                what not in ("crlf", "long_line", "duplicates", "bom"), what in ("crlf", "long_line", "duplicates"), None)


BUILDERS: Dict[str, Callable[[Path, random.Random], Case]] = {
    "bin": build_bin, "safetensors": build_safetensors, "sharded": build_sharded, "h5": build_h5,
    "config": build_config, "vocab": build_vocab}


def build_case(seed: int, index: int, directory: Path) -> Case:
    """Case ``index`` of ``seed`` in ``directory`` (an empty folder): the same files on every run."""
    rng = random.Random(f"{seed}/{index}")
    kind = KINDS[index % len(KINDS)]
    directory.mkdir(parents=True, exist_ok=True)
    return BUILDERS[kind](directory, rng)


# ============================================================================ the worker: one reader call per request
def _summary_of_arrays(arrays) -> dict:
    """Checks that a reader's {name: array} is well formed, reading every byte; {name: (dtype, shape, sha256)}."""
    from conversion.arrays import BF16

    if not isinstance(arrays, dict):
        raise AssertionError(f"the reader returned a {type(arrays).__name__}, not a dict")
    out = {}
    for name, a in arrays.items():
        if not isinstance(name, str) or not isinstance(a, np.ndarray):
            raise AssertionError(f"entry {name!r} is a {type(a).__name__}, not a named numpy array")
        if a.dtype.kind not in "biuf" and not (BF16 is not None and a.dtype == BF16):
            raise AssertionError(f"{name!r} has dtype {a.dtype}, not a number type")
        if a.size != math.prod(a.shape) or a.nbytes != a.size * a.itemsize:
            raise AssertionError(f"{name!r}: size {a.size} / {a.nbytes} bytes disagree with shape {a.shape}")
        raw = np.ascontiguousarray(a).tobytes()  # touches every element: a bad view crashes here, in the worker
        out[name] = [a.dtype.name, list(a.shape), hashlib.sha256(raw).hexdigest()]
    return out


def _read(kind: str, path: str):
    if kind == "bin":
        from conversion.pytorch_bin import read_pytorch_bin

        return _summary_of_arrays(read_pytorch_bin(path))
    if kind in ("safetensors", "sharded", "h5"):
        from conversion import formats

        reader = {"safetensors": formats.read_safetensors, "sharded": formats.read_sharded_safetensors,
                  "h5": formats.read_tf_h5}[kind]
        return _summary_of_arrays(reader(path))
    if kind == "config":
        import warnings

        from mobilebert_common import MobileBertConfig

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a contradictory label2id is a warning by design
            config = MobileBertConfig.from_json_file(path)
        config.validate()
        return {"vocab_size": config.vocab_size, "json": len(config.to_json_string())}
    if kind == "vocab":
        from mobilebert_common import MobileBertTokenizer, MobileBertTokenizerFast
        from mobilebert_common.tokenization_files import load_vocab

        vocab = load_vocab(path)
        if not vocab or not all(isinstance(t, str) and isinstance(i, int) for t, i in vocab.items()):
            raise AssertionError("load_vocab returned an empty or malformed vocabulary")
        slow, fast = MobileBertTokenizer(vocab_file=path), MobileBertTokenizerFast(vocab_file=path)
        ids = [slow("paris [MASK] city")["input_ids"], fast("paris [MASK] city")["input_ids"]]
        if ids[0] != ids[1]:
            raise AssertionError(f"the two tokenizers disagree: {ids}")
        return {"size": len(vocab), "ids": ids[0]}
    if kind == "selftest-crash":  # the harness's own tests: a reader that crashes, one that hangs
        import ctypes

        ctypes.string_at(0)
    if kind == "selftest-hang":
        time.sleep(3600)
    raise ValueError(f"unknown reader kind {kind!r}")


def worker_main() -> None:
    """Requests on stdin, one JSON line each ({"kind", "path"}); one JSON line of result each on stdout."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    out = sys.stdout
    sys.stdout = sys.stderr  # library chatter must not mix with the results
    import conversion.formats  # noqa: F401  (imported once, before the first case's clock starts)
    import mobilebert_common.tokenization_fast  # noqa: F401

    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = {"status": "ok", "data": _read(request["kind"], request["path"])}
        except AssertionError as err:
            result = {"status": "malformed", "type": "AssertionError", "message": str(err)}
        except BaseException as err:  # noqa: B902  (reported and judged by the parent, MemoryError included)
            result = {"status": "error", "type": type(err).__name__, "message": str(err)[:2000],
                      "allowed": isinstance(err, ALLOWED_ERRORS)}
        out.write(json.dumps(result) + "\n")
        out.flush()


class Worker:
    """One worker subprocess; ``call`` restarts it after a crash or a hang."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.proc: Optional[subprocess.Popen] = None
        self.log = tempfile.TemporaryFile()
        self.starts = 0

    def start(self) -> None:
        self.log.seek(0)
        self.log.truncate()
        # One thread each: thread pools reserve address space per core, which the memory limit counts.
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz_readers", "--worker"], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)
        self.starts += 1
        ready = self._line(120)
        if ready is None:
            raise RuntimeError(f"the fuzz worker did not start: {self.stderr_tail()}")

    def _line(self, timeout: float) -> Optional[str]:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else None

    def stderr_tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-600:]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def call(self, kind: str, path: Path) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        started = time.monotonic()
        try:
            self.proc.stdin.write(json.dumps({"kind": kind, "path": str(path)}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self._line(self.timeout)
        elapsed = time.monotonic() - started
        if line:
            result = json.loads(line)
            result["seconds"] = elapsed
            return result
        if line is None:  # nothing within the timeout: a hang
            self.stop()
            return {"status": "hang", "message": f"no answer within {self.timeout:.0f} s", "seconds": elapsed}
        code = self.proc.wait()
        tail = self.stderr_tail()
        self.proc = None
        return {"status": "crash", "message": f"worker died with exit status {code}"
                + (f" (signal {-code})" if code < 0 else "") + f"; stderr: {tail}", "seconds": elapsed}


# ============================================================================ judging
def judge(case: Case, result: dict) -> Optional[str]:
    """None when the result passes, else why not."""
    status = result["status"]
    if status in ("crash", "hang", "malformed"):
        return f"{status}: {result['message']}"
    if status == "error":
        if case.must_load:
            return f"a valid file was refused: {result['type']}: {result['message'][:300]}"
        if not result["allowed"]:
            return f"unexpected exception {result['type']}: {result['message'][:300]}"
        if not any(str(p) in result["message"] for p in case.files) and str(case.target.parent) not in result["message"]:
            return f"{result['type']} does not name the file: {result['message'][:300]}"
        return None
    if case.must_fail:
        return "a crafted hostile file was loaded instead of refused"
    if case.expected is not None:
        got = {k: (v[0], tuple(v[1]), v[2]) for k, v in result["data"].items()}
        want = {k: (v[0], tuple(v[1]), v[2]) for k, v in case.expected.items()}
        if got != want:
            wrong = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
            return f"loaded data differs from the file's tensors: {', '.join(wrong[:5])}"
    return None


@dataclass
class Report:
    seed: int
    cases: int = 0
    failures: List[str] = field(default_factory=list)
    by_kind: Dict[str, Dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    restarts: int = 0

    def add(self, index: int, case: Case, result: dict, problem: Optional[str]) -> None:
        self.cases += 1
        counts = self.by_kind.setdefault(case.kind, {"cases": 0, "loaded": 0, "refused": 0, "failed": 0})
        counts["cases"] += 1
        counts["loaded" if result["status"] == "ok" else "refused"] += problem is None
        counts["failed"] += problem is not None
        if problem:
            self.failures.append(f"case {index} ({case.kind}, {case.how}): {problem}\n"
                                 f"    rerun: python3 -m tests.fuzz_readers --seed {self.seed} --case {index} --keep /tmp/fuzz-case")

    def text(self) -> str:
        lines = [f"{self.cases} cases, seed {self.seed}, {self.seconds:.1f} s, {len(self.failures)} failure(s), "
                 f"{self.restarts} worker restart(s)"]
        for kind in KINDS:
            if kind in self.by_kind:
                c = self.by_kind[kind]
                lines.append(f"  {kind:12s} {c['cases']:5d} cases: {c['loaded']:5d} loaded, {c['refused']:5d} refused "
                             f"with a clear error, {c['failed']} failed")
        return "\n".join(lines + self.failures)


def run_fuzz(iterations: int, seed: int, workers: int = 1, timeout: float = 20.0, start: int = 0,
             keep: Optional[Path] = None, progress: bool = False) -> Report:
    """Cases start .. start+iterations-1 of ``seed`` on ``workers`` worker processes."""
    report = Report(seed)
    indices = iter(range(start, start + iterations))
    lock = threading.Lock()
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="fuzz-readers-")) if keep is None else keep
    pool = [Worker(timeout) for _ in range(max(1, workers))]

    def loop(worker: Worker):
        while True:
            with lock:
                index = next(indices, None)
            if index is None:
                return
            directory = root / f"case{index}" / "files"
            try:
                case = build_case(seed, index, directory)
            except Exception as err:  # a bug of this harness: reported, and the run goes on
                case = Case(KINDS[index % len(KINDS)], "building the case", [], directory, False, False, None)
                result, problem = {"status": "harness"}, f"the harness failed: {type(err).__name__}: {err}"
            else:
                result = worker.call(case.kind, case.target)
                problem = judge(case, result)
            with lock:
                report.add(index, case, result, problem)
                if progress and report.cases % 100 == 0:
                    print(f"{report.cases} cases, {len(report.failures)} failure(s)", file=sys.stderr, flush=True)
            if keep is None:
                shutil.rmtree(directory.parent, ignore_errors=True)

    try:
        threads = [threading.Thread(target=loop, args=(w,)) for w in pool]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for w in pool:
            w.stop()
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    report.seconds = time.monotonic() - began
    report.restarts = sum(w.starts for w in pool) - len(pool)
    return report


def read_isolated(kind: str, path, timeout: float = 60.0) -> dict:
    """One reader call in a fresh worker: {"status": "ok" | "error" | "crash" | "hang" | "malformed", ...}."""
    worker = Worker(timeout)
    try:
        return worker.call(kind, Path(path))
    finally:
        worker.stop()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m tests.fuzz_readers", description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=1000, help="number of cases (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--case", type=int, help="run only this case index (with --keep, its files stay)")
    p.add_argument("--workers", type=int, default=1, help="reader processes in parallel (default 1)")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds one reader call may take (default 20)")
    p.add_argument("--keep", type=Path, help="keep the case files in this directory")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker_main()
        return 0
    start, iterations = (args.case, 1) if args.case is not None else (0, args.iterations)
    report = run_fuzz(iterations, args.seed, args.workers, args.timeout, start, args.keep, progress=args.case is None)
    print(report.text())
    if args.keep:
        print(f"case files kept in {args.keep}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
