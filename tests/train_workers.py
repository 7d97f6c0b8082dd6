"""Processes the distributed fine-tuning tests start (tests/test_train_distributed.py).

    torchrun --nproc-per-node 2 -m tests.train_workers ddp WORK
        1. fill-mask with grad_accum 2, batch 2 per rank: each rank saves its replica's weights to
           WORK/ddp-rank<R>.npz (the test compares them with each other and with one process, batch 4)
        2. every config variant trains two DDP steps with find_unused_parameters=False (which fails on
           the second step if a weight got no gradient): WORK/variants.json lists the runs
        3. `mobilebert train` itself under torchrun, into WORK/cli
    python -m tests.train_workers mirrored WORK
        the same fill-mask run under tf.distribute.MirroredStrategy on one logical CPU (batch 4, two
        micro-batches per step), then on two (batch 4 each, one micro-batch): the same 8 rows per step.
        WORK/mirrored-<devices>-replica<R>.npz: each replica's copy of every weight. (Fewer micro-batches
        on two devices: each is a copy of the model in the traced step, and tracing is what takes time.)

WORK holds the checkpoints and data the test made: WORK/model-<variant>/, WORK/<task>.jsonl.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

EQUALITY = dict(epochs=1, lr=1e-3, seed=3, progress=False, save_every_epoch=False, max_length=24)
VARIANT_TASKS = {"default": ("text-classification", "token-classification", "question-answering", "fill-mask",
                             "multiple-choice")}  # the other variants: text-classification and fill-mask


def ddp(work: str) -> None:
    import torch

    from mobilebert_cli.main import main as cli
    from mobilebert_pt import train
    from tests.harness.models import VARIANTS

    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    result = train("fill-mask", f"{work}/model-equality", f"{work}/fill-mask.jsonl", f"{work}/ddp", batch_size=2,
                   grad_accum=2, **EQUALITY)
    np.savez(f"{work}/ddp-rank{rank}.npz", **{k: v.detach().numpy() for k, v in result.model.state_dict().items()})

    runs = []
    for variant in VARIANTS:
        for task in VARIANT_TASKS.get(variant, ("text-classification", "fill-mask")):
            out = train(task, f"{work}/model-{variant}", f"{work}/{task}.jsonl", f"{work}/{variant}-{task}", epochs=1,
                        batch_size=2, lr=1e-3, progress=False, save_every_epoch=False)
            runs.append({"variant": variant, "task": task, "steps": out.global_step})
    if rank == 0:
        with open(f"{work}/variants.json", "w") as f:
            json.dump(runs, f)

    status = cli(["train", "--task", "text-classification", "--model", f"{work}/model-default", "--train",
                  f"{work}/text-classification.jsonl", "--output", f"{work}/cli", "--epochs", "1", "--batch-size", "2",
                  "--eval", f"{work}/text-classification.jsonl", "--no-progress"])
    if status:
        sys.exit(status)


def mirrored(work: str) -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from mobilebert_tf import train, weights_by_name

    for devices in (["/cpu:0"], ["/cpu:0", "/cpu:1"]):
        strategy = tf.distribute.MirroredStrategy(devices)
        result = train("fill-mask", f"{work}/model-equality", f"{work}/fill-mask.jsonl", f"{work}/mirrored-{len(devices)}",
                       batch_size=4, grad_accum=3 - len(devices), strategy=strategy, **EQUALITY)
        assert result.global_step == 2
        weights = weights_by_name(result.model)
        for replica in range(len(devices)):
            arrays = {k: strategy.experimental_local_results(v)[replica].numpy() for k, v in weights.items()}
            np.savez(f"{work}/mirrored-{len(devices)}-replica{replica}.npz", **arrays)


if __name__ == "__main__":
    {"ddp": ddp, "mirrored": mirrored}[sys.argv[1]](sys.argv[2])
