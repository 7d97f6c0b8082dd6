"""Reading checkpoint files (tf_model.h5, safetensors, sharded safetensors, pytorch_model.bin) for Keras.

The mirror of mobilebert_pt/checkpoints.py: ``_resolve_tf_weights`` finds the hub's tf_model.h5 of a
directory or hub repo, ``_read_h5`` reads it, and ``_read_pt_weights`` reads PyTorch weights and
converts them to the hub's h5 names (``from_pt=True``; numpy only, torch is not needed for
safetensors). Corrupt or truncated files are a ValueError naming the file.
"""

from __future__ import annotations

import os
from typing import Dict

import numpy as np

from mobilebert_common.config import MobileBertConfig
from mobilebert_common.hub import resolve_file

TF_WEIGHTS_NAME = "tf_model.h5"
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_INDEX_NAME = "model.safetensors.index.json"
BIN_WEIGHTS_NAME = "pytorch_model.bin"


def _conversion(name: str):
    """conversion.<name>, imported when files are read or written (numpy-only; no torch needed)."""
    import importlib

    try:
        return importlib.import_module(f"conversion.{name}")
    except ImportError as err:
        raise ImportError(f"reading and writing MobileBERT weight files needs the suite's `conversion` package: {err}") from None


def _resolve_tf_weights(source: str, hub: dict) -> str:
    path = resolve_file(source, TF_WEIGHTS_NAME, required=False, **hub)
    if path is not None:
        return path
    has_pt = any(resolve_file(source, name, required=False, **hub) for name in (SAFE_WEIGHTS_NAME, SAFE_INDEX_NAME, BIN_WEIGHTS_NAME))
    hint = " It has PyTorch weights: pass from_pt=True to convert them." if has_pt else ""
    raise FileNotFoundError(f"no {TF_WEIGHTS_NAME} in {source}.{hint}")


def _read_h5(path: str) -> Dict[str, np.ndarray]:
    read_tf_h5 = _conversion("formats").read_tf_h5
    try:
        return read_tf_h5(path)
    except FileNotFoundError:
        raise
    except (OSError, KeyError, TypeError) as err:  # h5py reports a corrupt or truncated file as OSError
        raise ValueError(f"{path} is not a valid Keras HDF5 weights file (truncated or corrupt?): {err}") from None


def _read_pt_weights(source: str, hub: dict, file_config: MobileBertConfig, own_architecture: str, is_file: bool):
    """(path, {hub h5 name: array}) from PyTorch weights: safetensors, sharded safetensors or pytorch_model.bin."""
    formats = _conversion("formats")
    pt_to_tf = _conversion("convert").pt_to_tf
    resolve_architecture = _conversion("weight_map").resolve_architecture

    if is_file:
        path = source
        readers = {".safetensors": formats.read_safetensors, ".index.json": formats.read_sharded_safetensors,
                   ".bin": formats.read_pytorch_bin}
        reader = next((r for ext, r in readers.items() if path.endswith(ext)), None)
        if reader is None:
            raise ValueError(f"{path}: unknown PyTorch weights format; expected .safetensors, .safetensors.index.json or .bin")
    else:
        for name, reader in ((SAFE_WEIGHTS_NAME, formats.read_safetensors), (SAFE_INDEX_NAME, formats.read_sharded_safetensors),
                             (BIN_WEIGHTS_NAME, formats.read_pytorch_bin)):
            path = resolve_file(source, name, required=False, **hub)
            if path is not None:
                if name == SAFE_INDEX_NAME and not os.path.isdir(source):
                    raise ValueError(f"sharded safetensors of hub repo {source!r}: download the repo and pass its directory")
                break
        else:
            has_tf = resolve_file(source, TF_WEIGHTS_NAME, required=False, **hub) is not None
            hint = f" It has {TF_WEIGHTS_NAME}: load it without from_pt." if has_tf else ""
            raise FileNotFoundError(
                f"no PyTorch weights in {source}: looked for {SAFE_WEIGHTS_NAME}, {SAFE_INDEX_NAME} and {BIN_WEIGHTS_NAME}.{hint}"
            )
    try:
        pt_weights = reader(path)
    except FileNotFoundError:
        raise
    except (OSError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a valid PyTorch weights file (truncated or corrupt?): {err}") from None
    try:
        architecture = resolve_architecture(pt_weights, "pt", file_config)
    except ValueError:
        # Only the shared "classifier" head is ambiguous by names; our own class names it.
        architecture = own_architecture
    try:
        return path, pt_to_tf(pt_weights, file_config, architecture=architecture)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
