"""Shared pieces of the conversion tests: random PT-layout weights, exact comparison, the CLI in-process."""

from __future__ import annotations

import contextlib
import hashlib
import io
from pathlib import Path

import numpy as np

from conversion.formats import write_safetensors
from mobilebert_common.weights import entries
from tests.harness.models import tiny_config

ARCH = "MobileBertForMaskedLM"  # the head of write_pt_dir's checkpoint


def random_pt(config, arch, seed=0, dtype=np.float32):
    """Random PT-layout weights for every tensor of the table (the tied decoder left out, as PT files do)."""
    rng = np.random.default_rng(seed)
    return {e.pt_name: rng.standard_normal(e.shape).astype(dtype) for e in entries(config, arch) if e.transform != "tie"}


def assert_same(a: dict, b: dict):
    assert set(a) == set(b), set(a) ^ set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and np.array_equal(a[k], b[k]), k


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run(*args):
    """The same command in this process (fast); test_pt_to_tf_and_back and the verify test use a real subprocess."""
    from conversion.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit:  # argparse usage errors
            code = exit.code
    return Result(code, out.getvalue(), err.getvalue())


def snapshot(directory: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def write_pt_dir(tmp_path: Path) -> Path:
    """tmp_path/src: a tiny masked-LM checkpoint (config, model.safetensors, vocab.txt, tokenizer_config.json)."""
    config = tiny_config().copy(architectures=[ARCH])
    rng = np.random.default_rng(0)
    weights = {e.pt_name: rng.standard_normal(e.shape).astype(np.float32)
               for e in entries(config, ARCH) if e.transform != "tie"}
    src = tmp_path / "src"
    config.save_pretrained(src)
    write_safetensors(src / "model.safetensors", weights, {"format": "pt"})
    (src / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    (src / "tokenizer_config.json").write_text('{"do_lower_case": true}')
    return src
