"""`mobilebert run` as a Unix filter, in a subprocess: output line N answers input line N (blank
lines too), a failing line leaves the earlier results written and is named, a closed stdout and
Ctrl-C end the command cleanly, memory stays flat over a long input, results come before stdin closes.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.harness import ROOT
from tests.harness.cli import ENV, in_process, needs_tokenizer

pytestmark = needs_tokenizer

RUN = [sys.executable, "-m", "mobilebert_cli", "run"]
EMPTY = {"error": "empty input line"}
# One torch thread: the tiny models gain nothing from more, and on a busy machine they lose a lot.
STREAM_ENV = {**ENV, "OMP_NUM_THREADS": "1"}
PAIRS = [{"text": "hello world", "text_pair": "the city ."}, {"text": "john lives in paris", "text_pair": "where does john live ?"}]
QUESTIONS = [{"question": "where does john live ?", "context": "john lives in new york city ."},
             {"question": "who lives in paris ?", "context": "john lives in paris . london is a city ."}]


def run_cli(args, stdin: bytes):
    return subprocess.run([*RUN, *args], input=stdin, capture_output=True, env=STREAM_ENV, cwd=ROOT, timeout=300)


def json_lines(stdout: bytes) -> list:
    return [json.loads(line) for line in stdout.decode("utf-8").splitlines()]


def assert_same(got, want, path="result"):
    """Equal structures, floats to 1e-6 relative: the command runs torch on one thread, this process
    on several, which sums in another order."""
    if isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9), path
    elif isinstance(want, (list, dict)):
        assert type(got) is type(want) and len(got) == len(want), path
        keys = range(len(want)) if isinstance(want, list) else want
        for key in keys:
            assert_same(got[key], want[key], f"{path}[{key!r}]")
    else:
        assert got == want, path


def start_cli(args, **popen):
    """The command with pipes on all three streams and SIGINT at its default (a test runner started
    in the background may ignore it, and Python would then keep it ignored)."""
    return subprocess.Popen([*RUN, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=STREAM_ENV, cwd=ROOT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **popen)


def feed(proc, lines) -> threading.Thread:
    """Write the lines to the command's stdin in a thread, then close it (quietly if it has gone)."""

    def write():
        try:
            proc.stdin.writelines(lines)
            proc.stdin.close()
        except BrokenPipeError:
            pass

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def read_line(stream, timeout: float) -> bytes:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"no output line within {timeout} s"
    return stream.readline()


# task -> (model, two inputs as the pipeline takes them (a dict is a JSON line), top_k)
TASKS = {
    "fill-mask": ("mlm", ["hello [MASK]", "the capital of france is [MASK] ."], 2),
    "text-classification": ("cls", ["hello world", PAIRS[1]], 2),
    "token-classification": ("ner", ["john lives in new york , hello", "paris is a city ."], None),
    "question-answering": ("qa", QUESTIONS, None),
    "next-sentence-prediction": ("nsp", PAIRS, None),
    "feature-extraction": ("base", ["hello world", "john lives in paris"], None),
}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_blank_lines_are_answered_in_place(dirs, task):
    """Blank and whitespace-only lines, at the start, the end and inside batches (--batch-size 2),
    each get {"error": "empty input line"}; the other lines get what the pipeline gives them."""
    name, inputs, top_k = TASKS[task]
    a, b = (x if isinstance(x, str) else json.dumps(x) for x in inputs)
    stdin = f"\n{a}\n   \n\t\r\n{b}\n\n".encode()  # lines: blank, a, spaces, tab + CRLF, b, blank
    flags, params = (["--top-k", str(top_k)], {"top_k": top_k}) if top_k else ([], {})
    out = run_cli(["--task", task, "--model", dirs[name], "--batch-size", "2", *flags], stdin)
    assert out.returncode == 0, out.stderr.decode()
    ra, rb = in_process(task, dirs[name], inputs, **params)
    assert_same(json_lines(out.stdout), [EMPTY, ra, EMPTY, EMPTY, rb, EMPTY])


def test_bad_json_in_a_batch_keeps_the_results_before_it(dirs):
    good = [json.dumps(q) for q in QUESTIONS]
    stdin = "\n".join([good[0], good[1], "not json", good[0]]).encode() + b"\n"
    out = run_cli(["--task", "question-answering", "--model", dirs["qa"], "--batch-size", "4"], stdin)
    assert out.returncode == 1
    assert_same(json_lines(out.stdout), in_process("question-answering", dirs["qa"], QUESTIONS))  # lines 1-2
    assert out.stderr.decode().startswith("mobilebert run: error: stdin line 3: question-answering reads JSON lines")
    assert "Traceback" not in out.stderr.decode()


@pytest.mark.parametrize(
    "bad_line, error",
    [
        (b"hello \xff\xfe [MASK]", "stdin line 3: not UTF-8 text (byte 0xff at byte 7 of the line); mobilebert run reads UTF-8"),
        (b"no mask here", "stdin line 3: no [MASK] token in the input 'no mask here'; fill-mask predicts the word at each [MASK]"),
    ],
    ids=["invalid-utf8", "task-error"],
)
def test_a_failing_line_is_named_after_the_earlier_results(dirs, bad_line, error):
    stdin = b"hello [MASK]\n\n" + bad_line + b"\nparis [MASK]\n"  # one batch of 4: the failure is line 3
    out = run_cli(["--task", "fill-mask", "--model", dirs["mlm"], "--batch-size", "4", "--top-k", "1"], stdin)
    assert out.returncode == 1
    assert_same(json_lines(out.stdout), [in_process("fill-mask", dirs["mlm"], ["hello [MASK]"], top_k=1)[0], EMPTY])
    assert out.stderr.decode() == f"mobilebert run: error: {error}\n"


