"""The fine-tuning loop, written once: both frameworks supply a backend (mobilebert_pt/finetune.py,
mobilebert_tf/finetune.py) for the few things only they can do.

    run_training(options, backend) -> TrainResult

Order of work: everything that can fail on the user's input (the model's config and tokenizer, both
data files, labels, the output directory) is checked before anything is written. Then per epoch:
the backend's replicas read their shards step by step; at the end of an epoch the eval file is
scored (every process scores its share, the sums are added up) and a line goes to metrics.jsonl;
then a checkpoint. The final model is written into the output directory itself.

Checkpoints: output_dir/checkpoint-<step>/ holds the model files (loadable by every part of the
suite), the backend's optimizer and scheduler state, and progress.json (step, the run's settings,
the epoch's running loss). Each is written into a staging directory and renamed into place, so a
checkpoint directory that exists is complete. --resume continues from the last one: the data order
of an epoch comes from (seed, epoch), fill-mask's masks from (seed, epoch, example), and the random
generators (dropout) are re-seeded from (seed, step, process) at the start and after every
checkpoint, so an interrupted and resumed run takes the same steps as an uninterrupted one.

A backend has: framework ("pt" / "tf"), num_replicas, process_index, process_count, is_main,
load(source, task, overrides, options) -> model, setup_optimizer(options, plan), replica_orders(n, epoch, seed)
-> one index list per replica this process feeds, train_step(batches, counts) -> (loss sum, targets)
of this process, predict(batch) -> numpy outputs with the loss, learning_rate(), all_sum(array),
barrier(), reseed(seed), save_model(dir), save_state(dir), load_state(dir), model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from mobilebert_common.staging import STAGING_SUFFIX, staged_directory
from mobilebert_common.config import CONFIG_NAME, MobileBertConfig
from mobilebert_common.files import atomic_write_text
from mobilebert_common.pipelines.driver import load_tokenizer
from mobilebert_common.training.data import has_labels, plan_labels, read_examples
from mobilebert_common.training.evaluation import Evaluator
from mobilebert_common.training.features import Encoded, MaskedLM, check_vocabulary, collate, encode, target_count
from mobilebert_common.training.options import CLASS_LABELS, DEFAULT_MAX_LENGTH, TrainOptions
from mobilebert_common.training.schedule import StepPlan, step_batches

PROGRESS_NAME = "progress.json"
METRICS_NAME = "metrics.jsonl"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# Settings that decide which steps a run takes: a checkpoint resumes only under the same ones.
RUN_SETTINGS = ("task", "epochs", "lr", "batch_size", "grad_accum", "max_length", "seed", "warmup_ratio",
                "weight_decay", "max_grad_norm", "bf16", "doc_stride")


@dataclass
class TrainResult:
    output_dir: str
    global_step: int
    metrics: List[dict] = field(default_factory=list)  # one record per epoch, as in metrics.jsonl
    model: object = None  # the trained model (this process's replica)
    is_main: bool = True  # the process that wrote the files (rank 0, the chief)


def checkpoints(output_dir: str) -> List[str]:
    """The complete checkpoints under output_dir, oldest first."""
    if not os.path.isdir(output_dir):
        return []
    found = [(int(m.group(1)), name) for name in os.listdir(output_dir) if (m := CHECKPOINT.match(name))
             and os.path.isfile(os.path.join(output_dir, name, PROGRESS_NAME))]
    return [os.path.join(output_dir, name) for _, name in sorted(found)]


def _resume_point(o: TrainOptions) -> Optional[str]:
    """The checkpoint to continue from (None: start anew); refuses to overwrite another run."""
    out = o.output_dir
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"output_dir {out} is a file; give a directory")
    found = checkpoints(out)
    held = [os.path.basename(p) for p in found[-1:]] + [CONFIG_NAME] * os.path.isfile(os.path.join(out, CONFIG_NAME))
    if o.resume:
        if not found and held:
            raise ValueError(f"output_dir {out} holds a model (config.json) but no checkpoint to resume from; "
                             "choose a new directory")
        return found[-1] if found else None
    if held:
        raise ValueError(f"output_dir {out} already holds a training run ({', '.join(held)}); pass resume=True "
                         "(--resume) to continue it, or choose a new directory")
    return None


def _max_length(o: TrainOptions, config: MobileBertConfig, tokenizer) -> int:
    limit = min(config.max_position_embeddings, getattr(tokenizer, "model_max_length", None) or 10**9)
    if o.max_length is None:
        return min(DEFAULT_MAX_LENGTH.get(o.task, 128), limit)
    if o.max_length > limit:
        raise ValueError(f"max_length {o.max_length} exceeds this model's maximum of {limit} tokens "
                         "(config.max_position_embeddings, tokenizer model_max_length)")
    return o.max_length


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_same_run(checkpoint: str, saved: dict, now: dict) -> None:
    changed = [f"{k}: {saved.get(k)!r} then, {v!r} now" for k, v in now.items() if saved.get(k) != v]
    if changed:
        raise ValueError(f"{checkpoint} cannot be resumed with other settings ({'; '.join(changed)}); resume with "
                         "the settings it was started with, or start a new output directory")


def derived_seed(*parts: int) -> int:
    """A 31-bit seed from (seed, step, process): independent streams for every process and segment."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0] >> 1)


