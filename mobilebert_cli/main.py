"""`mobilebert`: the suite's command line.

  mobilebert run --task fill-mask --model DIR_OR_ID [--framework pt|tf] [--device cpu|N] [--dtype D]
                 [--top-k N] [--batch-size N]
      Reads stdin: one input per line (question-answering and pair tasks: one JSON object per
      line), writes one JSON line per input to stdout. Errors go to stderr naming the stdin line
      that caused them, exit status 1.
  mobilebert demo [--model DIR_OR_ID] ...
      Loads MobileBERT in PyTorch and Keras through a converted checkpoint and compares them.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from itertools import islice

from mobilebert_common.pipeline_tasks import task_names

# Tasks whose stdin lines are JSON objects rather than plain text.
JSON_TASKS = {"question-answering": '{"question": ..., "context": ...}', "next-sentence-prediction": '{"text": ..., "text_pair": ...}'}


def build_parser() -> argparse.ArgumentParser:
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
            "Run a task pipeline over stdin: one input per line, one JSON line per input on stdout.\n"
            "question-answering reads JSON lines {\"question\": ..., \"context\": ...};\n"
            "next-sentence-prediction reads JSON lines {\"text\": ..., \"text_pair\": ...};\n"
            "text-classification reads plain lines or such JSON lines (pairs).\n"
            "Errors go to stderr, naming the stdin line that caused them, and the exit status is 1."
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
    run.add_argument("--batch-size", type=int, default=1, help="inputs per forward pass (default: %(default)s)")
    run.add_argument("--aggregation-strategy", default=None, help="token-classification: none, simple, first, average, max")
    run.add_argument("--no-truncation", action="store_true", help="fail on inputs longer than the model instead of cutting them")
    sub.add_parser("demo", help="load MobileBERT in both frameworks through a converted checkpoint and compare logits",
                   add_help=False)
    return parser


def read_inputs(task: str, stream):
    """(line number, input) per non-empty line: plain text, or a JSON object for the JSON tasks."""
    for number, line in enumerate(stream, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        wants_json = task in JSON_TASKS or (task == "text-classification" and line.lstrip().startswith("{"))
        if wants_json:
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"stdin line {number}: {task} reads JSON lines {JSON_TASKS.get(task, '')}; {err}") from None
            if not isinstance(item, dict):
                raise ValueError(f"stdin line {number}: expected a JSON object {JSON_TASKS.get(task, '')}, got {line[:60]!r}")
            yield number, item
        else:
            yield number, line


def make_pipeline(args):
    from mobilebert_common.pipeline_tasks import normalize_task

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


def _run_chunk(pipe, chunk) -> list:
    """Results for the (line number, input) pairs of one batch; a warning names its line(s). When
    the batch fails, it is rerun one line at a time: results of the lines before the failing one are
    written, and the error names that line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            results = pipe([item for _, item in chunk])
        except ValueError as err:
            if len(chunk) == 1:
                raise ValueError(f"{_lines(chunk)}: {err}") from None
            failed = True
        else:
            failed = False
    if failed:  # find the line: each alone (these runs report their own warnings)
        for number, item in chunk:
            write_results(_run_chunk(pipe, [(number, item)]))
        return []  # every line ran alone: only the batch as a whole had failed
    for warning in caught:
        print(f"mobilebert run: warning: {_lines(chunk)}: {warning.message}", file=sys.stderr)
    return results


def write_results(results) -> None:
    for result in results:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def run(args) -> int:
    task, pipe = make_pipeline(args)
    lines = read_inputs(task, sys.stdin)
    # Results stream batch by batch, as soon as each is done.
    while True:
        chunk = list(islice(lines, pipe.batch_size))
        if not chunk:
            return 0
        write_results(_run_chunk(pipe, chunk))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "demo":
        from mobilebert_cli import demo

        return demo.main(argv[1:]) or 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return run(args)
    except (ValueError, FileNotFoundError, ImportError, OSError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"mobilebert run: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
