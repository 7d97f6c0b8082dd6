"""Where the weights of a checkpoint are: one locator for both frameworks and the converter.

    locate_weights(source, kind, hub_kwargs=None, resolve=None, other_hint="") -> WeightFiles
    weights_format(path) -> "safetensors" | "sharded" | "bin" | "h5"   (a file given directly, by its name)
    read_index(path) -> {tensor name: shard file name}                  (model.safetensors.index.json)
    parse_size("50MB") -> 50_000_000;  plan_shards([(name, nbytes)], limit) -> [[names of shard 1], ...]
    shard_name(i, n) -> "model-0000i-of-0000n.safetensors";  index_json(weight_map, total_size) -> str
    corrupt_file_error(path, kind, why) -> ValueError, the one wording for a damaged weights file

``source`` is a directory, a single weights file, or a hub repo id. PyTorch weights are searched
in the hub's order of preference (model.safetensors, then the sharded index, then
pytorch_model.bin); a sharded checkpoint of a hub repo has its shards downloaded next to the
index. When the other framework's weights are there instead, the error says so with the
caller's ``other_hint`` ("pass from_tf=True to convert it"). Framework-free: no torch, no
tensorflow, no numpy.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

TF_WEIGHTS_NAME = "tf_model.h5"
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_INDEX_NAME = "model.safetensors.index.json"
BIN_WEIGHTS_NAME = "pytorch_model.bin"
PT_WEIGHTS_NAMES = (SAFE_WEIGHTS_NAME, SAFE_INDEX_NAME, BIN_WEIGHTS_NAME)  # the order they are looked for
SHARD_NAME = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")

# file name ending -> format, for a weights file given directly
_EXTENSIONS = ((".safetensors.index.json", "sharded"), (".index.json", "sharded"), (".safetensors", "safetensors"),
               (".bin", "bin"), (".pt", "bin"), (".pth", "bin"), (".h5", "h5"))
PT_FORMATS = ("safetensors", "sharded", "bin")


@dataclass(frozen=True)
class WeightFiles:
    format: str  # "safetensors" | "sharded" | "bin" | "h5"
    path: str  # the weights file; for "sharded" the index
    shards: Tuple[str, ...] = ()  # "sharded": local paths of the shard files, in name order

    @property
    def kind(self) -> str:
        """"tf" for tf_model.h5, else "pt"."""
        return "tf" if self.format == "h5" else "pt"


def corrupt_file_error(path: str, kind: str, why) -> ValueError:
    """The error for a weights file that exists but cannot be read (truncated, damaged, another format)."""
    return ValueError(f"{path} is not a valid {kind} file (truncated or corrupt?): {why}")


def weights_format(path: str) -> str:
    """The format of a weights file named directly, from its name; ValueError listing the known endings."""
    name = os.path.basename(os.fspath(path))
    for ending, fmt in _EXTENSIONS:
        if name.endswith(ending):
            return fmt
    raise ValueError(f"{path}: unknown weights format; expected a name ending in .safetensors, "
                     ".safetensors.index.json, .bin (also .pt, .pth) or .h5")


def read_index(path: str) -> Dict[str, str]:
    """{tensor name: shard file name} of a safetensors index; ValueError naming the file when malformed.

    Shard names must be plain file names beside the index: an index cannot point outside its directory.
    """
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise ValueError("no 'weight_map' object of tensor name -> shard file name")
    except (ValueError, RecursionError) as err:  # also JSON and UTF-8 errors
        raise corrupt_file_error(path, "safetensors index", f"{err} (an index holds a 'weight_map' of tensor -> shard file)") from None
    bad = sorted({v for v in weight_map.values() if os.path.basename(v) != v or v in ("", ".", "..") or "\0" in v})
    if bad:
        raise ValueError(f"{path} names shard files outside its directory ({', '.join(map(repr, bad[:3]))}); "
                         "shards must be plain file names beside the index")
    return weight_map


def _resolver(resolve: Optional[Callable]) -> Callable:
    if resolve is not None:
        return resolve
    from mobilebert_common.hub import resolve_file

    return resolve_file


def _sharded(index_path: str, source: Optional[str], hub_kwargs: dict, resolve: Callable) -> WeightFiles:
    names = sorted(set(read_index(index_path).values()))
    if source is None:  # an index file given directly: its shards lie beside it
        directory = os.path.dirname(os.path.abspath(index_path))
        shards = tuple(os.path.join(directory, name) for name in names)
    else:  # a directory or a hub repo id: each shard resolved (downloaded into the same snapshot)
        shards = tuple(resolve(source, name, **hub_kwargs) for name in names)
    return WeightFiles("sharded", index_path, shards)


def locate_weights(source, kind: str, hub_kwargs: Optional[dict] = None, resolve: Optional[Callable] = None,
                   other_hint: str = "") -> WeightFiles:
    """The weights of ``kind`` ("pt" or "tf") in a directory, a weights file or a hub repo id.

    A file given directly is taken by its name (a file of the other framework's format is a
    ValueError). ``resolve`` is hub.resolve_file's signature (the default); ``other_hint`` is
    added to the FileNotFoundError when only the other framework's weights are there.
    """
    if kind not in ("pt", "tf"):
        raise ValueError(f"kind must be 'pt' or 'tf', got {kind!r}")
    source = os.fspath(source)
    hub_kwargs = dict(hub_kwargs or {})
    resolve = _resolver(resolve)
    if os.path.isfile(source):
        fmt = weights_format(source)
        if (fmt == "h5") != (kind == "tf"):
            wanted = "a Keras .h5 weights file (tf_model.h5)" if kind == "tf" else \
                "PyTorch weights (.safetensors, .safetensors.index.json or .bin)"
            raise ValueError(f"{source} is {'a Keras h5' if fmt == 'h5' else 'a PyTorch'} weights file; expected {wanted}."
                             + (f" {other_hint}" if other_hint else ""))
        return _sharded(source, None, hub_kwargs, resolve) if fmt == "sharded" else WeightFiles(fmt, source)
    names = (TF_WEIGHTS_NAME,) if kind == "tf" else PT_WEIGHTS_NAMES
    for name in names:
        path = resolve(source, name, required=False, **hub_kwargs)
        if path is not None:
            if name == SAFE_INDEX_NAME:
                return _sharded(path, source, hub_kwargs, resolve)
            return WeightFiles({SAFE_WEIGHTS_NAME: "safetensors", BIN_WEIGHTS_NAME: "bin", TF_WEIGHTS_NAME: "h5"}[name], path)
    others = PT_WEIGHTS_NAMES if kind == "tf" else (TF_WEIGHTS_NAME,)
    has_other = other_hint and any(resolve(source, name, required=False, **hub_kwargs) is not None for name in others)
    what = f"no {TF_WEIGHTS_NAME}" if kind == "tf" else \
        f"no PyTorch weights (looked for {', '.join(PT_WEIGHTS_NAMES[:-1])} and {PT_WEIGHTS_NAMES[-1]})"
    other = ("PyTorch weights" if kind == "tf" else TF_WEIGHTS_NAME)
    hint = f" It has {other}: {other_hint}" if has_other else ""
    raise FileNotFoundError(f"{what} in {source}.{hint}")


# ----------------------------------------------------------------------------- sharding
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(size) -> int:
    """Bytes of a size given as an int or a string like '50MB', '2GB', '500KiB' (the hub's max_shard_size)."""
    if isinstance(size, int) and not isinstance(size, bool):
        value = size
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?i?B)\s*", str(size), re.IGNORECASE)
        if not match:
            raise ValueError(f"max_shard_size={size!r}: give bytes (an int) or a size like '200MB', '2GB', '500KiB'")
        value = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if value <= 0:
        raise ValueError(f"max_shard_size={size!r}: must be positive")
    return value


