"""Fine-tuning on many processes and devices: one torchrun launch (two processes, DDP over gloo) and one
process with tf.distribute.MirroredStrategy over two logical CPUs; what they run is tests/train_workers.py.

Both take the steps of one process given the whole batch: the weights agree to float32 round-off,
and every replica holds the same weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.harness.models import VARIANTS, assert_close, unused_parameters
from tests.harness.train import examples, model_dir, write_jsonl
from tests.train_workers import EQUALITY

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
TASKS = ("text-classification", "token-classification", "question-answering", "fill-mask", "multiple-choice")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> str:
    """Checkpoints (model-equality: dropout off, so that runs can be compared; one per variant) and data."""
    root = tmp_path_factory.mktemp("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model_dir(root / "model-equality", "layer_norm_gelu", num_hidden_layers=1, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0)
        for variant in VARIANTS:
            model_dir(root / f"model-{variant}", variant, num_hidden_layers=1)
    for task in TASKS:
        write_jsonl(root / f"{task}.jsonl", examples(task, 16 if task == "fill-mask" else 8))
    return str(root)


def launch(command, work: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]


def one_process(work: str) -> dict:
    """The fill-mask run of the workers in this process, with the whole batch (4 = 2 processes x 2)."""
    import torch

    from mobilebert_pt import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = train("fill-mask", f"{work}/model-equality", f"{work}/fill-mask.jsonl", f"{work}/one", batch_size=4,
                           grad_accum=2, **EQUALITY)
    finally:
        torch.set_num_threads(threads)
    assert result.global_step == 2  # 16 rows, 4 per micro-batch, 2 micro-batches per step
    return {k: v.detach().numpy() for k, v in result.model.state_dict().items()}


@pytest.fixture(scope="module")
def torchrun(work) -> str:
    launch([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            "-m", "tests.train_workers", "ddp", work], work)
    return work


def test_two_ddp_processes_take_the_steps_of_one_process_with_the_whole_batch(torchrun):
    ranks = [np.load(f"{torchrun}/ddp-rank{r}.npz") for r in range(2)]
    alone = one_process(torchrun)
    assert sorted(ranks[0]) == sorted(ranks[1]) == sorted(alone)
    for name in alone:
        np.testing.assert_array_equal(ranks[1][name], ranks[0][name], err_msg=name)  # DDP replicas are identical
        assert_close(ranks[0][name], alone[name], rtol=1e-5, what=name)
    from mobilebert_common import MobileBertConfig
    from mobilebert_pt import MobileBertForMaskedLM

    # the weights the config never reads were frozen, and the others did move
    start = MobileBertForMaskedLM.from_pretrained(f"{torchrun}/model-equality").state_dict()
    unused = unused_parameters(MobileBertConfig.from_pretrained(f"{torchrun}/model-equality"), "MobileBertForMaskedLM")
    assert unused and all(np.array_equal(ranks[0][n], start[n].numpy()) for n in unused)
    assert sum(not np.array_equal(ranks[0][n], start[n].numpy()) for n in alone) > len(alone) // 2


def test_every_config_variant_trains_under_ddp_without_find_unused_parameters(torchrun):
    runs = json.loads(Path(f"{torchrun}/variants.json").read_text())
    assert {r["variant"] for r in runs} == set(VARIANTS)
    assert {r["task"] for r in runs} == set(TASKS)
    assert all(r["steps"] >= 2 for r in runs)  # DDP raises on the second step when a weight got no gradient


def test_the_command_under_torchrun_writes_once(torchrun):
    out = Path(f"{torchrun}/cli")
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and "eval_accuracy" in json.loads(lines[0])
    assert {"config.json", "model.safetensors", "vocab.txt", "checkpoint-2"} <= set(os.listdir(out))
    assert not [p for p in os.listdir(out) if p.endswith(".partial")]


def test_mirrored_strategy_on_two_devices_takes_the_steps_of_one_device_with_the_whole_batch(work):
    launch([sys.executable, "-m", "tests.train_workers", "mirrored", work], work)
    alone = np.load(f"{work}/mirrored-1-replica0.npz")
    replicas = [np.load(f"{work}/mirrored-2-replica{r}.npz") for r in range(2)]
    assert sorted(alone) == sorted(replicas[0]) == sorted(replicas[1])
    for name in alone:
        np.testing.assert_array_equal(replicas[1][name], replicas[0][name], err_msg=name)
        assert_close(replicas[0][name], alone[name], rtol=1e-5, what=name)
    from mobilebert_common.weights import entries
    from mobilebert_common import MobileBertConfig
    from mobilebert_tf import TFMobileBertForMaskedLM, weights_by_name

    config = MobileBertConfig.from_pretrained(f"{work}/model-equality")
    unused = {e.tf_name for e in entries(config, "MobileBertForMaskedLM") if e.unused}
    start = {k: v.numpy() for k, v in weights_by_name(TFMobileBertForMaskedLM.from_pretrained(
        f"{work}/model-equality", from_pt=True)).items()}
    assert unused and all(np.array_equal(alone[n], start[n]) for n in unused)
