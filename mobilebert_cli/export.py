"""`mobilebert export`: one head of a checkpoint to TFLite (LiteRT) or ONNX, its parity measured and printed.

  mobilebert export --format tflite|onnx --model DIR_OR_ID --task TASK OUT [--seq-len N | --dynamic]
                    [--quantize none|dynamic-int8|float16] [--force]

The work is mobilebert_tf.export_tflite / mobilebert_pt.export_onnx; this module parses the
arguments, checks them before the framework loads, and turns errors into one line and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from mobilebert_cli.interrupt import raise_if_interrupted


def description() -> str:
    from mobilebert_common.export import EXTRA, PARITY_TOLERANCE
    from mobilebert_common.quantization import QUANTIZATIONS

    meanings = "\n".join(textwrap.fill(meaning, 100, initial_indent=f"  {name:<14}", subsequent_indent=" " * 16)
                         for name, meaning in QUANTIZATIONS.items())
    return f"""\
Export one head of a MobileBERT checkpoint for on-device use and check it there:
  tflite  from the Keras model (tf.lite.TFLiteConverter), run in the LiteRT interpreter
  onnx    from the PyTorch model (torch.onnx.export), checked by onnx.checker, run in ONNX Runtime
The export and its source model run on a probe batch (the checkpoint's tokenizer, padded rows,
[MASK]s for fill-mask); the max relative difference of each output and the top-1 / top-5 agreement
are printed. A float32 export must agree within relative {PARITY_TOLERANCE:g}, or nothing is written
and the exit status is 1. Quantized exports report their drift. OUT is written all at once, never
over an existing file without --force. Needs the {EXTRA!r} extra: pip install "mobilebert-suite[{EXTRA}]".

quantization:
{meanings}"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    # Imported here, not at the top: `mobilebert` imports only the standard library before main() runs.
    from mobilebert_common.export import DEFAULT_SEQ_LEN, export_tasks
    from mobilebert_common.quantization import NONE, QUANTIZATIONS

    parser = subparsers.add_parser("export", help="export a head to TFLite (LiteRT) or ONNX, parity measured and printed",
                                   description=description(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", metavar="OUT", help="the file to write (e.g. mobilebert.tflite, mobilebert.onnx)")
    parser.add_argument("--format", required=True, help="tflite or onnx")
    parser.add_argument("--model", required=True, help="checkpoint directory or hub repo id (e.g. google/mobilebert-uncased)")
    parser.add_argument("--task", required=True, help=f"the head to export, one of: {', '.join(export_tasks())}")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--seq-len", type=int, default=None, metavar="N",
                        help=f"fixed sequence length, any batch size (default {DEFAULT_SEQ_LEN}, "
                             "at most the model's max_position_embeddings)")
    length.add_argument("--dynamic", action="store_true", help="any sequence length and batch size")
    parser.add_argument("--quantize", default=NONE, metavar="Q",
                        help=f"{', '.join(QUANTIZATIONS)} (default: %(default)s; see the list above)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    return parser


def main(args: argparse.Namespace) -> int:
    from mobilebert_common.export import check_format, plan_export

    options = dict(seq_len=args.seq_len, dynamic=args.dynamic, quantize=args.quantize, force=args.force)
    try:
        # Every argument is checked before torch or TensorFlow loads (seconds): mistakes show at once.
        plan_export(check_format(args.format), args.model, args.task, args.out, **options)
        if args.format == "onnx":
            from mobilebert_pt import export_onnx as export
        else:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up notes say nothing here
            from mobilebert_tf import export_tflite as export
        export(args.model, args.task, args.out, **options)
    except (ValueError, OSError, ImportError) as err:
        raise_if_interrupted()  # e.g. an ImportError that a Ctrl-C caused
        print(f"mobilebert export: error: {err}", file=sys.stderr)
        return 1
    return 0

