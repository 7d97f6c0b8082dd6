"""`python -m conversion` when things go wrong: strict tensors, interruptions, overwrites. DST is always as before."""

import os
import shutil

import numpy as np
import pytest

from conversion.convert import pt_to_tf
from conversion.formats import read_safetensors, write_safetensors, write_tf_h5
from mobilebert_common.weights import tf_model_name
from tests.harness.models import tiny_config
from tests.harness.conversion import ARCH, run, snapshot


def listing(directory):
    return sorted(os.listdir(directory))


def bad_copy(tmp_path, pt_dir, name, weights):
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_bytes((pt_dir / "config.json").read_bytes())
    write_safetensors(d / "model.safetensors", weights, {"format": "pt"})
    return d


@pytest.mark.parametrize("problem", ["missing", "unexpected", "mismatched"])
def test_strict_tensors_exit_1_name_the_tensor_and_write_nothing(tmp_path, pt_dir, problem):
    weights = read_safetensors(pt_dir / "model.safetensors")
    name = "mobilebert.encoder.layer.1.ffn.0.output.dense.weight"
    if problem == "missing":
        del weights[name]
        expected = f"missing 1 tensor(s): {name}"
    elif problem == "unexpected":
        name = "mobilebert.encoder.layer.1.extra.weight"
        weights[name] = np.zeros(3, np.float32)
        expected = f"unexpected 1 tensor(s) that {ARCH} does not have: {name}"
    else:
        weights[name] = np.zeros((16, 5), np.float32)
        expected = f"{name} has shape (16, 5), the config implies (16, 24)"
    src = bad_copy(tmp_path, pt_dir, "bad", weights)
    parent = listing(tmp_path)
    r = run("pt-to-tf", src, tmp_path / "out", "--quiet")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert expected in r.stderr and r.stdout == ""
    assert listing(tmp_path) == parent  # no DST, no staging leftovers

    # The other direction: a tf_model.h5 with the same problem.
    if problem == "missing":
        tf = pt_to_tf(read_safetensors(pt_dir / "model.safetensors"), tiny_config(), ARCH)
        del tf["mobilebert/encoder/layer_._1/ffn.0/output/dense/kernel:0"]
        (tmp_path / "tf").mkdir()
        (tmp_path / "tf" / "config.json").write_bytes((pt_dir / "config.json").read_bytes())
        write_tf_h5(tmp_path / "tf" / "tf_model.h5", tf, model_name=tf_model_name(ARCH))
        r = run("tf-to-pt", tmp_path / "tf", tmp_path / "out", "--quiet")
        assert r.returncode == 1 and "missing 1 tensor(s): mobilebert/encoder/layer_._1/ffn.0/output/dense/kernel:0" in r.stderr
        assert not (tmp_path / "out").exists()


def interrupt_config_write(monkeypatch):
    """KeyboardInterrupt when config.json is written, after the weights file is complete."""
    import conversion.directories as checkpoint

    def interrupted(path, text):
        assert os.path.isfile(os.path.join(os.path.dirname(path), "tf_model.h5"))  # the weights are already there
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "atomic_write_text", interrupted)


def test_interrupted_conversion_leaves_no_destination(tmp_path, pt_dir, monkeypatch):
    interrupt_config_write(monkeypatch)
    before = listing(tmp_path)
    r = run("pt-to-tf", pt_dir, tmp_path / "new" / "tf", "--quiet")  # a parent that does not exist either
    assert r.returncode == 130 and "interrupted" in r.stderr
    assert listing(tmp_path) == before  # no tmp_path/new, no .partial directory
    monkeypatch.undo()
    assert run("pt-to-tf", pt_dir, tmp_path / "new" / "tf", "--quiet").returncode == 0  # a rerun needs no --force
    assert listing(tmp_path / "new" / "tf") == ["config.json", "tf_model.h5", "tokenizer_config.json", "vocab.txt"]


def test_interrupted_force_keeps_the_old_files(tmp_path, pt_dir, monkeypatch):
    dst = tmp_path / "tf"
    assert run("pt-to-tf", pt_dir, dst, "--quiet").returncode == 0
    (dst / "notes.txt").write_text("mine")
    old = snapshot(dst)
    interrupt_config_write(monkeypatch)
    r = run("pt-to-tf", pt_dir, dst, "--quiet", "--force", "--dtype", "float16")
    assert r.returncode == 130
    assert snapshot(dst) == old  # byte-identical, and no staging directory inside


