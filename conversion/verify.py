"""--verify: the converted checkpoint gives the same logits in both frameworks on a probe batch.

Needs torch and tensorflow (the model packages mobilebert_pt and mobilebert_tf), imported here
lazily through importlib so that `conversion` itself never depends on them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile

import numpy as np

from mobilebert_common import MobileBertConfig

from mobilebert_common.weight_files import locate_weights

from . import formats
from .arrays import cast_floats
from .convert import pt_to_tf, tf_to_pt
from mobilebert_common.weights import normalize_architecture, tf_model_name

RTOL = 1e-4  # relative to max(1, max|logits|): MobileBERT activations are large


class VerifyUnavailable(RuntimeError):
    """torch or tensorflow is not installed."""


def check_available() -> None:
    missing = [m for m in ("torch", "tensorflow", "tf_keras") if importlib.util.find_spec(m) is None]
    if missing:
        raise VerifyUnavailable(f"--verify runs the model in both frameworks and needs {', '.join(missing)} installed "
                                "(pip install 'mobilebert-suite[all]'); convert without --verify, or install them")


def probe_inputs(config: MobileBertConfig, architecture: str, batch: int = 2, seq: int = 8) -> dict:
    """A deterministic batch: random ids, the last row padded on the right, two segments."""
    rng = np.random.default_rng(0)
    seq = min(seq, config.max_position_embeddings)
    ids = rng.integers(1, config.vocab_size, size=(batch, seq), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[-1, seq - 2:] = 0
    types = np.zeros_like(ids)
    types[:, seq // 2:] = min(1, config.type_vocab_size - 1)
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if architecture == "MobileBertForMultipleChoice":  # (B, choices, T)
        inputs = {k: np.stack([v, v[::-1]], axis=1) for k, v in inputs.items()}
    return inputs


def verify_checkpoint(dst: str, to_tf: bool) -> float:
    """Re-read the converted file in dst, convert it back in memory, run both frameworks; return the relative error."""
    check_available()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter out of the CLI output
    config = MobileBertConfig.from_pretrained(dst)
    arch = normalize_architecture(config.architectures[0])
    pt_mod = importlib.import_module("mobilebert_pt")
    tf_mod = importlib.import_module("mobilebert_tf")
    torch = importlib.import_module("torch")
    with tempfile.TemporaryDirectory() as other:
        config.save_pretrained(other)
        # The written file, read back as users read it (any layout: h5, safetensors, shards, bin).
        written = formats.read_weights(locate_weights(dst, "tf" if to_tf else "pt"))
        if to_tf:
            tf_dir, pt_dir = dst, other
            pt_weights = cast_floats(tf_to_pt(written, config, arch), "float32")
            formats.write_safetensors(os.path.join(other, "model.safetensors"), pt_weights, {"format": "pt"})
        else:
            pt_dir, tf_dir = dst, other
            tf_weights = cast_floats(pt_to_tf(written, config, arch), "float32")
            formats.write_tf_h5(os.path.join(other, "tf_model.h5"), tf_weights, model_name=tf_model_name(arch))
        pt_model = getattr(pt_mod, arch).from_pretrained(pt_dir, torch_dtype=torch.float32).eval()
        tf_model = getattr(tf_mod, "TF" + arch).from_pretrained(tf_dir)
    inputs = probe_inputs(config, arch)
    with torch.no_grad():
        pt_out = pt_model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, return_dict=True)
    tf_out = tf_model(inputs, training=False, return_dict=True)
    worst = 0.0
    for key in pt_out.keys():
        if key in ("hidden_states", "attentions") or pt_out[key] is None:
            continue
        a = pt_out[key].float().numpy().astype(np.float64)
        b = np.asarray(tf_out[key], dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(f"--verify: {key} has shape {a.shape} in PyTorch and {b.shape} in TF")
        worst = max(worst, float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b))))))
    if not worst <= RTOL:
        raise ValueError(f"--verify failed: PyTorch and TF outputs differ by {worst:.3g} (relative), more than {RTOL:g}")
    return worst
