"""`mobilebert train`: fine-tune a MobileBERT for a task, in PyTorch or Keras, on one process or many.

    mobilebert train --task text-classification --model DIR_OR_ID --train train.jsonl --output out
                     [--eval dev.jsonl] [--framework pt|tf] [--epochs N] [--lr X] [--batch-size N] ...
    torchrun --nproc-per-node 2 -m mobilebert_cli train ...      # PyTorch DDP (gloo on CPU, nccl on GPU)

The options are mobilebert_common.training.options.TrainOptions, written with dashes; defaults
come from there. Errors (a bad data line, an unknown label, an output directory holding another
run) go to stderr and the exit status is 1. On success the last epoch's metrics are printed as
one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from mobilebert_common.training.options import FLOAT16_REFUSED, TASKS, TrainOptions

DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainOptions)}
# TrainOptions fields set by an option of the same name (dashes for underscores).
PASSED = ("epochs", "lr", "batch_size", "max_length", "seed", "resume", "warmup_ratio", "weight_decay", "grad_accum",
          "max_grad_norm", "bf16", "fp16", "save_every_epoch", "save_steps", "doc_stride")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="fine-tune a model on a JSON-lines (or CSV) file; PyTorch DDP under torchrun, or tf.distribute",
        description=(
            "Fine-tune MobileBERT. Data: one JSON object per line (text-classification also reads CSV):\n"
            '  text-classification   {"text", "text_pair" (optional), "label"}\n'
            '  token-classification  {"tokens": [...], "labels": [...]}\n'
            '  question-answering    {"question", "context", "answers": {"text": [...], "answer_start": [...]}}\n'
            '  fill-mask             {"text"}\n'
            '  multiple-choice       {"question" (optional), "choices": [...], "label"}\n'
            "The model lands in --output (config.json, tokenizer, weights), checkpoints in "
            "--output/checkpoint-<step>/, metrics in --output/metrics.jsonl.\n"
            "Several processes: torchrun --nproc-per-node N -m mobilebert_cli train ... (PyTorch);\n"
            "Keras mirrors over the local GPUs, or over workers when TF_CONFIG is set."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--model", required=True, help="directory or hub repo id to start from")
    p.add_argument("--train", required=True, dest="train_file", help="training data (.jsonl; .csv for text-classification)")
    p.add_argument("--output", required=True, dest="output_dir", help="output directory")
    p.add_argument("--eval", dest="eval_file", default=None, help="evaluation data, scored after every epoch")
    p.add_argument("--framework", choices=("pt", "tf"), default="pt", help="PyTorch or Keras (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="default: %(default)s")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"], help="peak learning rate (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"],
                   help="examples per process (Keras: per replica) and micro-batch (default: %(default)s)")
    p.add_argument("--max-length", type=int, default=None, help="tokens per row (default: 384 for question-answering, else 128)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="default: %(default)s")
    p.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint in --output")
    p.add_argument("--warmup-ratio", type=float, default=DEFAULTS["warmup_ratio"],
                   help="share of the steps warming up to --lr, then linear decay to 0 (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=DEFAULTS["weight_decay"],
                   help="AdamW weight decay, not on biases and norms (default: %(default)s)")
    p.add_argument("--grad-accum", type=int, default=DEFAULTS["grad_accum"], help="micro-batches per step (default: %(default)s)")
    p.add_argument("--max-grad-norm", type=float, default=DEFAULTS["max_grad_norm"],
                   help="clip the global gradient norm; 0: off (default: %(default)s)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (Keras: mixed_bfloat16)")
    p.add_argument("--fp16", action="store_true", help=f"refused: {FLOAT16_REFUSED}")
    p.add_argument("--save-every-epoch", action=argparse.BooleanOptionalAction, default=DEFAULTS["save_every_epoch"],
                   help="a checkpoint after every epoch (default: on)")
    p.add_argument("--save-steps", type=int, default=None, help="also a checkpoint every N steps")
    p.add_argument("--doc-stride", type=int, default=None, help="question-answering: token overlap of context windows")
    p.add_argument("--device", default=None,
                   help="pt: cpu, cuda or cuda:N (default: the process's GPU under torchrun when there is one, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(args) -> int:
    options = {name: getattr(args, name) for name in PASSED}
    options["progress"] = not args.no_progress
    where = (args.task, args.model, args.train_file, args.output_dir, args.eval_file)
    try:
        if args.framework == "pt":
            from mobilebert_pt.finetune import train

            result = train(*where, device=args.device, **options)
        else:
            if args.device is not None:
                raise ValueError("--device applies to --framework pt; Keras mirrors over every local GPU (or CPU)")
            from mobilebert_tf.finetune import train

            result = train(*where, **options)
    except (ValueError, FileNotFoundError, ImportError, OSError) as err:
        print(f"mobilebert train: error: {err}", file=sys.stderr)
        return 1
    if result.is_main:
        print(json.dumps({"output_dir": result.output_dir, "step": result.global_step,
                          **(result.metrics[-1] if result.metrics else {})}))
    return 0
