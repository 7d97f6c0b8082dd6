"""`mobilebert` end to end in a subprocess: help, `run` over stdin for several tasks, errors on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mobilebert_pt import MobileBertForMaskedLM, MobileBertForQuestionAnswering
from tests.pipeline_helpers import VOCAB, config, have_own_tokenizer, write_vocab

ROOT = Path(__file__).resolve().parents[1]
needs_tokenizer = pytest.mark.skipif(not have_own_tokenizer(), reason="needs mobilebert_common.tokenization_fast")


def cli(*args, stdin=""):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "mobilebert_cli", *args], input=stdin, capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_help_explains_every_subcommand():
    out = cli("--help")
    assert out.returncode == 0
    assert "run" in out.stdout and "demo" in out.stdout
    run = cli("run", "--help")
    assert run.returncode == 0
    for flag in ("--task", "--model", "--framework", "--device", "--dtype", "--top-k", "--batch-size"):
        assert flag in run.stdout
    assert "question-answering reads JSON lines" in " ".join(run.stdout.split())
    demo = cli("demo", "--help")
    assert demo.returncode == 0 and "usage: mobilebert demo" in demo.stdout and "--model" in demo.stdout


def test_unknown_task_is_an_error_on_stderr():
    out = cli("run", "--task", "translate", "--model", "nowhere", stdin="hello\n")
    assert out.returncode == 1 and out.stdout == ""
    assert "unknown task 'translate'; known tasks:" in out.stderr and "fill-mask" in out.stderr


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    torch.manual_seed(0)
    mlm = MobileBertForMaskedLM(config()).eval()
    with torch.no_grad():
        mlm.cls.predictions.bias[VOCAB.index("paris")] = 30.0
    qa = MobileBertForQuestionAnswering(config()).eval()
    out = {}
    for name, model in (("mlm", mlm), ("qa", qa)):
        directory = tmp_path_factory.mktemp(name)
        model.save_pretrained(str(directory))
        write_vocab(directory)
        out[name] = str(directory)
    return out


@needs_tokenizer
def test_run_fill_mask_one_json_line_per_input(dirs):
    out = cli("run", "--task", "fill-mask", "--model", dirs["mlm"], "--device", "cpu", "--top-k", "2", "--batch-size", "2",
              stdin="The capital of France is [MASK].\nhello [MASK]\nworld [MASK] city\n")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 3 and all(len(r) == 2 for r in lines)
    assert lines[0][0]["sequence"] == "the capital of france is paris." and lines[1][0]["token_str"] == "paris"


@needs_tokenizer
def test_run_question_answering_reads_json_lines(dirs):
    line = json.dumps({"question": "where does john live ?", "context": "john lives in new york city ."})
    out = cli("run", "--task", "question-answering", "--model", dirs["qa"], stdin=line + "\n" + line + "\n")
    assert out.returncode == 0, out.stderr
    answers = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(answers) == 2 and answers[0] == answers[1]
    context = "john lives in new york city ."
    assert context[answers[0]["start"] : answers[0]["end"]] == answers[0]["answer"]


@needs_tokenizer
def test_run_bad_input_exits_non_zero(dirs):
    out = cli("run", "--task", "fill-mask", "--model", dirs["mlm"], stdin="no mask here\n")
    assert out.returncode == 1 and "no [MASK] token" in out.stderr
    out = cli("run", "--task", "question-answering", "--model", dirs["qa"], stdin='{"question": "where ?"}\n')
    assert out.returncode == 1 and "no context" in out.stderr
    out = cli("run", "--task", "question-answering", "--model", dirs["qa"], stdin="not json\n")
    assert out.returncode == 1 and "JSON" in out.stderr


def test_missing_model_directory_is_an_error():
    out = cli("run", "--task", "fill-mask", "--model", "/nonexistent/dir", stdin="hello [MASK]\n")
    assert out.returncode == 1 and "error" in out.stderr and "Traceback" not in out.stderr
