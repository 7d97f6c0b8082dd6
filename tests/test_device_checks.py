"""benchmarks/device_checks.sh, the one-call GPU checks: its refusals here (the run itself needs the wheel kit
from `fetch` and, for its figures, a GPU; `DRY=1 ... run` checks the whole flow on a CPU)."""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "device_checks.sh")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def script(*args, **env):
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def test_usage_names_the_two_verbs():
    done = script("install")
    assert done.returncode == 2
    assert "fetch|run" in done.stderr


def test_run_without_the_kit_says_to_fetch_and_carry_it(tmp_path):
    out = tmp_path / "out"
    done = script("run", DEVICE_KIT=str(tmp_path / "missing"), OUT=str(out))
    assert done.returncode == 1
    assert "run 'fetch' first and carry" in done.stderr
    assert not (out / "gpu-tests.txt").exists()  # nothing ran
