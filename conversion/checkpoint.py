"""Checkpoint directory to checkpoint directory: what `python -m conversion` does, callable from Python.

    convert_checkpoint(direction, src, dst, dtype=None, force=False, architecture=None, config_path=None,
                       progress=False, hub_kwargs=None) -> Summary

direction: "pt-to-tf" | "tf-to-pt" | "tf1-to-pt" | "tf1-to-tf". src: a directory, a single weights file
(or a TF1 checkpoint prefix), or a hub repo id. dst: a directory (created). Writes model.safetensors
or tf_model.h5, then config.json (with `architectures`), and copies the tokenizer files. Nothing
is overwritten without force; the source is never modified; every file is written to a temporary
name in dst and renamed into place, so a failure leaves no partial checkpoint.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from mobilebert_common import MobileBertConfig
from mobilebert_common.files import atomic_path, atomic_write_text
from mobilebert_common.hub import resolve_file

from . import formats
from .convert import pt_to_tf, tf_to_pt
from .weight_map import resolve_architecture, tf_model_name

DIRECTIONS = ("pt-to-tf", "tf-to-pt", "tf1-to-pt", "tf1-to-tf")
DTYPES = ("float32", "float16", "bfloat16")
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
PT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
TF_FILE = "tf_model.h5"
TF1_CONFIGS = ("config.json", "bert_config.json", "mobilebert_config.json")


@dataclass
class Summary:
    direction: str
    source: str  # the weights file (or TF1 prefix) read
    architecture: str
    weights_path: str
    num_tensors: int
    num_bytes: int
    dtypes: List[str]
    copied: List[str] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)

    def lines(self) -> List[str]:
        out = [f"wrote {self.weights_path}: {self.num_tensors} tensors, {self.num_bytes / 2**20:.1f} MiB, "
               f"{'/'.join(self.dtypes)}, {self.architecture} (from {self.source})"]
        if self.copied:
            out.append("copied alongside: " + ", ".join(self.copied))
        for name, reason in sorted(self.skipped.items()):
            out.append(f"skipped {name}: {reason}")
        return out


def _bar(progress: bool, total: int):
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency; be quiet without it all the same
        return None
    return tqdm(total=total, desc="converting", unit="step", leave=False)


def _cast(weights: Dict[str, np.ndarray], dtype: Optional[str]) -> Dict[str, np.ndarray]:
    if dtype is None:
        return weights
    if dtype == "bfloat16":
        from ml_dtypes import bfloat16 as target  # installed with tensorflow; clear error otherwise below
    else:
        target = np.dtype(dtype)
    # Only floating tensors change type; integer buffers keep theirs.
    return {k: v.astype(target) if np.issubdtype(v.dtype, np.floating) or v.dtype.name == "bfloat16" else v
            for k, v in weights.items()}


def _source_dir(src: str) -> str:
    """Where config.json and the tokenizer files are for `src` (a directory, a file in one, or a repo id)."""
    if os.path.isdir(src):
        return src
    if os.path.isfile(src) or os.path.isfile(src + ".index"):  # a weights file or a TF1 checkpoint prefix
        return os.path.dirname(os.path.abspath(src))
    return src  # a hub repo id


def _find_pt(src: str, hub: dict):
    """(path, reader) of the PyTorch weights of src."""
    readers = {".safetensors": formats.read_safetensors, ".index.json": formats.read_sharded_safetensors,
               ".bin": formats.read_pytorch_bin}
    if os.path.isfile(src):
        for ext, reader in readers.items():
            if src.endswith(ext):
                return src, reader
        raise ValueError(f"{src}: unknown PyTorch weights format; expected .safetensors, .safetensors.index.json or .bin")
    for name, reader in zip(PT_FILES, readers.values()):
        path = resolve_file(src, name, required=False, **hub)
        if path is not None:
            if name.endswith(".index.json") and not os.path.isdir(src):
                for shard in sorted(set(_index_shards(path))):
                    resolve_file(src, shard, **hub)  # download the shards next to the index
            return path, reader
    raise FileNotFoundError(f"no PyTorch weights in {src}: looked for {', '.join(PT_FILES)}")


def _index_shards(index_path: str):
    import json

    with open(index_path, encoding="utf-8") as f:
        return json.load(f)["weight_map"].values()


def _find_tf(src: str, hub: dict) -> str:
    if os.path.isfile(src):
        if not src.endswith(".h5"):
            raise ValueError(f"{src}: expected a Keras .h5 weights file (tf_model.h5)")
        return src
    return resolve_file(src, TF_FILE, **hub)


def _load_config(src_dir: str, direction: str, config_path: Optional[str], hub: dict) -> MobileBertConfig:
    if config_path:
        return MobileBertConfig.from_json_file(config_path)
    names = TF1_CONFIGS if direction.startswith("tf1") else ("config.json",)
    for name in names:
        path = resolve_file(src_dir, name, required=False, **hub)
        if path is not None:
            return MobileBertConfig.from_json_file(path)
    raise FileNotFoundError(f"no {' or '.join(names)} found for {src_dir} (SRC is a checkpoint directory, a weights "
                            "file inside one, or a reachable hub repo id); pass --config PATH if it lies elsewhere")


def convert_checkpoint(direction: str, src, dst, dtype: Optional[str] = None, force: bool = False,
                       architecture: Optional[str] = None, config_path: Optional[str] = None, progress: bool = False,
                       hub_kwargs: Optional[dict] = None, on_step: Optional[Callable[[str], None]] = None) -> Summary:
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; allowed: {', '.join(DIRECTIONS)}")
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
    to_tf = direction.endswith("-to-tf")
    if to_tf and dtype == "bfloat16":
        raise ValueError("tf_model.h5 cannot hold bfloat16 (Keras h5 files have no such type); use float32 or float16")
    src, dst = os.fspath(src), os.fspath(dst)
    hub = dict(hub_kwargs or {})
    src_dir = _source_dir(src)
    if os.path.isfile(dst):
        raise ValueError(f"the destination {dst} is a file; it must be a directory")
    if os.path.isdir(src_dir) and os.path.isdir(dst) and os.path.samefile(src_dir, dst):
        raise ValueError(f"the destination {dst} is the source directory; the source is never modified: choose another")
    weights_name = TF_FILE if to_tf else "model.safetensors"
    config = _load_config(src_dir, direction, config_path, hub)  # first: an absent source fails here, early
    tokenizer = {name: path for name in TOKENIZER_FILES
                 if (path := resolve_file(src_dir, name, required=False, **hub)) is not None}
    targets = [weights_name, "config.json", *tokenizer]
    existing = [n for n in targets if os.path.exists(os.path.join(dst, n))]
    if existing and not force:
        raise FileExistsError(f"{', '.join(os.path.join(dst, n) for n in existing)} already exist(s); pass --force to overwrite")

    bar = _bar(progress, 4)

    def step(what: str):
        if on_step:
            on_step(what)
        if bar is not None:
            bar.set_postfix_str(what)
            bar.update(1)

    try:
        skipped: Dict[str, str] = {}
        # 1. read
        if direction == "pt-to-tf":
            source, reader = _find_pt(src, hub)
            weights = reader(source)
            kind = "pt"
        elif direction == "tf-to-pt":
            source = _find_tf(src, hub)
            weights = formats.read_tf_h5(source)
            kind = "tf"
        else:
            from .tf1 import read_tf1_checkpoint

            source = src
            weights = read_tf1_checkpoint(src, skipped=skipped)
            kind = "tf1"
        step("read")
        # 2. convert (strict: raises before anything is written)
        if kind == "tf1":
            from .tf1 import tf1_to_pt, tf1_to_tf

            arch = resolve_architecture(weights, "tf1", config, architecture)
            out = (tf1_to_tf if to_tf else tf1_to_pt)(weights, config, arch, skipped)
        else:
            arch = resolve_architecture(weights, kind, config, architecture)
            out = (pt_to_tf if to_tf else tf_to_pt)(weights, config, arch, skipped)
        del weights
        out = _cast(out, dtype)
        step("convert")
        # 3. write the weights, then config.json (a directory with a config is complete), then the tokenizer
        os.makedirs(dst, exist_ok=True)
        weights_path = os.path.join(dst, weights_name)
        if to_tf:
            formats.write_tf_h5(weights_path, out, model_name=tf_model_name(arch))
        else:
            formats.write_safetensors(weights_path, out, {"format": "pt"})
        step("write")
        atomic_write_text(os.path.join(dst, "config.json"), config.copy(architectures=[arch]).to_json_string())
        copied = ["config.json"]
        for name, path in tokenizer.items():
            with atomic_path(os.path.join(dst, name)) as tmp:
                shutil.copyfile(path, tmp)
            copied.append(name)
        step("copy")
    finally:
        if bar is not None:
            bar.close()
    return Summary(direction, source, arch, weights_path, len(out), sum(int(v.nbytes) for v in out.values()),
                   sorted({str(v.dtype) for v in out.values()}), copied, skipped)
