"""The README's examples run as written: its Python blocks in order, then its commands on the local checkpoint.

They run offline in a fresh directory, on the small local checkpoint the README's first block makes
(MODEL = "tiny-mobilebert"), in a subprocess, as a user would paste them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

pytest.importorskip("torch")
pytest.importorskip("tensorflow")


def blocks(language: str) -> list:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def offline_env() -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join([str(README.parent), env.get("PYTHONPATH", "")])
    return env


def test_readme_python_examples_and_commands_run(tmp_path):
    python = blocks("python")
    assert len(python) >= 6 and 'MODEL = "tiny-mobilebert"' in python[0]
    script = tmp_path / "readme_examples.py"
    script.write_text("\n\n".join(python), encoding="utf-8")
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=offline_env(), capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "my-classifier" / "model.safetensors").is_file()
    assert (tmp_path / "tf-copy" / "tf_model.h5").is_file() and (tmp_path / "served" / "saved_model.pb").is_file()

    # The commands that use the local checkpoint (the set-up and GPU commands install things: not here).
    commands = [line for block in blocks("bash") for line in block.splitlines() if "tiny-mobilebert" in line or "tiny-tf" in line]
    assert len(commands) >= 5
    if shutil.which("mobilebert") is None:
        commands = [c.replace("| mobilebert ", f"| {sys.executable} -m mobilebert_cli ") for c in commands]
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=offline_env(), capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        if "mobilebert" in command and "run" in command:
            assert done.stdout.strip().startswith("[{") and '"token_str"' in done.stdout
    assert (tmp_path / "tiny-tf" / "tf_model.h5").is_file() and (tmp_path / "tiny-pt" / "model.safetensors").is_file()
    assert (tmp_path / "tiny-bin" / "pytorch_model.bin").is_file()
