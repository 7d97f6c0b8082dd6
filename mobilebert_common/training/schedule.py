"""How many steps a run takes, the learning-rate schedule, and which rows each replica reads.

    StepPlan.make(num_features, num_replicas, batch_size, grad_accum, epochs, warmup_ratio)
    linear_schedule(step, warmup_steps, total_steps) -> factor of the peak learning rate
    shard(n, num_replicas, replica, seed, epoch) -> row indices, as torch's DistributedSampler gives them
    step_batches(indices, batch_size, grad_accum, step) -> the micro-batches (index lists) of one step
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np


@dataclass(frozen=True)
class StepPlan:
    per_replica: int  # rows each replica reads per epoch (the data padded to a multiple of the replicas)
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int

    @classmethod
    def make(cls, num_features: int, num_replicas: int, batch_size: int, grad_accum: int, epochs: int,
             warmup_ratio: float) -> "StepPlan":
        per_replica = math.ceil(num_features / num_replicas)
        steps = math.ceil(math.ceil(per_replica / batch_size) / grad_accum)
        total = steps * epochs
        return cls(per_replica, steps, total, math.ceil(total * warmup_ratio))


def linear_schedule(step: int, warmup_steps: int, total_steps: int) -> float:
    """0 -> 1 over the warm-up steps, then 1 -> 0 at total_steps (the factor for the step about to be taken)."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def shard(n: int, num_replicas: int, replica: int, seed: int, epoch: int) -> List[int]:
    """This replica's rows for the epoch: a permutation drawn from (seed, epoch), padded with its own
    first rows to a multiple of num_replicas, every num_replicas-th row from `replica` on (the
    scheme of torch.utils.data.DistributedSampler, for the frameworks that do not have it)."""
    order = np.random.default_rng([seed, epoch]).permutation(n).tolist()
    total = math.ceil(n / num_replicas) * num_replicas
    order += (order * math.ceil(total / n))[: total - n]
    return order[replica:total:num_replicas]


def step_batches(indices: Sequence[int], batch_size: int, grad_accum: int, step: int) -> List[List[int]]:
    """The micro-batches of step `step` (0-based within the epoch): up to grad_accum batches of batch_size."""
    first = step * batch_size * grad_accum
    chunk = list(indices[first:first + batch_size * grad_accum])
    return [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
