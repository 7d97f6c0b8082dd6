"""`python -m conversion DIRECTION SRC DST` and the `mobilebert-convert` console script.

    python -m conversion pt-to-tf  google/mobilebert-uncased ./mobilebert-tf
    python -m conversion tf-to-pt  ./mobilebert-tf/tf_model.h5 ./mobilebert-pt --dtype float16
    python -m conversion tf1-to-pt ./uncased_L-24_H-128_B-512_A-4_F-4_OPT/mobilebert_variables.ckpt ./pt
    python -m conversion tf-to-pt  ./mobilebert-tf ./mobilebert-pt --max-shard-size 50MB   # shards + index
    python -m conversion tf-to-pt  ./mobilebert-tf ./mobilebert-bin --format bin           # pytorch_model.bin

Exit status 0 on success; 1 with a one-line reason on any failure; 128 + the signal's number
when SIGINT, SIGTERM or SIGHUP stops it (130, 143, 129). Nothing half-written is left in any case.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from typing import Optional, Sequence

from mobilebert_common.files import interruptible

from .arrays import DTYPES
from .directories import DIRECTIONS, PT_FORMATS, convert_checkpoint


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mobilebert-convert",
                                description="Convert MobileBERT weights between PyTorch, Keras (TF2) and Google's TF1 checkpoints.")
    p.add_argument("direction", choices=DIRECTIONS, help="what to convert into what")
    p.add_argument("src", help="a checkpoint directory, a single weights file (or TF1 checkpoint prefix), "
                                "or a hub repo id (PyTorch and TF weights; TF1 checkpoints are local files)")
    p.add_argument("dst", help="the output directory (created)")
    p.add_argument("--dtype", choices=DTYPES, help="floating dtype of the written weights (default: the source's)")
    p.add_argument("--format", choices=PT_FORMATS, default="safetensors", dest="pt_format",
                   help="PyTorch weights file to write (*-to-pt): model.safetensors (default) or pytorch_model.bin (needs torch)")
    p.add_argument("--max-shard-size", metavar="SIZE",
                   help="*-to-pt: shard model.safetensors into files of at most SIZE (e.g. 50MB, 2GB) with an index, "
                        "as the hub does; a checkpoint that fits in one stays model.safetensors")
    p.add_argument("--force", action="store_true", help="overwrite existing files in DST")
    p.add_argument("--verify", action="store_true", help="re-read the result and compare PyTorch and TF logits (needs both)")
    p.add_argument("--architecture", help="model class the weights belong to, e.g. MobileBertForSequenceClassification "
                                          "(default: config.architectures, else detected from the tensor names)")
    p.add_argument("--config", help="config.json to use (TF1 checkpoints: default bert_config.json next to SRC)")
    p.add_argument("--revision", help="hub revision of SRC")
    p.add_argument("--quiet", action="store_true", help="no progress bar (on stderr)")
    return p


def _warn_in_one_line(message, category, filename, lineno, file=None, line=None):
    print(f"mobilebert-convert: warning: {message}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM and SIGHUP unwind like Ctrl-C (the staged output is removed), and end the command here.
    with interruptible(), warnings.catch_warnings():
        warnings.showwarning = _warn_in_one_line
        try:
            if args.verify:
                from .verify import check_available

                check_available()  # before anything is written
            hub = {"revision": args.revision} if args.revision else {}
            summary = convert_checkpoint(args.direction, args.src, args.dst, dtype=args.dtype, force=args.force,
                                         architecture=args.architecture, config_path=args.config,
                                         progress=not args.quiet, hub_kwargs=hub, pt_format=args.pt_format,
                                         max_shard_size=args.max_shard_size)
            for line in summary.lines():
                print(line)
            if args.verify:
                from .verify import verify_checkpoint

                err = verify_checkpoint(args.dst, to_tf=args.direction.endswith("-to-tf"))
                print(f"verified: PyTorch and TF logits agree (relative difference {err:.2g})")
        except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM / SIGHUP as files.Interrupted
            signum = getattr(err, "signum", signal.SIGINT)
            print(f"mobilebert-convert: interrupted ({signal.Signals(signum).name}); nothing half-written was left",
                  file=sys.stderr)
            return 128 + signum
        except Exception as err:  # one line, no traceback: the reason is in the message
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            print(f"mobilebert-convert: error: {reason}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
