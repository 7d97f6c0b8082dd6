"""The framework-free parts must import neither torch nor tensorflow (DESIGN.md)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_common_and_conversion_import_no_framework():
    code = (
        "import sys, importlib, pkgutil\n"
        "import mobilebert_common, conversion\n"
        "for pkg in (mobilebert_common, conversion):\n"
        "    for mod in pkgutil.iter_modules(pkg.__path__):\n"
        "        if 'tf1' in mod.name or mod.name in ('__main__', 'verify'):\n"
        "            continue\n"
        "        importlib.import_module(pkg.__name__ + '.' + mod.name)\n"
        "bad = sorted(m for m in ('torch', 'tensorflow', 'tf_keras', 'keras', 'transformers') if m in sys.modules)\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