def test_interruption_while_moving_into_place_is_undone(tmp_path, pt_dir, monkeypatch):
    import mobilebert_common.staging as staging

    dst = tmp_path / "pt"
    assert run("pt-to-tf", pt_dir, tmp_path / "tf", "--quiet").returncode == 0
    assert run("tf-to-pt", tmp_path / "tf", dst, "--quiet", "--max-shard-size", "20KB").returncode == 0
    old = snapshot(dst)
    real_replace, calls = os.replace, []

    def replace(a, b):
        calls.append((a, b))
        if len(calls) == 5:  # the swap is under way: some old files set aside, some new ones placed
            raise KeyboardInterrupt
        return real_replace(a, b)

    monkeypatch.setattr(staging.os, "replace", replace)
    r = run("tf-to-pt", tmp_path / "tf", dst, "--quiet", "--force")  # one model.safetensors over the shards
    assert r.returncode == 130 and len(calls) > 5  # the undo ran (through the same os.replace)
    assert snapshot(dst) == old
    monkeypatch.undo()
    assert run("tf-to-pt", tmp_path / "tf", dst, "--quiet", "--force").returncode == 0
    assert listing(dst) == ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]


def test_existing_files_and_stale_weights_need_force(tmp_path, pt_dir):
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "notes.txt").write_text("mine")
    assert run("pt-to-tf", pt_dir, dst, "--quiet").returncode == 0  # no conflict: written beside notes.txt
    assert listing(dst) == ["config.json", "notes.txt", "tf_model.h5", "tokenizer_config.json", "vocab.txt"]
    # Stale PyTorch weights in DST would shadow a new file (loaders read model.safetensors first).
    pt_out = tmp_path / "pt"
    pt_out.mkdir()
    write_safetensors(pt_out / "model-00001-of-00002.safetensors", {"a": np.zeros(1, np.float32)})
    r = run("tf-to-pt", dst, pt_out, "--quiet")
    assert r.returncode == 1 and "model-00001-of-00002.safetensors" in r.stderr and "--force" in r.stderr
    assert listing(pt_out) == ["model-00001-of-00002.safetensors"]
    assert run("tf-to-pt", dst, pt_out, "--quiet", "--force").returncode == 0
    assert listing(pt_out) == ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
    assert oct(os.stat(pt_out / "model.safetensors").st_mode & 0o777) == oct(0o666 & ~_umask())  # not mkstemp's 0600


def _umask() -> int:
    from mobilebert_common.files import current_umask

    return current_umask()


def test_destination_may_not_be_or_lie_inside_the_source(tmp_path, pt_dir):
    source = snapshot(pt_dir)
    (tmp_path / "link").symlink_to(pt_dir)
    refused = {  # DST: what the one-line error says
        pt_dir / "tf": f"lies inside the source directory {pt_dir}",
        tmp_path / "link" / "deeper" / "tf": "lies inside the source directory",  # through a symbolic link
        tmp_path / "link": "is the source directory",
    }
    for dst, message in refused.items():
        for src in (pt_dir, pt_dir / "model.safetensors"):  # a directory or a weights file in it
            before = listing(tmp_path)
            r = run("pt-to-tf", src, dst, "--quiet", "--force")
            assert r.returncode == 1 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
            assert listing(tmp_path) == before and snapshot(pt_dir) == source  # nothing written anywhere


def test_source_inside_the_destination_only_where_force_would_not_replace_it(tmp_path, pt_dir):
    out = tmp_path / "out"
    held = out / "vocab.txt" / "ckpt"  # a directory named like a file the conversion replaces
    shutil.copytree(pt_dir, held)
    before = snapshot(held)
    r = run("pt-to-tf", held, out, "--quiet", "--force")
    assert r.returncode == 1 and f"the source {held} lies inside {out / 'vocab.txt'}" in r.stderr, r.stderr
    assert snapshot(held) == before and listing(out) == ["vocab.txt"]
    shutil.move(out / "vocab.txt", out / "models")  # anywhere else in DST it is left alone
    r = run("pt-to-tf", out / "models" / "ckpt", out, "--quiet", "--force")
    assert r.returncode == 0, r.stderr
    assert snapshot(out / "models" / "ckpt") == before
    assert listing(out) == ["config.json", "models", "tf_model.h5", "tokenizer_config.json", "vocab.txt"]
