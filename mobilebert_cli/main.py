"""`mobilebert`: the suite's command line.

  mobilebert run --task fill-mask --model DIR_OR_ID [--framework pt|tf] [--device cpu|N] [--dtype D]
                 [--top-k N] [--batch-size N]
      Reads stdin as UTF-8 text, one input per line (question-answering and pair tasks: one JSON
      object per line), and writes one JSON line per input line to stdout: output line N answers
      input line N. A blank (or whitespace-only) line is answered {"error": "empty input line"},
      for every task, and the run goes on. The command streams: it reads --batch-size lines, writes
      (and flushes) their results, then reads on. A line that cannot be answered (invalid UTF-8 or
      JSON, an input the task rejects, a model error) ends the run: every earlier line's result is
      written, then an error naming the line goes to stderr, exit status 1. A closed stdout
      (`| head -1`) ends the run quietly with status 0; Ctrl-C ends it with status 130.
  mobilebert demo [--model DIR_OR_ID] ...
      Loads MobileBERT in PyTorch and Keras through a converted checkpoint and compares them.

Only the standard library is imported before main() runs, so that Ctrl-C during start-up (the
imports of numpy, torch or TensorFlow, loading the model) is caught there too.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import warnings
from itertools import islice

from mobilebert_cli import export as export_command
from mobilebert_cli import train as train_command
from mobilebert_cli.interrupt import handled, raise_if_interrupted

# Tasks whose stdin lines are JSON objects rather than plain text.
JSON_TASKS = {"question-answering": '{"question": ..., "context": ...}', "next-sentence-prediction": '{"text": ..., "text_pair": ...}'}

# The answer to a blank input line, the same for every task.
EMPTY_LINE = {"error": "empty input line"}


class LineError(ValueError):
    """A stdin line that cannot be answered; the message names the line."""


class StdoutClosed(Exception):
    """The reader of stdout went away (`mobilebert run ... | head -1`)."""


def build_parser() -> argparse.ArgumentParser:
    from mobilebert_common.pipelines.registry import task_names  # numpy: after main() has taken over Ctrl-C

    parser = argparse.ArgumentParser(
        prog="mobilebert",
        description="MobileBERT in PyTorch and Keras: task pipelines and a cross-framework demo.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `mobilebert SUBCOMMAND --help` for the options of each subcommand.",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    run = sub.add_parser(
        "run",
        help="run a task pipeline on stdin, one JSON result line per input line",
        description=(
            "Run a task pipeline over stdin (UTF-8): one input per line, one JSON line per input line on\n"
            "stdout, so output line N answers input line N.\n"
            "question-answering reads JSON lines {\"question\": ..., \"context\": ...};\n"
            "next-sentence-prediction reads JSON lines {\"text\": ..., \"text_pair\": ...};\n"
            "text-classification reads plain lines or such JSON lines (pairs).\n"
            "A blank line is answered {\"error\": \"empty input line\"} (every task) and the run goes on.\n"
            "Results stream: each batch of --batch-size lines is written as soon as it is done.\n"
            "A line that cannot be answered (invalid UTF-8 or JSON, an input the task rejects, a model\n"
            "error) ends the run: the results of the lines before it are written, then an error naming\n"
            "the line goes to stderr, exit status 1. A closed stdout (| head) ends the run quietly\n"
            "(status 0); Ctrl-C ends it with status 130."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--task", required=True, help=f"one of: {', '.join(task_names())}")
    run.add_argument("--model", required=True, help="local directory or hub repo id (e.g. google/mobilebert-uncased)")
    run.add_argument("--tokenizer", default=None, help="tokenizer directory or repo id (default: the model's)")
    run.add_argument("--framework", choices=("pt", "tf"), default="pt", help="PyTorch or Keras (default: %(default)s)")
    run.add_argument("--device", default="cpu", help="cpu (or -1), or a GPU index N / cuda:N (default: %(default)s)")
    run.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16", "float16-mixed", "auto"),
                     help="computation dtype (default float32; float16 overflows on released MobileBERT weights; "
                          "float16-mixed, pt only: float16 matrix products with float32 weights and residual stream)")
    run.add_argument("--top-k", type=int, default=None, help="results per input (fill-mask, classification, QA)")
    run.add_argument("--batch-size", type=int, default=1,
                     help="input lines per forward pass; results are written batch by batch (default: %(default)s)")
    run.add_argument("--aggregation-strategy", default=None, help="token-classification: none, simple, first, average, max")
    run.add_argument("--no-truncation", action="store_true", help="fail on inputs longer than the model instead of cutting them")
    sub.add_parser("demo", help="load MobileBERT in both frameworks through a converted checkpoint and compare logits",
                   add_help=False)
    train_command.add_parser(sub)
    export_command.add_parser(sub)
    return parser


def parse_line(task: str, number: int, raw: bytes):
    """The pipeline input of stdin line ``number`` (bytes, newline included): the text, or a JSON
    object for the JSON tasks; None for a blank line. LineError for bytes that are not UTF-8 and
    for a line that is not the JSON object the task reads."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LineError(
            f"stdin line {number}: not UTF-8 text (byte {raw[err.start]:#04x} at byte {err.start + 1} of the line); "
            "mobilebert run reads UTF-8"
        ) from None
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    if task not in JSON_TASKS and not (task == "text-classification" and line.lstrip().startswith("{")):
        return line
    try:
        item = json.loads(line)
    except json.JSONDecodeError as err:
        raise LineError(f"stdin line {number}: {task} reads JSON lines {JSON_TASKS.get(task, '')}; {err}") from None
    if not isinstance(item, dict):
        raise LineError(f"stdin line {number}: expected a JSON object {JSON_TASKS.get(task, '')}, got {line[:60]!r}")
    return item