@dataclass
class _Prepared:
    """What a run reads before it writes anything."""

    checkpoint: Optional[str]  # to resume from
    source: str  # the model (and tokenizer) to load: the checkpoint, else options.model
    tokenizer: object
    config: MobileBertConfig
    overrides: dict  # config changes for the head (labels)
    id2label: Optional[dict]
    max_length: int
    train: Encoded
    evaluation: Optional[Encoded]
    plan: StepPlan
    settings: dict  # what a checkpoint of this run records, and a resumed run must match
    progress: dict  # the checkpoint's progress.json ({} when starting anew)


def _prepare(o: TrainOptions, backend) -> _Prepared:
    """Everything that can fail on the user's input, checked before anything is written."""
    checkpoint = _resume_point(o)
    source = checkpoint or o.model
    tokenizer = load_tokenizer(None, source)
    config = MobileBertConfig.from_pretrained(source)
    train_examples = read_examples(o.train_file, o.task)
    eval_examples = read_examples(o.eval_file, o.task) if o.eval_file else None
    overrides, id2label = {}, None
    if o.task in CLASS_LABELS:
        id2label, new = plan_labels(config.id2label, train_examples, o.task)
        overrides = {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()},
                     "ignore_mismatched_sizes": new or not has_labels(config.id2label)}  # a new head for new labels
        if o.task == "text-classification":
            overrides["problem_type"] = "single_label_classification"
    max_length = _max_length(o, config, tokenizer)
    encoded = [encode(o.task, examples, tokenizer, max_length, overrides.get("label2id"), o.doc_stride)
               if examples else None for examples in (train_examples, eval_examples)]
    for data in filter(None, encoded):
        check_vocabulary(data, config.vocab_size)
    plan = StepPlan.make(len(encoded[0].features), backend.num_replicas, o.batch_size, o.grad_accum, o.epochs,
                         o.warmup_ratio)
    settings = {**{k: getattr(o, k) for k in RUN_SETTINGS}, "max_length": max_length, "framework": backend.framework,
                "num_replicas": backend.num_replicas, "train_sha256": _file_digest(o.train_file)}
    progress = {}
    if checkpoint:
        with open(os.path.join(checkpoint, PROGRESS_NAME), encoding="utf-8") as f:
            progress = json.load(f)
        _check_same_run(checkpoint, progress["settings"], settings)
    return _Prepared(checkpoint, source, tokenizer, config, overrides, id2label, max_length, *encoded, plan, settings,
                     progress)


