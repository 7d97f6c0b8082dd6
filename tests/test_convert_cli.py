"""`python -m conversion` end to end, in a subprocess as users run it."""

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from conversion.convert import pt_to_tf
from conversion.formats import read_safetensors, read_tf_h5, write_safetensors
from tests.harness import ROOT
from tests.harness.conversion import ARCH, run, snapshot
from tests.harness.models import tiny_config

TOKENIZER = ["tokenizer_config.json", "vocab.txt"]  # what pt_dir holds besides config and weights


def run_subprocess(*args, env=None, command=None):
    command = command or [sys.executable, "-m", "conversion"]
    return subprocess.run([*command, *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, timeout=120)


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


def test_progress_bar_on_stderr_unless_quiet(tmp_path, pt_dir):
    r = run_subprocess("pt-to-tf", pt_dir, tmp_path / "tf")
    assert r.returncode == 0, r.stderr
    assert "converting" in r.stderr and "/4" in r.stderr  # tqdm's bar: "converting: 50%|... 2/4 [...]"
    assert "converting" not in r.stdout and "wrote" in r.stdout
    r = run_subprocess("tf-to-pt", tmp_path / "tf", tmp_path / "pt", "--quiet")
    assert r.returncode == 0 and r.stderr == ""


def test_installed_console_script(tmp_path, pt_dir):
    script = shutil.which("mobilebert-convert")
    if script is None:
        pytest.skip("the mobilebert-convert console script is not installed (pip install -e . puts it on PATH)")
    r = run_subprocess("--help", command=[script])
    assert r.returncode == 0 and "pt-to-tf" in r.stdout and "--max-shard-size" in r.stdout
    r = run_subprocess("pt-to-tf", pt_dir, tmp_path / "tf", "--quiet", command=[script])
    assert r.returncode == 0, r.stderr
    assert set(read_tf_h5(tmp_path / "tf" / "tf_model.h5")) == set(pt_to_tf(read_safetensors(pt_dir / "model.safetensors"),
                                                                             tiny_config(), ARCH))
    r = run_subprocess("pt-to-tf", pt_dir, tmp_path / "tf", "--quiet", command=[script])
    assert r.returncode == 1 and r.stderr.startswith("mobilebert-convert: error:") and "--force" in r.stderr


@pytest.mark.parametrize("direction,src", [("pt-to-tf", "someone/absent"), ("tf-to-pt", "someone/absent"),
                                           ("tf1-to-pt", "nowhere/x.ckpt")])
def test_unreachable_hub_fails_fast_with_one_line(tmp_path, direction, src):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_CACHE=str(tmp_path / "empty-cache"))  # port 9: nothing listens
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "conversion", direction, src, str(tmp_path / "out")], cwd=ROOT,
                       capture_output=True, text=True, env=env, timeout=120)
    elapsed = time.monotonic() - start
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert elapsed < 15, f"took {elapsed:.1f} s"  # huggingface_hub's own retries took ~23 s per file
    if direction.startswith("tf1"):  # TF1 checkpoints are local files: the hub is not asked at all
        assert "no TF1 checkpoint at nowhere/x.ckpt" in lines[0] and "not from the hub" in lines[0]
    else:
        assert "http://127.0.0.1:9 could not be reached" in lines[0] and "someone/absent" in lines[0]
    assert not (tmp_path / "out").exists()