def plan_shards(sizes: Iterable[Tuple[str, int]], limit: int) -> List[List[str]]:
    """Names in order, cut into shards of at most ``limit`` bytes (a larger tensor gets a shard of its own)."""
    shards: List[List[str]] = [[]]
    used = 0
    for name, nbytes in sizes:
        if shards[-1] and used + nbytes > limit:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += nbytes
    return shards


def shard_name(i: int, n: int) -> str:
    """The hub's shard file name, 1-based: shard_name(1, 3) == 'model-00001-of-00003.safetensors'."""
    return f"model-{i:05d}-of-{n:05d}.safetensors"


def index_json(weight_map: Dict[str, str], total_size: int) -> str:
    """model.safetensors.index.json as the hub writes it: {"metadata": {"total_size"}, "weight_map"} (sorted)."""
    return json.dumps({"metadata": {"total_size": int(total_size)}, "weight_map": dict(sorted(weight_map.items()))},
                      indent=2) + "\n"


def stale_weight_files(names: Sequence[str], kind: str) -> List[str]:
    """Of the file names in a directory, those that hold ``kind`` weights (they would shadow new ones)."""
    if kind == "tf":
        return [n for n in names if n == TF_WEIGHTS_NAME]
    return [n for n in names if n in PT_WEIGHTS_NAMES or SHARD_NAME.fullmatch(n)]