def make_pipeline(args):
    from mobilebert_common.pipelines.registry import normalize_task

    task = normalize_task(args.task)
    device = args.device
    if isinstance(device, str) and device.lstrip("-").isdigit():
        device = int(device)
    params = {}
    if args.top_k is not None:
        params["top_k"] = args.top_k
    if args.aggregation_strategy is not None:
        params["aggregation_strategy"] = args.aggregation_strategy
    if args.no_truncation:
        if task == "question-answering":
            raise ValueError("--no-truncation does not apply to question-answering (long contexts are cut into windows)")
        params["truncation"] = False
    # The device is resolved here so that its errors name --device, not the Python argument.
    if args.framework == "pt":
        from mobilebert_pt.pipelines import pipeline, resolve_pipeline_device

        device = resolve_pipeline_device(device, cli=True)
    else:
        if args.dtype in ("auto", "float16-mixed"):
            raise ValueError(f"--dtype {args.dtype} applies to --framework pt only")
        from mobilebert_tf.pipelines import pipeline, resolve_tf_device

        device = resolve_tf_device(device, cli=True)
    return task, pipeline(task, model=args.model, tokenizer=args.tokenizer, device=device, torch_dtype=args.dtype,
                          batch_size=args.batch_size, **params)


def _lines(chunk) -> str:
    first, last = chunk[0][0], chunk[-1][0]
    return f"stdin line {first}" if first == last else f"stdin lines {first}-{last}"


def answer(pipe, chunk):
    """The results of one batch of (line number, input or None for a blank line), in line order.

    Warnings name the batch's line(s). When the batch fails, its lines are rerun one at a time: the
    results of the lines before the failing one come out, then LineError names that line."""
    inputs = [(number, item) for number, item in chunk if item is not None]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = iter(pipe([item for _, item in inputs]) if inputs else ())
    except Exception as err:  # bad input or a model error: either way, reported against its line
        if len(chunk) == 1:
            detail = err if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
            raise LineError(f"{_lines(chunk)}: {detail}") from None
        failed = True
    else:
        failed = False
    if failed:  # find the line: each alone (these runs report their own warnings)
        for line in chunk:
            yield from answer(pipe, [line])
        return
    for warning in caught:
        print(f"mobilebert run: warning: {_lines(inputs)}: {warning.message}", file=sys.stderr)
    for _, item in chunk:
        yield EMPTY_LINE if item is None else next(results)


def write_results(results) -> None:
    """One JSON line per result, each flushed at once (the command streams)."""
    try:
        for result in results:
            sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
            sys.stdout.flush()
    except BrokenPipeError:
        raise StdoutClosed from None


def run(args) -> int:
    task, pipe = make_pipeline(args)
    lines = enumerate(sys.stdin.buffer if sys.stdin is not None else io.BytesIO(), 1)  # bytes: UTF-8 checked per line
    while True:
        # One batch: up to batch_size lines (blank ones included, answered in place), read as they
        # come rather than all of stdin; a line that cannot be parsed ends the batch and the run.
        chunk, failure = [], None
        for number, raw in islice(lines, pipe.batch_size):
            try:
                chunk.append((number, parse_line(task, number, raw)))
            except LineError as err:
                failure = err
                break
        write_results(answer(pipe, chunk))
        if failure is not None:
            raise failure
        if not chunk:
            return 0


def quiet_stdout() -> None:
    """Point stdout at /dev/null: Python flushes it once more at exit, which would fail again on
    the closed pipe (and print "Exception ignored ... BrokenPipeError")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv=None) -> int:
    with handled("mobilebert"):  # Ctrl-C at any time: imports, loading the model, reading stdin, running it
        argv = sys.argv[1:] if argv is None else list(argv)
        if argv and argv[0] == "demo":
            from mobilebert_cli import demo

            return demo.main(argv[1:]) or 0
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if args.command == "train":
            return train_command.main(args)
        if args.command == "export":
            return export_command.main(args)
        try:
            return run(args)
        except StdoutClosed:  # as Unix tools do when their reader has gone: no message, status 0
            quiet_stdout()
            return 0
        except (ValueError, FileNotFoundError, ImportError, OSError, KeyError) as err:
            raise_if_interrupted()  # e.g. an ImportError that a Ctrl-C caused
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            print(f"mobilebert run: error: {message}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
