"""Reading checkpoint files (tf_model.h5, safetensors, sharded safetensors, pytorch_model.bin) for Keras.

The mirror of mobilebert_pt/checkpoints.py: ``_resolve_tf_weights`` finds the hub's tf_model.h5 of a
directory or hub repo, ``_read_h5`` reads it, and ``_read_pt_weights`` reads PyTorch weights and
converts them to the hub's h5 names (``from_pt=True``; numpy only, torch is not needed for
safetensors). Files are found by mobilebert_common.weight_files, the one locator both frameworks
and the converter share (a sharded checkpoint of a hub repo has its shards downloaded). Corrupt
or truncated files are a ValueError naming the file.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from mobilebert_common.config import MobileBertConfig
from conversion import convert, formats
from mobilebert_common.hub import resolve_file
from mobilebert_common.weights import resolve_architecture
from mobilebert_common.weight_files import (  # noqa: F401  (the names are part of this module's API)
    BIN_WEIGHTS_NAME, SAFE_INDEX_NAME, SAFE_WEIGHTS_NAME, TF_WEIGHTS_NAME, corrupt_file_error, locate_weights,
)


def _resolve_tf_weights(source: str, hub: dict) -> str:
    """The tf_model.h5 of a directory or hub repo id."""
    return locate_weights(source, "tf", hub, resolve_file, other_hint="pass from_pt=True to convert them.").path


def _read_h5(path: str) -> Dict[str, np.ndarray]:
    try:
        return formats.read_tf_h5(path)
    except FileNotFoundError:
        raise
    except (OSError, KeyError, TypeError) as err:  # h5py reports a corrupt or truncated file as OSError
        raise corrupt_file_error(path, "Keras HDF5 (tf_model.h5)", err) from None


def _read_pt_weights(source: str, hub: dict, file_config: MobileBertConfig, own_architecture: str, is_file: bool):
    """(path, {hub h5 name: array}) from PyTorch weights: safetensors, sharded safetensors or pytorch_model.bin.

    ``source``: a directory, a weights file or a hub repo id (``is_file`` is kept for callers; the
    locator tells them apart itself)."""
    files = locate_weights(source, "pt", hub, resolve_file, other_hint="load it without from_pt.")
    try:
        pt_weights = formats.read_weights(files)
    except FileNotFoundError:
        raise
    except (OSError, KeyError, TypeError) as err:
        raise corrupt_file_error(files.path, "PyTorch weights", err) from None
    try:
        architecture = resolve_architecture(pt_weights, "pt", file_config)
    except ValueError:
        # Only the shared "classifier" head is ambiguous by names; our own class names it.
        architecture = own_architecture
    try:
        return files.path, convert.pt_to_tf(pt_weights, file_config, architecture=architecture)
    except ValueError as err:
        raise ValueError(f"{files.path}: {err}") from None
