"""Fine-tuning in PyTorch, one process or many (torchrun: DistributedDataParallel, gloo on CPU, nccl on GPU).

    from mobilebert_pt import train
    result = train("text-classification", "google/mobilebert-uncased", "train.jsonl", "out",
                   eval_file="dev.jsonl", epochs=3, lr=5e-5, batch_size=16, bf16=True)

The loop, the data, the metrics and the checkpoints are framework-free and shared with Keras
(mobilebert_common/training); this file holds what only PyTorch does: the model on its device,
DDP, AdamW with the linear schedule (LambdaLR), clipping, bfloat16 autocast, the optimizer files.

Under torchrun (WORLD_SIZE > 1) every process trains one replica: DistributedSampler shards the
data, DDP averages the gradients, rank 0 alone writes. Weights that the config never reads (the
`unused` entries of mobilebert_common.weights: embedding_transformation without trigram and with
embedding_size == hidden_size, the shared bottleneck under use_bottleneck_attention) are frozen
and left out of the optimizer, so DDP runs without find_unused_parameters.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from mobilebert_common.training.loop import TrainResult, run_training
from mobilebert_common.training.options import EVAL_OUTPUTS, HEAD_CLASSES, make_options
from mobilebert_common.training.schedule import linear_schedule
from mobilebert_common.weights import entries
from mobilebert_pt import modeling  # the task classes; not through the package, whose train() is this module's

OPTIMIZER_NAME, SCHEDULER_NAME = "optimizer.pt", "scheduler.pt"
ADAM_EPSILON = 1e-8


def train(task: str, model: str, train_file: str, output_dir: str, eval_file: str = None, *, device=None,
          **options) -> TrainResult:
    """Fine-tune ``model`` (a directory or hub repo id) for ``task`` on ``train_file``; the result lands
    in ``output_dir`` (hub layout: config.json, tokenizer files, model.safetensors), checkpoints in
    output_dir/checkpoint-<step>/, per-epoch metrics in output_dir/metrics.jsonl.

    options (mobilebert_common.training.options.TrainOptions): epochs=3, lr=5e-5, batch_size=8 (per
    process), max_length=None, seed=42, resume=False, warmup_ratio=0.0, weight_decay=0.0,
    grad_accum=1, max_grad_norm=1.0, bf16=False, save_every_epoch=True, save_steps=None,
    doc_stride=None, progress=True. fp16=True is refused (float16 overflows on MobileBERT).
    device: None (cuda:LOCAL_RANK when there is a GPU, else the CPU), "cpu", "cuda", "cuda:N".
    Returns a TrainResult: output_dir, global_step, metrics (one dict per epoch), model.
    """
    opts = make_options(task, model, train_file, output_dir, eval_file, **options)
    return run_training(opts, TorchBackend(device))


def unused_weight_names(config, architecture: str) -> set:
    """The weights the checkpoint layout holds but this config's forward never reads (no gradient)."""
    return {e.pt_name for e in entries(config, architecture) if e.unused}


class _PaddedInputs(nn.Module):
    """The model called through model_inputs: the module DDP wraps."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict):
        return self.model(**model_inputs(self.model, batch), return_dict=True)


def model_inputs(model, batch: dict) -> dict:
    """The model called as the pipelines call it: padded positions get zero word embeddings (the trigram
    embedding would mix the [PAD] row into the last real token), so a row trains the same whatever its
    batch's padding."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    embeds = model.get_input_embeddings()(ids) * mask[..., None].to(model.dtype)  # (B, [C,] T, E)
    return {"inputs_embeds": embeds, **{k: v for k, v in batch.items() if k != "input_ids"}}