def run_training(o: TrainOptions, backend) -> TrainResult:
    run = _prepare(o, backend)
    model = backend.load(run.source, o.task, run.overrides, o)
    backend.setup_optimizer(o, run.plan)
    if run.checkpoint:
        backend.load_state(run.checkpoint)
    step = run.progress.get("step", 0)
    records = _read_metrics(o.output_dir, step) if run.checkpoint else []
    if backend.is_main:
        _remove_staging_leftovers(o.output_dir)
        if o.resume:
            print(f"mobilebert train: resuming from {run.checkpoint}" if run.checkpoint else
                  f"mobilebert train: no checkpoint in {o.output_dir}; starting from the beginning", file=sys.stderr)
    backend.reseed(derived_seed(o.seed, step, backend.process_index))

    plan, features = run.plan, run.train.features
    masker = MaskedLM(run.tokenizer, o.seed, run.config.vocab_size) if o.task == "fill-mask" else None
    bar = _progress_bar(o, plan, step, backend)
    # [sum of loss * targets, targets] of the epoch so far; a resumed run's earlier part is counted once, by the main process
    epoch_loss = np.asarray(run.progress.get("epoch_loss", [0.0, 0.0])) * backend.is_main
    for epoch in range(step // plan.steps_per_epoch, o.epochs):
        orders = backend.replica_orders(len(features), epoch, o.seed)
        rows, seconds = 0, 0.0  # rows read by every process, seconds spent in steps
        for s in range(step - epoch * plan.steps_per_epoch, plan.steps_per_epoch):
            started = time.perf_counter()
            batches, counts = [], []  # per replica this process feeds: its micro-batches, their targets
            for order in orders:
                chunks = step_batches(order, o.batch_size, o.grad_accum, s)
                batches.append([collate(o.task, [features[i] for i in c], run.tokenizer.pad_token_id, run.max_length,
                                        (masker, (0, epoch))) for c in chunks])
                counts.append([target_count(o.task, b) for b in batches[-1]])
                rows += sum(map(len, chunks)) * backend.process_count
            lr = backend.learning_rate()  # the rate this step uses
            loss, targets = backend.train_step(batches, counts)
            seconds += time.perf_counter() - started
            epoch_loss += (loss, targets)
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss / max(targets, 1):.4g}", lr=f"{lr:.3g}",
                                examples_per_s=f"{rows / max(seconds, 1e-9):.1f}")
            epoch_done = s == plan.steps_per_epoch - 1
            if epoch_done:
                total = backend.all_sum(epoch_loss)
                records.append({"epoch": epoch + 1, "step": step, "train_loss": float(total[0] / max(total[1], 1)),
                                "learning_rate": lr, "train_examples_per_second": rows / max(seconds, 1e-9)})
                if run.evaluation is not None:
                    records[-1].update(_evaluate(o, backend, run, masker))
                epoch_loss[:] = 0
                if backend.is_main:
                    _write_metrics(o.output_dir, records, bar)
            if (epoch_done and o.save_every_epoch) or (o.save_steps and step % o.save_steps == 0):
                _save_checkpoint(o, backend, run, step, epoch_loss)
                backend.reseed(derived_seed(o.seed, step, backend.process_index))
    if bar is not None:
        bar.close()

    if backend.is_main:  # the final model: the output directory itself, in the hub's layout
        with staged_directory(o.output_dir) as stage:
            backend.save_model(stage)
            run.tokenizer.save_pretrained(stage)
    backend.barrier()
    return TrainResult(o.output_dir, step, records, model, backend.is_main)


def _write_metrics(output_dir: str, records: List[dict], bar) -> None:
    atomic_write_text(os.path.join(output_dir, METRICS_NAME), "".join(json.dumps(r) + "\n" for r in records))
    if bar is not None:
        last = records[-1]
        bar.write(f"epoch {last['epoch']}: " + ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k not in ("epoch", "step")))


def _save_checkpoint(o: TrainOptions, backend, run: _Prepared, step: int, epoch_loss) -> None:
    total = backend.all_sum(epoch_loss)  # the unfinished epoch's loss, so a resumed run reports the same
    if backend.is_main:
        with staged_directory(os.path.join(o.output_dir, f"checkpoint-{step}")) as stage:
            backend.save_model(stage)
            run.tokenizer.save_pretrained(stage)
            backend.save_state(stage)
            with open(os.path.join(stage, PROGRESS_NAME), "w", encoding="utf-8") as f:  # last: the checkpoint is complete
                json.dump({"step": step, "settings": run.settings, "epoch_loss": total.tolist()}, f, indent=2)
    backend.barrier()


def _evaluate(o: TrainOptions, backend, run: _Prepared, masker) -> dict:
    """Each process scores the examples i with i % process_count == process_index; the sums are added up."""
    evaluator = Evaluator(o.task, run.evaluation, run.id2label)
    mine = [f for f in run.evaluation.features if f["example"] % backend.process_count == backend.process_index]
    for first in range(0, len(mine), o.batch_size):
        features = mine[first:first + o.batch_size]
        # fill-mask: key (1,) gives the same masks every epoch, apart from the training draws (0, epoch)
        batch = collate(o.task, features, run.tokenizer.pad_token_id, run.max_length, (masker, (1,)))
        evaluator.add(features, batch, backend.predict(batch))
    return evaluator.scores(backend.all_sum(evaluator.sums()))


def _read_metrics(output_dir: str, up_to_step: int) -> List[dict]:
    """The metrics.jsonl records a resumed run keeps: those of the steps its checkpoint had taken."""
    path = os.path.join(output_dir, METRICS_NAME)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if r.get("step", 0) <= up_to_step]


def _remove_staging_leftovers(output_dir: str) -> None:
    """Checkpoints that a killed process was writing: staged apart, never renamed into place, so never
    read. (A cut swap of the final model into output_dir is undone by the next staging into it.)"""
    if os.path.isdir(output_dir):
        for name in os.listdir(output_dir):
            if name.startswith(".checkpoint-") and name.endswith(STAGING_SUFFIX):
                shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)


def _progress_bar(o: TrainOptions, plan: StepPlan, step: int, backend):
    if not (o.progress and backend.is_main):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=plan.total_steps, initial=step, unit="step", desc=f"mobilebert train {o.task}", dynamic_ncols=True)
