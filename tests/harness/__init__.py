"""The tests' shared harness: helpers that more than one test module uses (fixtures are in tests/conftest.py).

models.py      tiny configs, random inputs and weights, one adapter per framework (build, run)
pipelines.py   tiny vocabulary, tokenizer and per-framework pipeline adapters
reference.py   checkpoints written by transformers (the reference), built once per session
golden.py      the golden Keras-on-CPU outputs (`python3 -m tests.harness.golden` rewrites them)
conversion.py  random PT-layout weights, exact dict comparison, the converter CLI run in-process
cli.py         the mobilebert CLI's environment and in-process pipeline runs
tokenization.py, hub.py, imports.py: the tokenizer corpus, the hub cache layout, the import graph
train.py       tiny checkpoints and learnable toy data for the fine-tuning tests
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
