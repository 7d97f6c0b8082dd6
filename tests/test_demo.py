"""`mobilebert demo` end to end in a subprocess: the random-weight fallback when the hub repo cannot
be had, a local checkpoint with the real vocabulary, and a bad local path (an error, never random)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.models import SHARED_VOCAB

ROOT = Path(__file__).resolve().parents[1]
TINY_PRESET = dict(hidden_size=128, embedding_size=64, intra_bottleneck_size=64, num_hidden_layers=4,
                   intermediate_size=128, num_feedforward_networks=2)  # the demo's "mobilebert-tiny"


def demo(*args, tmp_path, timeout=300):
    # An empty hub cache of our own: a cached google/mobilebert-uncased must not turn the fallback off.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home"),
           "HF_HUB_CACHE": str(tmp_path / "hf-home" / "hub")}
    return subprocess.run([sys.executable, "-m", "mobilebert_cli", "demo", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)


def relative_difference(stdout: str) -> float:
    match = re.search(r"max relative difference PyTorch vs Keras = ([0-9.e+-]+)", stdout)
    assert match, stdout
    return float(match.group(1))


def top5(stdout: str, framework: str) -> list:
    match = re.search(rf"^{framework}\s+top-5 for \[MASK\] at position \d+: (\[.*\])$", stdout, re.MULTILINE)
    assert match, stdout
    return ast.literal_eval(match.group(1))


def test_unreachable_hub_falls_back_to_random_weights_and_frameworks_agree(tmp_path):
    out = demo("--preset", "mobilebert-tiny", tmp_path=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "RANDOM weights (preset 'mobilebert-tiny', seed 0)" in out.stdout
    assert "hub repo 'google/mobilebert-uncased' cannot be had (offline mode is on" in out.stdout
    assert relative_difference(out.stdout) <= 1e-5
    pt, tf = top5(out.stdout, "PyTorch"), top5(out.stdout, "Keras")
    assert pt == tf and len(pt) == 5 and all(isinstance(i, int) for i in pt)


def test_local_checkpoint_with_the_real_vocabulary_prints_tokens(tmp_path):
    if not SHARED_VOCAB.is_file():
        pytest.skip(f"the real vocabulary {SHARED_VOCAB} is absent (it sits in ../shared/data next to the repository)")
    torch = pytest.importorskip("torch")
    from mobilebert_common import MobileBertConfig, MobileBertTokenizer
    from mobilebert_pt import MobileBertForMaskedLM

    torch.manual_seed(1)
    model_dir = tmp_path / "tiny-mobilebert"
    MobileBertForMaskedLM(MobileBertConfig(**TINY_PRESET)).save_pretrained(model_dir)
    MobileBertTokenizer(str(SHARED_VOCAB)).save_pretrained(model_dir)
    out = demo("--model", str(model_dir), tmp_path=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"PyTorch: MobileBertForMaskedLM with the weights of {model_dir}" in out.stdout
    assert "RANDOM" not in out.stdout
    assert relative_difference(out.stdout) <= 1e-5
    pt, tf = top5(out.stdout, "PyTorch"), top5(out.stdout, "Keras")
    vocab = SHARED_VOCAB.read_text(encoding="utf-8").split("\n")
    assert pt == tf and len(pt) == 5 and all(isinstance(t, str) and t in vocab for t in pt)
    # the sentence's [MASK] sits at position 6: [CLS] the capital of france is [MASK] . [SEP]
    assert "top-5 for [MASK] at position 6:" in out.stdout


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d, "config.json not found in directory"),  # an empty directory
        (lambda d: d / "missing" / "dir", "is neither an existing local directory nor a hub repo id"),
        (lambda d: (d / "config.json").write_text('{"hidden_size": 64, "embedding_size": 32, "intra_bottleneck_size": 32}') and d,
         "no PyTorch weights"),
    ],
    ids=["empty-dir", "missing-path", "config-without-weights"],
)
def test_bad_local_path_is_an_error_not_random_weights(make, message, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    out = demo("--model", str(make(model)), tmp_path=tmp_path, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert message in out.stderr and out.stderr.startswith("mobilebert demo: error:")
    assert "RANDOM" not in out.stdout + out.stderr and "Traceback" not in out.stderr
