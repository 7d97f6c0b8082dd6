"""What a fine-tuning run is asked to do: the task table and TrainOptions, checked once for both frameworks."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Optional

# task -> the head class it trains (the Keras class carries a "TF" prefix)
HEAD_CLASSES = {
    "text-classification": "MobileBertForSequenceClassification",
    "token-classification": "MobileBertForTokenClassification",
    "question-answering": "MobileBertForQuestionAnswering",
    "fill-mask": "MobileBertForMaskedLM",
    "multiple-choice": "MobileBertForMultipleChoice",
}
TASKS = tuple(HEAD_CLASSES)
# Tasks whose loss averages over labelled tokens (label -100 elsewhere); the others average over examples.
TOKEN_LEVEL = ("token-classification", "fill-mask")
# Tasks whose labels are the model's classes (config.id2label).
CLASS_LABELS = ("text-classification", "token-classification")
# The label inputs each head takes.
LABEL_KEYS = {"question-answering": ("start_positions", "end_positions")}
# What evaluation reads from the model besides the loss.
EVAL_OUTPUTS = {
    "text-classification": ("logits",),
    "token-classification": ("logits",),
    "multiple-choice": ("logits",),
    "question-answering": ("start_logits", "end_logits"),
    "fill-mask": (),  # perplexity needs only the loss
}
DEFAULT_MAX_LENGTH = {"question-answering": 384}  # others: 128

FLOAT16_REFUSED = (
    "float16 training is not supported: MobileBERT's activations reach 1e7-1e8 (released weights), far beyond "
    "float16's largest value 65504, so they overflow to inf/NaN. Use bf16 (--bf16: bfloat16 has float32's range) "
    "or float32"
)


def label_keys(task: str) -> tuple:
    return LABEL_KEYS.get(task, ("labels",))


def check_task(task) -> str:
    if not isinstance(task, str) or task.strip().lower() not in HEAD_CLASSES:
        raise ValueError(f"unknown task {task!r}; mobilebert train takes: {', '.join(TASKS)}")
    return task.strip().lower()


@dataclass
class TrainOptions:
    """A fine-tuning run. Sizes are per replica: one optimizer step reads
    batch_size * grad_accum * (number of replicas) examples."""

    task: str
    model: str  # directory or hub repo id to start from
    train_file: str  # JSON lines (text-classification: also .csv)
    output_dir: str  # the final model lands here; checkpoints in checkpoint-<step>/ under it
    eval_file: Optional[str] = None
    epochs: int = 3
    lr: float = 5e-5  # peak learning rate
    batch_size: int = 8  # per replica (process or device)
    max_length: Optional[int] = None  # tokens per row; None: 384 for question-answering, else 128 (at most the model's)
    seed: int = 42
    resume: bool = False  # continue from the last complete checkpoint in output_dir
    warmup_ratio: float = 0.0  # share of the steps spent warming up from 0 to lr, then linear decay to 0
    weight_decay: float = 0.0  # AdamW's decoupled decay, not applied to biases and norms
    grad_accum: int = 1  # micro-batches per optimizer step
    max_grad_norm: Optional[float] = 1.0  # global gradient-norm clipping; None or 0: off
    bf16: bool = False  # bfloat16 autocast (Keras: the mixed_bfloat16 policy)
    fp16: bool = False  # refused, with the reason
    save_every_epoch: bool = True  # a checkpoint at the end of every epoch
    save_steps: Optional[int] = None  # also a checkpoint every N optimizer steps
    doc_stride: Optional[int] = None  # question-answering: overlap of context windows (None: the pipeline's default)
    progress: bool = True  # a tqdm bar on the main process

    def checked(self) -> "TrainOptions":
        """A copy with the task normalised and every field checked (ValueError naming the option)."""
        if self.fp16:
            raise ValueError(FLOAT16_REFUSED)
        out = dataclasses.replace(self, task=check_task(self.task))
        for name in ("model", "train_file", "output_dir"):
            value = getattr(out, name)
            if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
                raise ValueError(f"{name} must be a path{' or hub repo id' if name == 'model' else ''}, got {value!r}")
            setattr(out, name, os.fspath(value))
        if out.eval_file is not None:
            out.eval_file = os.fspath(out.eval_file)
        for name in ("epochs", "batch_size", "grad_accum"):
            _positive_int(name, getattr(out, name))
        for name in ("max_length", "save_steps"):
            if getattr(out, name) is not None:
                _positive_int(name, getattr(out, name))
        if out.doc_stride is not None and (_not_int(out.doc_stride) or out.doc_stride < 0):
            raise ValueError(f"doc_stride must be a non-negative integer, got {out.doc_stride!r}")
        if _not_int(out.seed) or out.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {out.seed!r}")
        _number("lr", out.lr, low=0.0, low_open=True)
        _number("warmup_ratio", out.warmup_ratio, low=0.0, high=1.0)
        _number("weight_decay", out.weight_decay, low=0.0)
        if out.max_grad_norm is not None:
            _number("max_grad_norm", out.max_grad_norm, low=0.0)
        for name in ("resume", "bf16", "save_every_epoch", "progress"):
            if not isinstance(getattr(out, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(out, name)!r}")
        return out


def make_options(task, model, train_file, output_dir, eval_file=None, **options) -> TrainOptions:
    """TrainOptions from the keywords of mobilebert_pt.train / mobilebert_tf.train; unknown ones named."""
    fields = {f.name for f in dataclasses.fields(TrainOptions)}
    unknown = sorted(set(options) - fields)
    if unknown:
        allowed = sorted(fields - {"task", "model", "train_file", "output_dir", "eval_file"})
        raise ValueError(f"train() got unknown option(s) {unknown}; allowed: {', '.join(allowed)}")
    return TrainOptions(task, model, train_file, output_dir, eval_file, **options).checked()


def _not_int(value) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)


def _positive_int(name: str, value) -> None:
    if _not_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _number(name: str, value, low: float, high: float = math.inf, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or value > high or (low_open and value == low):
        bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"{name} must be in {bounds}, got {value!r}")
