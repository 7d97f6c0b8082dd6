"""Checkpoint directory to checkpoint directory: what `python -m conversion` does, callable from Python.

    convert_checkpoint(direction, src, dst, dtype=None, force=False, architecture=None, config_path=None,
                       progress=False, hub_kwargs=None, pt_format="safetensors", max_shard_size=None) -> Summary

direction: "pt-to-tf" | "tf-to-pt" | "tf1-to-pt" | "tf1-to-tf". src: a directory, a single weights file
(or a TF1 checkpoint prefix), or a hub repo id (not for TF1). dst: a directory. Writes tf_model.h5,
or model.safetensors (sharded with an index past ``max_shard_size``, or pytorch_model.bin with
pt_format="bin"), then config.json (with `architectures`), and copies the tokenizer files. Nothing
is overwritten without force; the source is never modified; the whole output is staged and moved
into place at the end (mobilebert_common/staging.py), so a failure or an interruption leaves DST as it was.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from mobilebert_common import MobileBertConfig
from mobilebert_common.files import atomic_write_text
from mobilebert_common.hub import resolve_file
from mobilebert_common.weight_files import (BIN_WEIGHTS_NAME, SAFE_INDEX_NAME, SAFE_WEIGHTS_NAME, TF_WEIGHTS_NAME,
                                            locate_weights, parse_size, plan_shards, shard_name, stale_weight_files)

from . import formats
from .arrays import DTYPES, cast_floats
from .convert import pt_to_tf, tf_to_pt
from mobilebert_common.staging import staged_directory
from mobilebert_common.weights import resolve_architecture, tf_model_name

DIRECTIONS = ("pt-to-tf", "tf-to-pt", "tf1-to-pt", "tf1-to-tf")
PT_FORMATS = ("safetensors", "bin")
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
TF1_CONFIGS = ("config.json", "bert_config.json", "mobilebert_config.json")


@dataclass
class Summary:
    direction: str
    source: str  # the weights file (or TF1 prefix) read
    architecture: str
    weights_path: str  # the weights file written (the index, when sharded)
    num_tensors: int
    num_bytes: int
    dtypes: List[str]
    copied: List[str] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)  # source tensors left out: name -> why
    filled: Dict[str, str] = field(default_factory=dict)  # target tensors not in the source (TF1): name -> why
    shards: List[str] = field(default_factory=list)

    def lines(self) -> List[str]:
        shards = f" (+ {len(self.shards)} shards)" if self.shards else ""
        out = [f"wrote {self.weights_path}{shards}: {self.num_tensors} tensors, {self.num_bytes / 2**20:.1f} MiB, "
               f"{'/'.join(self.dtypes)}, {self.architecture} (from {self.source})"]
        if self.copied:
            out.append("copied alongside: " + ", ".join(self.copied))
        for name, reason in sorted(self.skipped.items()):
            out.append(f"skipped {name}: {reason}")
        for name, reason in sorted(self.filled.items()):
            out.append(f"filled {name}: {reason}")
        return out


def _bar(progress: bool, total: int):
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency; be quiet without it all the same
        return None
    return tqdm(total=total, desc="converting", unit="step", leave=False)


def _source_dir(src: str) -> str:
    """Where config.json and the tokenizer files are for `src` (a directory, a file in one, or a repo id)."""
    if os.path.isdir(src):
        return src
    if os.path.isfile(src) or os.path.isfile(src + ".index"):  # a weights file or a TF1 checkpoint prefix
        return os.path.dirname(os.path.abspath(src))
    return src  # a hub repo id


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


def _check_options(direction, dtype, pt_format, max_shard_size) -> Optional[int]:
    """Refuse impossible option sets before anything is read; the shard limit in bytes (or None)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; allowed: {', '.join(DIRECTIONS)}")
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
    if pt_format not in PT_FORMATS:
        raise ValueError(f"unknown PyTorch weights format {pt_format!r}; allowed: {', '.join(PT_FORMATS)}")
    to_tf = direction.endswith("-to-tf")
    if to_tf and dtype == "bfloat16":
        raise ValueError("tf_model.h5 cannot hold bfloat16 (Keras h5 files have no such type); use float32 or float16")
    if to_tf and (pt_format != "safetensors" or max_shard_size is not None):
        raise ValueError("--format and --max-shard-size choose the PyTorch weights file; a conversion to TF writes tf_model.h5")
    if pt_format == "bin" and max_shard_size is not None:
        raise ValueError("--max-shard-size shards model.safetensors; pytorch_model.bin is written whole")
    if pt_format == "bin" and importlib.util.find_spec("torch") is None:
        raise ImportError("--format bin writes pytorch_model.bin with torch.save and needs torch (pip install torch); "
                          "the default model.safetensors needs no torch")
    return None if max_shard_size is None else parse_size(max_shard_size)


