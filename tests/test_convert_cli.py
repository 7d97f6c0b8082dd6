"""`python -m conversion` end to end, in a subprocess as users run it."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conversion.convert import pt_to_tf
from conversion.formats import read_safetensors, read_tf_h5, write_safetensors
from conversion.weight_map import entries
from tests.helpers import tiny_config

ROOT = Path(__file__).resolve().parents[1]
ARCH = "MobileBertForMaskedLM"


def run_subprocess(*args, env=None):
    return subprocess.run([sys.executable, "-m", "conversion", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, timeout=120)


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run(*args):
    """The same command in this process (fast); test_pt_to_tf_and_back and the verify test use a real subprocess."""
    import contextlib
    import io

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


@pytest.fixture
def pt_dir(tmp_path):
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


def test_pt_to_tf_and_back(tmp_path, pt_dir):
    before = snapshot(pt_dir)
    r = run_subprocess("pt-to-tf", pt_dir, tmp_path / "tf", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and "tf_model.h5" in r.stdout and ARCH in r.stdout
    assert sorted(os.listdir(tmp_path / "tf")) == ["config.json", "tf_model.h5", "tokenizer_config.json", "vocab.txt"]
    assert (tmp_path / "tf" / "vocab.txt").read_text() == "[PAD]\n[UNK]\nhello\n"
    config = tiny_config()
    source = read_safetensors(pt_dir / "model.safetensors")
    tf = read_tf_h5(tmp_path / "tf" / "tf_model.h5")
    expected = pt_to_tf(source, config, ARCH)
    assert set(tf) == set(expected) and all(np.array_equal(tf[k], expected[k]) for k in tf)
    # back, from the single h5 file
    r = run_subprocess("tf-to-pt", tmp_path / "tf" / "tf_model.h5", tmp_path / "pt", "--quiet")
    assert r.returncode == 0, r.stderr
    back = read_safetensors(tmp_path / "pt" / "model.safetensors")
    assert set(back) == set(source) and all(np.array_equal(back[k], source[k]) for k in back)
    assert snapshot(pt_dir) == before  # the source is never touched


def test_refuses_to_overwrite_and_force_dtype(tmp_path, pt_dir):
    dst = tmp_path / "tf"
    assert run("pt-to-tf", pt_dir, dst, "--quiet").returncode == 0
    written = snapshot(dst)
    r = run("pt-to-tf", pt_dir, dst, "--quiet", "--dtype", "float16")
    assert r.returncode == 1 and "--force" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert snapshot(dst) == written
    r = run("pt-to-tf", pt_dir, dst, "--quiet", "--dtype", "float16", "--force")
    assert r.returncode == 0, r.stderr
    tf = read_tf_h5(dst / "tf_model.h5")
    assert {v.dtype for v in tf.values()} == {np.dtype(np.float16)}
    r = run("tf-to-pt", dst, tmp_path / "pt", "--quiet", "--dtype", "bfloat16")
    assert r.returncode == 0, r.stderr
    assert "bfloat16" in r.stdout
    assert {str(v.dtype) for v in read_safetensors(tmp_path / "pt" / "model.safetensors").values()} == {"bfloat16"}


def test_failures_leave_nothing_and_say_why(tmp_path, pt_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_bytes((pt_dir / "config.json").read_bytes())
    weights = read_safetensors(pt_dir / "model.safetensors")
    write_safetensors(bad / "model.safetensors", {**weights, "cls.extra.weight": np.zeros(3, np.float32)})
    dst = tmp_path / "out"
    r = run("pt-to-tf", bad, dst, "--quiet")
    assert r.returncode == 1 and "cls.extra.weight" in r.stderr and "Traceback" not in r.stderr
    assert not dst.exists() or not os.listdir(dst)
    r = run("pt-to-tf", pt_dir, tmp_path / "out2", "--dtype", "bfloat16", "--quiet")
    assert r.returncode == 1 and "bfloat16" in r.stderr and not (tmp_path / "out2").exists()
    r = run("pt-to-tf", pt_dir, pt_dir, "--quiet", "--force")
    assert r.returncode == 1 and "source" in r.stderr
    (bad / "config.json").unlink()
    r = run("pt-to-tf", bad, dst, "--quiet")
    assert r.returncode == 1 and "config.json" in r.stderr
    r = run("tf-to-pt", tmp_path / "nowhere", dst, "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "config.json").write_bytes((pt_dir / "config.json").read_bytes())
    data = (pt_dir / "model.safetensors").read_bytes()
    (tmp_path / "cut" / "model.safetensors").write_bytes(data[: len(data) // 3])
    r = run("pt-to-tf", tmp_path / "cut", dst, "--quiet")
    assert r.returncode == 1 and "model.safetensors is not a valid safetensors file" in r.stderr
    assert run("bogus", pt_dir, dst).returncode == 2  # argparse: usage error


def test_verify_runs_both_frameworks(tmp_path, pt_dir):
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    r = run_subprocess("pt-to-tf", pt_dir, tmp_path / "tf", "--quiet", "--verify")
    assert r.returncode == 0, r.stderr
    assert "verified: PyTorch and TF logits agree" in r.stdout


def test_hub_repo_id_source_from_the_local_cache(tmp_path, pt_dir):
    # A repo id resolves through huggingface_hub's cache (offline here): lay out a cached snapshot by hand.
    commit = "0" * 40
    repo = tmp_path / "hub" / "models--someone--tiny-mobilebert"
    snapshot_dir = repo / "snapshots" / commit
    snapshot_dir.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        (snapshot_dir / name).write_bytes((pt_dir / name).read_bytes())
    r = run_subprocess("pt-to-tf", "someone/tiny-mobilebert", tmp_path / "tf", "--quiet",
                       env={"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "tf")) == ["config.json", "tf_model.h5", "vocab.txt"]
    r = run_subprocess("pt-to-tf", "someone/absent-model", tmp_path / "tf2", "--quiet",
                       env={"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "tf2").exists()
