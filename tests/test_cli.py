"""`mobilebert` end to end in a subprocess: help, `run` over stdin for several tasks, errors on stderr."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.harness import ROOT
from tests.harness.cli import ENV, in_process, needs_tokenizer
from tests.harness.pipelines import config


def cli(*args, stdin="", program=None):
    command = [program] if program else [sys.executable, "-m", "mobilebert_cli"]
    return subprocess.run([*command, *args], input=stdin, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=180)


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


USAGE_3 = "The capital of France is [MASK].\n"  # echo -e "..." | mobilebert run --task fill-mask --model DIR --device ...


@needs_tokenizer
def test_installed_console_script_runs_usage_3(dirs):
    program = shutil.which("mobilebert")
    if program is None:
        pytest.skip("the `mobilebert` console script is not installed (pip install -e .)")
    out = cli("run", "--task", "fill-mask", "--model", dirs["mlm"], "--device", "cpu", stdin=USAGE_3, program=program)
    assert out.returncode == 0, out.stderr
    (result,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert result[0]["token_str"] == "paris" and result[0]["sequence"] == "the capital of france is paris."
    help_text = cli("--help", program=program)
    assert help_text.returncode == 0 and "run" in help_text.stdout and "demo" in help_text.stdout


@needs_tokenizer
@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_device_0_without_gpu_names_the_option(dirs, framework):
    if framework == "pt" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    out = cli("run", "--task", "fill-mask", "--model", dirs["mlm"], "--framework", framework, "--device", "0", stdin=USAGE_3)
    if framework == "tf" and out.returncode == 0:
        pytest.skip("TensorFlow sees a GPU here")
    assert out.returncode == 1 and out.stdout == ""
    assert "mobilebert run: error: --device 0 asks for" in out.stderr and "Use --device cpu" in out.stderr
    assert "device_map" not in out.stderr and "Traceback" not in out.stderr


@needs_tokenizer
def test_run_framework_tf_and_dtypes(dirs):
    texts = ["The capital of France is [MASK].", "hello [MASK] world"]
    stdin = "\n".join(texts) + "\n"
    tf_out = cli("run", "--task", "fill-mask", "--model", dirs["mlm"], "--framework", "tf", "--top-k", "3", stdin=stdin)
    assert tf_out.returncode == 0, tf_out.stderr
    got_tf = [json.loads(line) for line in tf_out.stdout.splitlines()]
    ref = in_process("fill-mask", dirs["mlm"], texts, top_k=3)
    assert [[r["token"] for r in x] for x in got_tf] == [[r["token"] for r in x] for x in ref]
    np.testing.assert_allclose([r["score"] for x in got_tf for r in x], [r["score"] for x in ref for r in x], rtol=1e-4, atol=1e-7)
    for dtype, tolerance in (("bfloat16", 3e-2), ("float16-mixed", 1e-3)):
        out = cli("run", "--task", "fill-mask", "--model", dirs["mlm"], "--dtype", dtype, "--top-k", "3", stdin=stdin)
        assert out.returncode == 0, out.stderr
        got = [json.loads(line) for line in out.stdout.splitlines()]
        assert [x[0]["token_str"] for x in got] == ["paris", "paris"]
        np.testing.assert_allclose([r["score"] for x in got for r in x], [r["score"] for x in ref for r in x], atol=tolerance)
    out = cli("run", "--task", "fill-mask", "--model", dirs["mlm"], "--framework", "tf", "--dtype", "float16-mixed", stdin=stdin)
    assert out.returncode == 1 and "--dtype float16-mixed applies to --framework pt only" in out.stderr


@needs_tokenizer
def test_run_every_other_task(dirs):
    ner_texts = ["john lives in new york , hello", "paris is the capital of france ."]
    pairs = [{"text": "hello world", "text_pair": "the city ."}, {"text": "john lives in paris", "text_pair": "where does john live ?"}]
    cases = [
        ("token-classification", "ner", "\n".join(ner_texts), ner_texts, ["--aggregation-strategy", "simple"],
         dict(aggregation_strategy="simple")),
        # text-classification: a plain line and a JSON pair line in one stream.
        ("text-classification", "cls", "hello world\n" + json.dumps(pairs[1]), ["hello world", pairs[1]], ["--top-k", "2"], dict(top_k=2)),
        ("next-sentence-prediction", "nsp", "\n".join(json.dumps(p) for p in pairs), pairs, [], {}),
        ("feature-extraction", "base", "\n".join(ner_texts), ner_texts, ["--batch-size", "2"], dict(batch_size=2)),
    ]
    for task, name, stdin, inputs, flags, params in cases:
        out = cli("run", "--task", task, "--model", dirs[name], *flags, stdin=stdin + "\n")
        assert out.returncode == 0, (task, out.stderr)
        got = [json.loads(line) for line in out.stdout.splitlines()]
        assert got == in_process(task, dirs[name], inputs, **params), task
    assert len(got[0][0]) == 9 and len(got[0][0][0]) == config().hidden_size  # (1, T, H) per input line


@needs_tokenizer
def test_errors_and_warnings_name_the_stdin_line(dirs):
    stdin = "hello [MASK]\n\nworld [MASK] city\nno mask here\nparis [MASK]\n"
    out = cli("run", "--task", "fill-mask", "--model", dirs["mlm"], "--batch-size", "2", "--top-k", "1", stdin=stdin)
    assert out.returncode == 1
    assert "mobilebert run: error: stdin line 4: no [MASK] token in the input 'no mask here'" in out.stderr
    # The lines before the failing one were answered (lines 2-3 from the failing batch, rerun alone;
    # the blank line 2 with the empty-line answer).
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(answers) == 3 and answers[1] == {"error": "empty input line"}
    assert [answers[0][0]["token_str"], answers[2][0]["token_str"]] == ["paris", "paris"]
    long_line = "[MASK] " + " ".join(["hello world"] * 30)
    out = cli("run", "--task", "fill-mask", "--model", dirs["mlm"], stdin="hello [MASK]\n" + long_line + "\n")
    assert out.returncode == 0, out.stderr
    assert "mobilebert run: warning: stdin line 2: input has 63 tokens" in out.stderr
    out = cli("run", "--task", "next-sentence-prediction", "--model", dirs["nsp"], stdin='{"text": "a", "text_pair": "b"}\n["x"]\n')
    assert out.returncode == 1 and "stdin line 2: expected a JSON object" in out.stderr
