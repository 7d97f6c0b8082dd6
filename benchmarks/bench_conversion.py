"""Conversion speed and memory on a full-size google/mobilebert-uncased-shaped checkpoint.

    python benchmarks/bench_conversion.py [--workdir DIR] [--skip-reference] [--layers N]

(--layers 2: a small smoke run of the same jobs; the figures to quote use the default 24.)

Builds MobileBertForPreTraining-shaped random weights (24 layers, hidden 512, 4 FFNs, vocab 30522;
about 141 MiB in float32 with the MLM head, like the hub's pytorch_model.bin), then converts files to files in each direction, each job in a fresh
subprocess: ours (`conversion.directories.convert_checkpoint`, numpy only) and the reference's route
(transformers: TFMobileBertForPreTraining.from_pretrained(dir, from_pt=True).save_pretrained and
MobileBertForPreTraining(config) + load_tf2_checkpoint_in_pytorch_model + save_pretrained, which is what
from_tf=True does, spelled out because from_tf=True leaves meta tensors in transformers 4.57). Time is wall-clock of
the job alone (imports excluded); peak memory is the growth of the process' peak RSS over its RSS
after the imports (Linux /proc: the peak is reset through /proc/self/clear_refs before the job).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conversion.formats import write_safetensors  # noqa: E402
from mobilebert_common.weights import entries  # noqa: E402
from mobilebert_common import MobileBertConfig  # noqa: E402

# google/mobilebert-uncased
FULL = dict(vocab_size=30522, hidden_size=512, embedding_size=128, intra_bottleneck_size=128, num_hidden_layers=24,
            num_attention_heads=4, intermediate_size=512, num_feedforward_networks=4, max_position_embeddings=512,
            trigram_input=True, use_bottleneck=True, key_query_shared_bottleneck=True, use_bottleneck_attention=False,
            normalization_type="no_norm", classifier_activation=True, hidden_act="relu")
ARCH = "MobileBertForPreTraining"

# Run inside the child: imports first, then reset the RSS peak, then time the job.
CHILD = r"""
import json, os, sys, time
sys.path.insert(0, {root!r})
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
job, src, dst = {job!r}, {src!r}, {dst!r}
if job.startswith("ours"):
    from conversion.directories import convert_checkpoint
else:
    import transformers, torch, tensorflow
    transformers.logging.set_verbosity_error()

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

base = rss("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM (peak RSS) to the current RSS
t = time.perf_counter()
if job == "ours-pt-to-tf":
    convert_checkpoint("pt-to-tf", src, dst)
elif job == "ours-tf-to-pt":
    convert_checkpoint("tf-to-pt", src, dst)
elif job == "ref-pt-to-tf":
    transformers.TFMobileBertForPreTraining.from_pretrained(src, from_pt=True).save_pretrained(dst)
elif job == "ref-tf-to-pt":
    # from_pretrained(src, from_tf=True) leaves the parameters on the meta device in transformers 4.57
    # (save_pretrained then fails), so this is the same route spelled out: build, load the h5, save.
    from transformers.modeling_tf_pytorch_utils import load_tf2_checkpoint_in_pytorch_model
    model = transformers.MobileBertForPreTraining(transformers.MobileBertConfig.from_pretrained(src))
    load_tf2_checkpoint_in_pytorch_model(model, os.path.join(src, "tf_model.h5"))
    model.save_pretrained(dst)
seconds = time.perf_counter() - t
print("RESULT " + json.dumps({{"seconds": seconds, "peak_growth": rss("VmHWM:") - base, "base": base}}))
"""


def run_job(job: str, src: Path, dst: Path) -> dict:
    code = CHILD.format(root=str(ROOT), job=job, src=str(src), dst=str(dst))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{job} failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where the checkpoints go (default: a temporary directory)")
    parser.add_argument("--skip-reference", action="store_true", help="only time our converter")
    parser.add_argument("--layers", type=int, default=FULL["num_hidden_layers"],
                        help="num_hidden_layers (default 24, the real model; fewer for a quick smoke run)")
    args = parser.parse_args()
    if args.layers < 1:
        parser.error("--layers must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        config = MobileBertConfig(**{**FULL, "num_hidden_layers": args.layers}, architectures=[ARCH])
        rng = np.random.default_rng(0)
        weights = {e.pt_name: (rng.standard_normal(e.shape, dtype=np.float32) * 0.02)
                   for e in entries(config, ARCH) if e.transform != "tie"}
        src = work / "pt"
        config.save_pretrained(src)
        write_safetensors(src / "model.safetensors", weights, {"format": "pt"})
        size = (src / "model.safetensors").stat().st_size
        del weights
        shape = "google/mobilebert-uncased shape" + ("" if args.layers == FULL["num_hidden_layers"] else
                                                      f" with {args.layers} layers (smoke run)")
        print(f"checkpoint: {ARCH}, {shape}, {size / 2**20:.1f} MiB model.safetensors "
              f"(float32, random weights); python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        jobs = [("ours-pt-to-tf", src, work / "ours_tf"), ("ours-tf-to-pt", work / "ours_tf", work / "ours_pt")]
        if not args.skip_reference:
            jobs += [("ref-pt-to-tf", src, work / "ref_tf"), ("ref-tf-to-pt", work / "ref_tf", work / "ref_pt")]
        results = {job: run_job(job, s, d) for job, s, d in jobs}
        print(f"{'job':<16}{'seconds':>9}{'peak RSS growth':>18}{'x checkpoint':>14}")
        for job, r in results.items():
            print(f"{job:<16}{r['seconds']:>9.2f}{r['peak_growth'] / 2**20:>14.0f} MiB{r['peak_growth'] / size:>14.2f}")


if __name__ == "__main__":
    main()
