"""Golden outputs written by the Keras model on CPU, so machines without TensorFlow can compare.

GPU machines often have torch but no tensorflow. The fixture holds the Keras (TF CPU) outputs of
every head on every tiny config (logits, hidden states and attentions: OUTPUTS), for weights that
anyone can regenerate from a seed
(tests.harness.models.random_weights). Regenerate it after a deliberate numerical change with:

    python3 -m tests.harness.golden

and commit tests/fixtures/golden_tf_cpu.npz (about 200 kB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.harness.models import ARCHITECTURES, model_inputs, random_weights
from tests.harness.models import VARIANTS, tiny_config

GOLDEN_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "golden_tf_cpu.npz"
NUM_LABELS = 3
OUTPUTS = dict(output_hidden_states=True, output_attentions=True)  # what every run asks for


def golden_cases() -> list:
    """(architecture, variant): every head on the default config, every config on two heads."""
    cases = [(arch, "default") for arch in ARCHITECTURES]
    for variant in VARIANTS:
        if variant != "default":
            cases += [("MobileBertModel", variant), ("MobileBertForMaskedLM", variant)]
    return cases


def case_config(variant: str):
    return tiny_config(variant, num_labels=NUM_LABELS)


def case_key(architecture: str, variant: str, field: str) -> str:
    return f"{architecture}/{variant}/{field}"


def load_golden() -> dict:
    with np.load(GOLDEN_PATH) as data:
        return {k: data[k] for k in data.files}


def write_golden(path: Path = GOLDEN_PATH) -> int:
    from tests.harness.models import build_tf, run_tf

    arrays = {}
    for arch, variant in golden_cases():
        config = case_config(variant)
        model = build_tf(arch, config, random_weights(config, arch, "tf"))
        outputs = run_tf(model, model_inputs(config, arch), **OUTPUTS)
        for field, value in outputs.items():
            arrays[case_key(arch, variant, field)] = value.astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return len(arrays)


if __name__ == "__main__":
    count = write_golden()
    print(f"wrote {count} arrays to {GOLDEN_PATH}")