class TorchBackend:
    framework = "pt"

    def __init__(self, device=None):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device is None:
            device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
        self.device = _device(device)
        if self.world > 1 and not dist.is_initialized():
            # Kept for the life of the process (a later train() reuses it): tearing a group down and
            # setting it up again races with the other processes' rendezvous.
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.rank = dist.get_rank() if self.world > 1 else 0
        self.num_replicas = self.process_count = self.world
        self.process_index = self.rank
        self.is_main = self.rank == 0

    # ---------------------------------------------------------------- model and optimiser
    def load(self, source: str, task: str, overrides: dict, options):
        cls = getattr(modeling, HEAD_CLASSES[task])
        torch.manual_seed(options.seed)  # a new head starts the same in every process (and in a 1-process run)
        self.model = cls.from_pretrained(source, device_map=str(self.device), **overrides)
        frozen = unused_weight_names(self.model.config, HEAD_CLASSES[task])
        for name, param in self.model.named_parameters():
            param.requires_grad_(name not in frozen)
        self.model.train()
        self.task, self.bf16 = task, options.bf16
        self.wrapped = _PaddedInputs(self.model)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(self.wrapped, device_ids=ids, find_unused_parameters=False)
        return self.model

    def setup_optimizer(self, options, plan) -> None:
        params = [p for p in self.model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": options.weight_decay},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]  # biases and norms
        self.params = params
        self.max_grad_norm = options.max_grad_norm
        self.optimizer = torch.optim.AdamW(groups, lr=options.lr, eps=ADAM_EPSILON)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: linear_schedule(step, plan.warmup_steps, plan.total_steps))

    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def reseed(self, seed: int) -> None:
        torch.manual_seed(seed)  # dropout; CUDA generators included

    def replica_orders(self, n: int, epoch: int, seed: int):
        sampler = DistributedSampler(range(n), num_replicas=self.world, rank=self.rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return [list(sampler)]

    # ---------------------------------------------------------------- steps
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def _tensors(self, batch: dict) -> dict:
        return {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}

    def train_step(self, batches, counts):
        """One optimizer step over this process's micro-batches. Each loss is the model's mean over its
        targets, weighted by its share of all targets of the step in every process (DDP averages the
        gradients, hence * world): the step is the one a single process with the whole batch takes."""
        (batches,), (counts,) = batches, counts
        total = self.all_sum(np.asarray([sum(counts)], dtype=np.float64))[0]
        loss_sum = 0.0
        for i, (batch, count) in enumerate(zip(batches, counts)):
            last = i == len(batches) - 1
            sync = contextlib.nullcontext() if last or self.world == 1 else self.wrapped.no_sync()
            with sync:
                with self._autocast():
                    loss = self.wrapped(self._tensors(batch)).loss.float()
                (loss * (count * self.world / max(total, 1.0))).backward()
            loss_sum += loss.item() * count
        if self.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum, sum(counts)

    def predict(self, batch: dict) -> dict:
        """The unwrapped model in eval mode (no DDP collective: processes score different numbers of rows)."""
        self.model.eval()
        try:
            with torch.no_grad(), self._autocast():
                out = self.model(**model_inputs(self.model, self._tensors(batch)), return_dict=True)
        finally:
            self.model.train()
        result = {"loss": float(out.loss)}
        result.update({k: out[k].float().cpu().numpy() for k in EVAL_OUTPUTS[self.task]})
        return result

    # ---------------------------------------------------------------- processes
    def all_sum(self, array) -> np.ndarray:
        array = np.asarray(array, dtype=np.float64)
        if self.world == 1:
            return array
        device = self.device if self.device.type == "cuda" else torch.device("cpu")  # nccl reduces GPU tensors
        tensor = torch.from_numpy(array.copy()).to(device)
        dist.all_reduce(tensor)
        return tensor.cpu().numpy()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    # ---------------------------------------------------------------- files
    def save_model(self, directory: str) -> None:
        self.model.save_pretrained(directory)

    def save_state(self, directory: str) -> None:
        torch.save(self.optimizer.state_dict(), os.path.join(directory, OPTIMIZER_NAME))
        torch.save(self.scheduler.state_dict(), os.path.join(directory, SCHEDULER_NAME))

    def load_state(self, directory: str) -> None:
        for name, target in ((OPTIMIZER_NAME, self.optimizer), (SCHEDULER_NAME, self.scheduler)):
            path = os.path.join(directory, name)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path} is missing: the checkpoint cannot be resumed (was it written by Keras?)")
            target.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))


def _device(device) -> torch.device:
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r} is not a device; allowed: None, 'cpu', 'cuda', 'cuda:N'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} asks for a CUDA GPU, but torch.cuda.is_available() is False; use device='cpu'")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device={str(device)!r}: only the CPU and CUDA GPUs are supported")
    return device
