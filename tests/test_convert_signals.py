"""Signals during `python -m conversion`: SIGTERM, SIGHUP and SIGINT at chosen moments leave DST absent,
complete-old or complete-new, no staging or temporary file anywhere, and exit 128 + the signal's number
with one line; what a SIGKILL leaves behind is cleaned up by the next run into that destination.

Each case runs in a subprocess through HARNESS, which wraps a function the conversion calls so that the
process signals itself at the k-th call of a moment: the package itself has no test hooks.
"""

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mobilebert_common.staging import staged_directory
from tests.harness import ROOT
from tests.harness.conversion import run

HARNESS = r"""
import os, signal, sys

# The dispositions of an interactive shell, whatever the test runner inherited (a background job ignores SIGINT).
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
moment, k, signum, dst = sys.argv[1], int(sys.argv[2]), getattr(signal, sys.argv[3]), os.path.abspath(sys.argv[4])
seen = []

def reached(what):
    if what == moment:
        seen.append(what)
        if len(seen) == k:
            os.kill(os.getpid(), signum)

import h5py
create_dataset = h5py.Group.create_dataset

def create_dataset_and_signal(self, *args, **kwargs):  # "h5-dataset": a tf_model.h5 half written
    out = create_dataset(self, *args, **kwargs)
    reached("h5-dataset")
    return out

h5py.Group.create_dataset = create_dataset_and_signal

def signalled(rename):
    def wrapper(source, target, *args, **kwargs):
        target = os.path.abspath(target)
        if target == dst or os.path.dirname(target) == dst:  # "into-dst": the final rename, or one of the swap
            reached("into-dst")
        elif os.path.dirname(target).endswith(".partial") and not os.path.basename(target).startswith("."):
            reached("into-stage")  # a written file placed into a staging directory
        return rename(source, target, *args, **kwargs)
    return wrapper

os.replace, os.rename = signalled(os.replace), signalled(os.rename)
from conversion.__main__ import main
sys.exit(main(sys.argv[5:]))
"""