def test_pt_to_tf_and_back_import_neither_torch_nor_tensorflow(tmp_path, pt_dir):
    code = (
        "import sys\n"
        "from conversion.__main__ import main\n"
        f"assert main(['pt-to-tf', {str(pt_dir)!r}, {str(tmp_path / 'tf')!r}, '--quiet']) == 0\n"
        f"assert main(['tf-to-pt', {str(tmp_path / 'tf' / 'tf_model.h5')!r}, {str(tmp_path / 'pt')!r}, '--quiet']) == 0\n"
        "print(sorted(m for m in ('torch', 'tensorflow', 'tf_keras', 'jax') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
    back = read_safetensors(tmp_path / "pt" / "model.safetensors")
    source = read_safetensors(pt_dir / "model.safetensors")
    assert set(back) == set(source) and all(np.array_equal(back[k], source[k]) for k in source)


def test_shards_and_bin_through_the_cli(tmp_path, pt_dir):
    from conversion.formats import read_pytorch_bin, read_sharded_safetensors

    assert run("pt-to-tf", pt_dir, tmp_path / "tf", "--quiet").returncode == 0
    source = read_safetensors(pt_dir / "model.safetensors")
    r = run("tf-to-pt", tmp_path / "tf", tmp_path / "sharded", "--quiet", "--max-shard-size", "20KB")
    assert r.returncode == 0, r.stderr
    names = sorted(os.listdir(tmp_path / "sharded"))
    shards = [n for n in names if n.startswith("model-")]
    assert len(shards) > 2 and "model.safetensors.index.json" in names and "model.safetensors" not in names
    assert f"(+ {len(shards)} shards)" in r.stdout
    back = read_sharded_safetensors(tmp_path / "sharded" / "model.safetensors.index.json")
    assert set(back) == set(source) and all(np.array_equal(back[k], source[k]) for k in source)
    # ...and a sharded source converts back (pt-to-tf from the index), bit-exact.
    assert run("pt-to-tf", tmp_path / "sharded", tmp_path / "tf2", "--quiet").returncode == 0
    assert (tmp_path / "tf2" / "tf_model.h5").read_bytes() == (tmp_path / "tf" / "tf_model.h5").read_bytes()
    # Everything fits in one shard: plain model.safetensors, as the hub writes it.
    assert run("tf-to-pt", tmp_path / "tf", tmp_path / "one", "--quiet", "--max-shard-size", "1GB").returncode == 0
    assert sorted(os.listdir(tmp_path / "one")) == ["config.json", "model.safetensors", *TOKENIZER]
    r = run("tf-to-pt", tmp_path / "tf", tmp_path / "bad", "--quiet", "--max-shard-size", "lots")
    assert r.returncode == 1 and "max_shard_size='lots'" in r.stderr and not (tmp_path / "bad").exists()
    r = run("pt-to-tf", pt_dir, tmp_path / "bad", "--quiet", "--format", "bin")
    assert r.returncode == 1 and "tf_model.h5" in r.stderr and not (tmp_path / "bad").exists()

    pytest.importorskip("torch")
    r = run("tf-to-pt", tmp_path / "tf", tmp_path / "bin", "--quiet", "--format", "bin", "--dtype", "bfloat16")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "bin")) == ["config.json", "pytorch_model.bin", *TOKENIZER]
    back = read_pytorch_bin(tmp_path / "bin" / "pytorch_model.bin")
    assert all(str(v.dtype) == "bfloat16" and np.array_equal(v, source[k].astype(v.dtype)) for k, v in back.items())
    # --force over a sharded directory with one file: the stale shards and index go.
    r = run("tf-to-pt", tmp_path / "tf", tmp_path / "sharded", "--quiet", "--force")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "sharded")) == ["config.json", "model.safetensors", *TOKENIZER]


@pytest.mark.parametrize("args", [("tf-to-pt",), ("tf-to-pt", "--dtype", "float16"), ("pt-to-tf", "--dtype", "float16")])
def test_verify_in_each_direction(tmp_path, pt_dir, args):
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    direction, *options = args
    src = pt_dir
    if direction == "tf-to-pt":
        assert run("pt-to-tf", pt_dir, tmp_path / "tf", "--quiet").returncode == 0
        src = tmp_path / "tf"
    r = run(direction, src, tmp_path / "out", "--quiet", "--verify", *options)  # in-process: frameworks imported once
    assert r.returncode == 0, r.stderr
    assert "verified: PyTorch and TF logits agree" in r.stdout
    if options:
        assert "float16" in r.stdout.splitlines()[0]
