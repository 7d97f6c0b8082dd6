"""Checkpoints written by the reference (transformers 4.57.6) now, into the test session's temp dir.

    reference_dir(tmp_path_factory, framework, head, variant="default") -> Path

framework "pt": MobileBert<head>(config) with seeded random weights, save_pretrained (config.json +
model.safetensors); framework "tf": the same weights through transformers' own converter,
TFMobileBert<head>.from_pretrained(pt_dir, from_pt=True).save_pretrained (config.json + tf_model.h5),
so the pair holds one model in both layouts. Heads are
"Model", "ForPreTraining", ...; configs are tests.harness.models' tiny variants (reference_config).
Each checkpoint is built once per test session (the cache outlives the test modules that ask
for it); the calling test skips when transformers (or the framework) is not installed.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from tests.harness.models import tiny_config

_BUILT: dict = {}


def reference_config(variant: str = "default", head: str = "Model"):
    """transformers.MobileBertConfig equal to our tiny variant (num_labels 3; 2 for the span head, whose
    qa_outputs transformers sizes by num_labels and then splits in two)."""
    transformers = pytest.importorskip("transformers")
    config = tiny_config(variant, num_labels=2 if head == "ForQuestionAnswering" else 3)
    return transformers.MobileBertConfig(**{k: v for k, v in config.to_dict().items() if k != "architectures"})


def reference_dir(tmp_path_factory, framework: str, head: str, variant: str = "default") -> Path:
    key = (framework, head, variant)
    if key in _BUILT:
        return _BUILT[key]
    transformers = pytest.importorskip("transformers")
    cfg = reference_config(variant, head)
    out = tmp_path_factory.getbasetemp() / "reference" / f"{framework}_{head}_{variant}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' TF deprecation notice
        if framework == "pt":
            torch = pytest.importorskip("torch")
            torch.manual_seed(0)
            getattr(transformers, "MobileBert" + head)(cfg).eval().save_pretrained(out)
        else:
            pytest.importorskip("tensorflow")
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            pt_dir = reference_dir(tmp_path_factory, "pt", head, variant)
            # A second model of one class would be named "..._1", and the h5 names with it: reset Keras' name counters.
            import tf_keras

            tf_keras.backend.clear_session()
            getattr(transformers, "TFMobileBert" + head).from_pretrained(pt_dir, from_pt=True).save_pretrained(out)
    _BUILT[key] = out
    return out