def _weight_names(to_tf: bool, pt_format: str, out: Optional[Dict[str, np.ndarray]], shard_limit: Optional[int]) -> List[str]:
    """The weight files the conversion writes, the main one last (out=None: before the weights are known,
    the index stands for a sharded set)."""
    if to_tf:
        return [TF_WEIGHTS_NAME]
    if pt_format == "bin":
        return [BIN_WEIGHTS_NAME]
    if shard_limit is not None:
        if out is None:
            return [SAFE_INDEX_NAME]
        plan = plan_shards([(k, v.nbytes) for k, v in out.items()], shard_limit)
        if len(plan) > 1:  # as the hub does: one shard that holds everything is plain model.safetensors
            return [shard_name(i, len(plan)) for i in range(1, len(plan) + 1)] + [SAFE_INDEX_NAME]
    return [SAFE_WEIGHTS_NAME]


def _refuse_overwrite(dst: str, targets: List[str], kind: str, force: bool) -> List[str]:
    """Raise unless force when dst holds any target or stale weights of `kind`; returns the stale names
    (weights of an earlier save in another layout, which would shadow or contradict the new ones)."""
    present = sorted(os.listdir(dst)) if os.path.isdir(dst) else []
    stale = [n for n in stale_weight_files(present, kind) if n not in targets]
    existing = [n for n in targets if n in present] + stale
    if existing and not force:
        raise FileExistsError(f"{', '.join(os.path.join(dst, n) for n in existing)} already exist(s); "
                              "pass --force to overwrite")
    return stale


def _refuse_overlap(src_dir: str, dst: str, kind: str) -> None:
    """The source is never modified: refuse a dst that is the source directory or lies inside it, and one that
    holds the source under a name the conversion replaces (--force would take it away)."""
    if not os.path.isdir(src_dir):
        return  # a hub repo id
    source, out = os.path.realpath(src_dir), os.path.realpath(dst)  # through symbolic links, as the files are
    if out == source:
        raise ValueError(f"the destination {dst} is the source directory; the source is never modified: choose another")
    common = os.path.commonpath([source, out])
    if common == source:
        raise ValueError(f"the destination {dst} lies inside the source directory {src_dir}; the source is never "
                         "modified: choose a destination outside it")
    top = os.path.relpath(source, out).split(os.sep)[0]
    if common == out and (top in ("config.json", *TOKENIZER_FILES) or stale_weight_files([top], kind)):
        raise ValueError(f"the source {src_dir} lies inside {os.path.join(dst, top)}, which the conversion would "
                         "replace; choose another destination")


def _write_weights(stage: str, names: List[str], out: Dict[str, np.ndarray], arch: str, shard_limit: Optional[int]) -> str:
    """Write the converted weights into the staging directory; the main file's name."""
    main = names[-1]
    if main == TF_WEIGHTS_NAME:
        formats.write_tf_h5(os.path.join(stage, main), out, model_name=tf_model_name(arch))
    elif main == BIN_WEIGHTS_NAME:
        formats.write_pytorch_bin(os.path.join(stage, main), out)
    elif main == SAFE_WEIGHTS_NAME:
        formats.write_safetensors(os.path.join(stage, main), out, {"format": "pt"})
    else:
        formats.write_sharded_safetensors(stage, out, shard_limit, {"format": "pt"})
    return main