def convert_signalled(moment: str, k: int, signame: str, *args):
    """`python -m conversion *args` that sends itself `signame` at the k-th `moment` (into-dst: args[2] is DST)."""
    return subprocess.run([sys.executable, "-c", HARNESS, moment, str(k), signame, str(args[2]), *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                          timeout=120)


def files(directory: Path) -> dict:
    """The visible files of a directory and their hashes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir()) if not p.name.startswith(".")}


def leftovers(root: Path) -> list:
    """Staging directories and temporary files (all dot names) anywhere under root."""
    return sorted(str(p) for p in root.rglob(".*"))


def interrupted_line(signum: int) -> str:
    return f"mobilebert-convert: interrupted ({signal.Signals(signum).name}); nothing half-written was left"


# name: (source, moment, k, existing destination, what DST then holds)
CASES = {
    "new-inside-h5": ("pt", "h5-dataset", 3, False, "absent"),
    "new-between-shards": ("tf", "into-stage", 2, False, "absent"),  # shard 1 placed, shard 2 not
    "new-before-rename": ("pt", "into-dst", 1, False, "new"),  # held back until DST is complete
    "force-inside-h5": ("pt", "h5-dataset", 3, True, "old"),
    "force-before-config": ("pt", "into-stage", 2, True, "old"),  # the weights are staged, config.json not yet
    "force-during-swap": ("pt", "into-dst", 3, True, "new"),  # two files swapped in: held back until all are
}
SIGNAL_CASES = ([("SIGTERM", case) for case in CASES]
                + [(name, case) for name in ("SIGHUP", "SIGINT") for case in ("new-inside-h5", "force-during-swap")])


@pytest.mark.parametrize("signame,case", SIGNAL_CASES, ids=[f"{s}-{c}" for s, c in SIGNAL_CASES])
def test_signal_leaves_old_or_new_and_nothing_else(tmp_path, pt_dir, signame, case):
    source, moment, k, existing, expected = CASES[case]
    if source == "pt":
        args = ["pt-to-tf", pt_dir]
    else:
        assert run("pt-to-tf", pt_dir, tmp_path / "tf", "--quiet").returncode == 0
        args = ["tf-to-pt", tmp_path / "tf", "--max-shard-size", "20KB"]  # several shards and an index
    dst = tmp_path / "out"
    options = ["--quiet", "--force", "--dtype", "float16"] if existing else ["--quiet"]
    reference = tmp_path / "reference"  # what the conversion writes when nothing stops it
    if existing:
        for d in (dst, reference):
            assert run(*args[:2], d, *args[2:], "--quiet").returncode == 0
            (d / "notes.txt").write_text("mine")
    assert run(*args[:2], reference, *args[2:], *options).returncode == 0
    old = files(dst) if existing else None
    assert files(reference) != old

    r = convert_signalled(moment, k, signame, *args[:2], dst, *args[2:], *options)
    signum = getattr(signal, signame)
    assert r.returncode == 128 + signum, r.stderr
    assert r.stderr.strip().splitlines() == [interrupted_line(signum)] and r.stdout == ""
    if expected == "absent":
        assert not dst.exists()
    else:
        assert files(dst) == (old if expected == "old" else files(reference))
    assert leftovers(tmp_path) == []


def test_external_sigterm_mid_write(tmp_path, pt_dir):
    """SIGTERM from outside (as `timeout` or `kill` send it) once the staging directory exists."""
    dst = tmp_path / "out"
    assert run("pt-to-tf", pt_dir, dst, "--quiet").returncode == 0
    old = files(dst)
    assert run("pt-to-tf", pt_dir, tmp_path / "reference", "--quiet", "--dtype", "float16").returncode == 0
    new = files(tmp_path / "reference")
    command = [sys.executable, "-m", "conversion", "pt-to-tf", str(pt_dir), str(dst), "--quiet", "--force", "--dtype", "float16"]
    p = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while p.poll() is None and not leftovers(dst) and time.monotonic() < deadline:
        time.sleep(0.001)
    p.send_signal(signal.SIGTERM)
    _, stderr = p.communicate(timeout=60)
    assert (p.returncode, files(dst)) in [(143, old), (143, new), (0, new)], stderr
    assert "Traceback" not in stderr and leftovers(tmp_path) == []


def test_sigkill_leftover_is_removed_by_the_next_run(tmp_path, pt_dir):
    dst = tmp_path / "new" / "out"
    r = convert_signalled("h5-dataset", 3, "SIGKILL", "pt-to-tf", pt_dir, dst, "--quiet")
    assert r.returncode == -signal.SIGKILL and not dst.exists()
    (stale,) = [p for p in leftovers(tmp_path) if Path(p).parent == tmp_path]  # in DST's nearest existing ancestor
    assert stale.endswith(".partial") and os.listdir(stale)  # the killed run's staging directory, a half h5 in it
    r = run("pt-to-tf", pt_dir, dst, "--quiet")
    assert r.returncode == 0, r.stderr
    assert f"mobilebert-convert: warning: removed {stale}, which a killed conversion into {dst} had left" in r.stderr
    assert leftovers(tmp_path) == []
    assert sorted(files(dst)) == ["config.json", "tf_model.h5", "tokenizer_config.json", "vocab.txt"]


def test_sigkill_during_the_swap_is_undone_by_the_next_run(tmp_path, pt_dir):
    dst = tmp_path / "out"
    assert run("pt-to-tf", pt_dir, dst, "--quiet").returncode == 0
    old = files(dst)
    assert run("pt-to-tf", pt_dir, tmp_path / "reference", "--quiet", "--dtype", "float16").returncode == 0
    new = files(tmp_path / "reference")
    r = convert_signalled("into-dst", 3, "SIGKILL", "pt-to-tf", pt_dir, dst, "--quiet", "--force", "--dtype", "float16")
    assert r.returncode == -signal.SIGKILL
    assert files(dst) not in (old, new) and len(leftovers(dst)) > 0  # torn: two files swapped, one set aside
    # The next run puts the old files back before it stages; stopped by SIGTERM, it leaves exactly those.
    r = convert_signalled("h5-dataset", 3, "SIGTERM", "pt-to-tf", pt_dir, dst, "--quiet", "--force", "--dtype", "float16")
    assert r.returncode == 143, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("mobilebert-convert: warning: removed ") and lines[1] == interrupted_line(15)
    assert files(dst) == old and leftovers(tmp_path) == []
    assert run("pt-to-tf", pt_dir, dst, "--quiet", "--force", "--dtype", "float16").returncode == 0
    assert files(dst) == new and leftovers(tmp_path) == []


def test_staging_of_live_or_other_owners_is_kept(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = socket.gethostname()
    names = {"dead": f".out.{host}-{ended.pid}.abcd_123.partial",
             "live": f".out.{host}-{live.pid}.abcd_123.partial",  # a conversion into out, running now
             "own": f".out.{host}-{os.getpid()}.abcd_123.partial",  # another thread of this process
             "other host": f".out.{host}x-{ended.pid}.abcd_123.partial",  # a pid that means nothing here
             "other destination": f".outer.{host}-{ended.pid}.abcd_123.partial"}
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"half")
    try:
        with pytest.warns(UserWarning, match="removed .*" + names["dead"]):
            with staged_directory(tmp_path / "out") as stage:
                Path(stage, "a.txt").write_text("new")
    finally:
        live.kill()
        live.wait()
    assert sorted(os.listdir(tmp_path)) == sorted([n for what, n in names.items() if what != "dead"] + ["out"])
    assert os.listdir(tmp_path / "out") == ["a.txt"]


ATOMIC_WRITE = r"""
import os, signal, sys
from mobilebert_common.files import atomic_path

signal.signal(signal.SIGTERM, signal.SIG_DFL)
if sys.argv[2] == "own-handler":  # an application's handler is left alone: the write completes
    signal.signal(signal.SIGTERM, lambda signum, frame: print("handled"))
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "w") as f:
        f.write("half")
        os.kill(os.getpid(), signal.SIGTERM)
        f.write(" and the rest")