def test_closed_stdout_ends_quietly(dirs):
    """`mobilebert run ... | head -1`: more output than a pipe holds, the reader leaves after one line."""
    proc = start_cli(["--task", "fill-mask", "--model", dirs["mlm"], "--top-k", "5", "--batch-size", "64"])
    feeder = feed(proc, [b"hello [MASK]\n"] * 3000)
    first = json.loads(read_line(proc.stdout, 120))
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    feeder.join()
    assert first[0]["token_str"] == "paris" and len(first) == 5
    assert proc.stderr.read() == b""  # no "Broken pipe", no "Exception ignored", no traceback


# TensorFlow's C++ log at start-up, which TF_CPP_MIN_LOG_LEVEL does not silence: "I0000 00:00:... port.cc:153] ..."
TF_LOG = re.compile(rb"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} \d\d:\d\d:|To enable the following instructions)")


def mapped(pid: int, library: str) -> bool:
    with open(f"/proc/{pid}/maps") as maps:
        return library in maps.read()


def interrupt_when(proc, library: str, timeout: float = 120) -> None:
    """SIGINT as soon as the process has loaded ``library`` (it is then importing the module that
    needs it): a moment inside start-up, found without guessing a delay."""
    deadline = time.monotonic() + timeout
    while not mapped(proc.pid, library):
        assert proc.poll() is None and time.monotonic() < deadline, f"{library} never loaded"
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)


def assert_interrupted(proc, stderr: bytes, message: bytes) -> None:
    """Status 130 and one line on stderr (after TensorFlow's own C++ start-up log, if it got that far)."""
    lines = [line for line in stderr.splitlines(keepends=True) if not TF_LOG.match(line)]
    assert (proc.returncode, lines) == (130, [message]), stderr.decode()[-3000:]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="finds start-up phases in /proc/PID/maps")
@pytest.mark.parametrize(
    "phase, flags",
    [
        ("_multiarray_umath", []),  # importing numpy (which turns the KeyboardInterrupt into an ImportError)
        ("libtorch_cpu", []),  # importing torch
        ("libtensorflow", ["--framework", "tf"]),  # importing TensorFlow
        ("waiting on stdin", []),  # model loaded, one line answered, reading the next
    ],
    ids=["importing-numpy", "importing-torch", "importing-tensorflow", "waiting-on-stdin"],
)
def test_ctrl_c_exits_130_without_traceback(dirs, phase, flags):
    proc = start_cli(["--task", "fill-mask", "--model", dirs["mlm"], "--top-k", "1", *flags])
    if phase == "waiting on stdin":
        proc.stdin.write(b"hello [MASK]\n")
        proc.stdin.flush()
        assert json.loads(read_line(proc.stdout, 120))[0]["token_str"] == "paris"
        proc.send_signal(signal.SIGINT)
    else:
        interrupt_when(proc, phase)
    out, err = proc.communicate(timeout=120)
    assert_interrupted(proc, err, b"mobilebert: interrupted\n")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="finds start-up phases in /proc/PID/maps")
def test_ctrl_c_in_the_demo(dirs):
    """`mobilebert demo` on a local checkpoint, interrupted while it imports TensorFlow."""
    proc = subprocess.Popen([sys.executable, "-m", "mobilebert_cli", "demo", "--model", dirs["mlm"]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=STREAM_ENV, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    interrupt_when(proc, "libtensorflow")
    out, err = proc.communicate(timeout=120)
    assert_interrupted(proc, err, b"mobilebert demo: interrupted\n")


def peak_rss_kib(lines: int, line: bytes, args) -> int:
    """Run the command over ``lines`` copies of ``line`` fed through a pipe; check every result and
    return the process's peak resident memory (its own, from wait4)."""
    proc = start_cli(args)
    feeder = feed(proc, (line for _ in range(lines)))
    errors = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()))
    reader.start()
    count = 0
    for out in proc.stdout:
        assert json.loads(out)[0]["token_str"] == "paris"
        count += 1
    feeder.join()
    reader.join()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert (proc.returncode, count, errors) == (0, lines, [b""])
    return usage.ru_maxrss  # KiB on Linux


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in KiB on Linux")
def test_memory_stays_flat_over_20000_lines(dirs):
    """20,000 lines of ~1 KB (the text, then spaces) against 2,000: a command that kept its input
    (18 MB more) or its results (about as much again) would grow; streaming, it stays put."""
    line = b"the capital of france is [MASK] . hello world" + b" " * 1000 + b"\n"
    args = ["--task", "fill-mask", "--model", dirs["mlm"], "--top-k", "1", "--batch-size", "256"]
    small = peak_rss_kib(2_000, line, args)
    large = peak_rss_kib(20_000, line, args)
    assert large - small < 6 * 1024, f"peak RSS {small} KiB for 2,000 lines, {large} KiB for 20,000"


def test_results_come_before_stdin_closes(dirs):
    proc = start_cli(["--task", "fill-mask", "--model", dirs["mlm"], "--top-k", "1"])
    for text in (b"hello [MASK]\n", b"\n", b"the capital of france is [MASK] .\n"):
        proc.stdin.write(text)
        proc.stdin.flush()
        result = json.loads(read_line(proc.stdout, 120))  # stdin is still open
        if text == b"\n":
            assert result == EMPTY
        else:
            assert result[0]["token_str"] == "paris"
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0 and proc.stdout.read() == b""
