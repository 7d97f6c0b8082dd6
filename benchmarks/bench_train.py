"""Fine-tuning throughput: examples/s of mobilebert_pt.train on 1 and N processes (torchrun, DDP over gloo).

A small MobileBERT (default: 6 layers, H = 256, bottleneck 64, 4 FFNs, the released 30,522-word
vocabulary when ../shared/data/vocab-uncased.txt is there) is written once with random weights,
with a text-classification file of --examples rows of 40-60 words. Each setting then runs in
fresh processes: `torchrun --standalone --nproc-per-node N -m mobilebert_cli train ...` for
--epochs epochs, and the figure is train_examples_per_second of the last epoch (metrics.jsonl:
examples of every process per second of training steps; data loading and steps included, eval
and checkpoints not). One process is measured with 1 torch thread and with all cores; torchrun
gives each of N processes OMP_NUM_THREADS=1.

    python3 benchmarks/bench_train.py [--procs 1 2] [--layers 6] [--hidden 256] [--examples 512]
                                      [--batch-size 8] [--max-length 64] [--epochs 2] [--framework pt]

Timings are noisy on a shared machine; compare settings measured in the same invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_VOCAB = os.path.join(ROOT, "..", "shared", "data", "vocab-uncased.txt")


def make_model(directory: str, layers: int, hidden: int) -> None:
    sys.path.insert(0, ROOT)
    import torch

    from mobilebert_common import MobileBertConfig, MobileBertTokenizerFast
    from mobilebert_pt import MobileBertForMaskedLM

    os.makedirs(directory, exist_ok=True)
    if os.path.isfile(SHARED_VOCAB):
        shutil.copy(SHARED_VOCAB, os.path.join(directory, "vocab.txt"))
    else:
        words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(2000)]
        with open(os.path.join(directory, "vocab.txt"), "w") as f:
            f.write("\n".join(words) + "\n")
    tokenizer = MobileBertTokenizerFast.from_pretrained(directory)
    config = MobileBertConfig(vocab_size=len(tokenizer), hidden_size=hidden, embedding_size=hidden // 2,
                              intra_bottleneck_size=hidden // 4, intermediate_size=hidden, num_hidden_layers=layers,
                              num_attention_heads=4, max_position_embeddings=512)
    torch.manual_seed(0)
    MobileBertForMaskedLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def make_data(path: str, n: int, vocab_file: str) -> None:
    with open(vocab_file, encoding="utf-8") as f:
        words = [w.strip() for w in f if w.strip().isalpha()][1000:6000] or ["paris", "city"]
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(40, 60)))
            f.write(json.dumps({"text": text, "label": "pos" if i % 2 else "neg"}) + "\n")


def run(work: str, procs: int, threads: int, args) -> float:
    out = os.path.join(work, f"out-{args.framework}-{procs}x{threads}")
    shutil.rmtree(out, ignore_errors=True)
    command = ["train", "--task", "text-classification", "--model", os.path.join(work, "model"), "--train",
               os.path.join(work, "train.jsonl"), "--output", out, "--epochs", str(args.epochs), "--batch-size",
               str(args.batch_size), "--max-length", str(args.max_length), "--no-progress", "--no-save-every-epoch",
               "--framework", args.framework]
    if procs == 1:
        command = [sys.executable, "-m", "mobilebert_cli", *command]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs),
                   "-m", "mobilebert_cli", *command]
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return json.loads(f.readlines()[-1])["train_examples_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--framework", choices=("pt", "tf"), default="pt")
    parser.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    args = parser.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="bench_train.")
    make_model(os.path.join(work, "model"), args.layers, args.hidden)
    make_data(os.path.join(work, "train.jsonl"), args.examples, os.path.join(work, "model", "vocab.txt"))
    cores = os.cpu_count() or 1
    print(f"{args.layers} layers, H={args.hidden}, {args.examples} rows of 40-60 words cut to {args.max_length} tokens, "
          f"batch {args.batch_size} per process, {args.framework}, {cores} cores")
    settings = [(1, 1), (1, cores)] + [(p, 1) for p in args.procs if p > 1]
    for procs, threads in settings:
        if procs == 1 and 1 not in args.procs:
            continue
        rate = run(work, procs, threads, args)
        print(f"{procs} process(es) x {threads} thread(s): {rate:8.1f} examples/s")


if __name__ == "__main__":
    main()