print("written")
"""


@pytest.mark.parametrize("handler", ["default", "own-handler"])
def test_atomic_write_outside_the_cli(tmp_path, handler):
    """In a user's program a SIGTERM during a write still ends the process by SIGTERM, without the temporary file;
    a SIGTERM handler of the program's own is not replaced."""
    r = subprocess.run([sys.executable, "-c", ATOMIC_WRITE, str(tmp_path / "a.txt"), handler], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    if handler == "default":
        assert r.returncode == -signal.SIGTERM and r.stdout == "" and os.listdir(tmp_path) == []
    else:
        assert r.returncode == 0 and r.stdout == "handled\nwritten\n"
        assert os.listdir(tmp_path) == ["a.txt"] and (tmp_path / "a.txt").read_text() == "half and the rest"


def test_an_undo_cut_short_is_resumed(tmp_path, pt_dir, monkeypatch):
    """The next run's undo of a killed swap, itself interrupted halfway, is finished by the run after it."""
    import mobilebert_common.staging as staging

    dst = tmp_path / "out"
    assert run("pt-to-tf", pt_dir, dst, "--quiet").returncode == 0
    old = files(dst)
    r = convert_signalled("into-dst", 3, "SIGKILL", "pt-to-tf", pt_dir, dst, "--quiet", "--force", "--dtype", "float16")
    assert r.returncode == -signal.SIGKILL and files(dst) != old
    real_replace, calls = os.replace, []

    def replace(a, b):
        calls.append(b)
        if len(calls) == 3:  # config.json is back, tf_model.h5 not yet
            raise KeyboardInterrupt
        return real_replace(a, b)

    monkeypatch.setattr(staging.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        with staged_directory(dst):
            pass
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="removed"), pytest.raises(RuntimeError):
        with staged_directory(dst):
            raise RuntimeError("stopped before writing")
    assert files(dst) == old and leftovers(tmp_path) == []