def _read_source(direction: str, src: str, hub: dict, skipped: dict):
    """(source path, {name: array}, kind) of the checkpoint to convert."""
    if direction.startswith("tf1"):
        from .tf1 import read_tf1_checkpoint

        return src, read_tf1_checkpoint(src, skipped=skipped), "tf1"
    kind = "pt" if direction == "pt-to-tf" else "tf"
    hint = "convert it with tf-to-pt instead." if kind == "pt" else "convert them with pt-to-tf instead."
    files = locate_weights(src, kind, hub, resolve_file, other_hint=hint)
    return files.path, formats.read_weights(files), kind


def convert_checkpoint(direction: str, src, dst, dtype: Optional[str] = None, force: bool = False,
                       architecture: Optional[str] = None, config_path: Optional[str] = None, progress: bool = False,
                       hub_kwargs: Optional[dict] = None, on_step: Optional[Callable[[str], None]] = None,
                       pt_format: str = "safetensors", max_shard_size=None) -> Summary:
    shard_limit = _check_options(direction, dtype, pt_format, max_shard_size)
    to_tf = direction.endswith("-to-tf")
    src, dst = os.fspath(src), os.fspath(dst)
    hub = dict(hub_kwargs or {})
    if direction.startswith("tf1") and not (os.path.exists(src) or os.path.isfile(src + ".index")):
        # TF1 checkpoints are local files: a name that is not one is not looked up on the hub.
        raise FileNotFoundError(f"no TF1 checkpoint at {src}: neither {src}.index nor a directory of that name exists "
                                "(TF1 checkpoints are read from local files, not from the hub)")
    src_dir = _source_dir(src)
    if os.path.isfile(dst):
        raise ValueError(f"the destination {dst} is a file; it must be a directory")
    kind_out = "tf" if to_tf else "pt"
    _refuse_overlap(src_dir, dst, kind_out)
    config = _load_config(src_dir, direction, config_path, hub)  # first: an absent source fails here, early
    tokenizer = {name: path for name in TOKENIZER_FILES
                 if (path := resolve_file(src_dir, name, required=False, **hub)) is not None}
    _refuse_overwrite(dst, [*_weight_names(to_tf, pt_format, None, shard_limit), "config.json", *tokenizer], kind_out, force)

    bar = _bar(progress, 4)

    def step(what: str):
        if on_step:
            on_step(what)
        if bar is not None:
            bar.set_postfix_str(what)
            bar.update(1)

    try:
        skipped: Dict[str, str] = {}
        filled: Dict[str, str] = {}
        # 1. read
        source, weights, kind = _read_source(direction, src, hub, skipped)
        step("read")
        # 2. convert (strict: raises before anything is written)
        arch = resolve_architecture(weights, kind, config, architecture)
        if kind == "tf1":
            from .tf1 import tf1_to_pt, tf1_to_tf

            out = (tf1_to_tf if to_tf else tf1_to_pt)(weights, config, arch, skipped, filled)
        else:
            out = (pt_to_tf if to_tf else tf_to_pt)(weights, config, arch, skipped)
        del weights
        out = cast_floats(out, dtype)
        step("convert")
        # 3. checked again now that the shard names are known
        names = _weight_names(to_tf, pt_format, out, shard_limit)
        stale = _refuse_overwrite(dst, [*names, "config.json", *tokenizer], kind_out, force)
        # 4. write everything into a staging directory; it replaces DST's files only when complete
        with staged_directory(dst, remove=stale) as stage:
            main = _write_weights(stage, names, out, arch, shard_limit)
            step("write")
            atomic_write_text(os.path.join(stage, "config.json"), config.copy(architectures=[arch]).to_json_string())
            copied = ["config.json"]
            for name, path in tokenizer.items():
                shutil.copyfile(path, os.path.join(stage, name))
                copied.append(name)
            step("copy")
    finally:
        if bar is not None:
            bar.close()
    shards = [os.path.join(dst, n) for n in names[:-1]]
    return Summary(direction, source, arch, os.path.join(dst, main), len(out), sum(int(v.nbytes) for v in out.values()),
                   sorted({str(v.dtype) for v in out.values()}), copied, skipped, filled, shards)
