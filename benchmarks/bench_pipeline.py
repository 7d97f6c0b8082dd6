"""The fill-mask pipeline: ours in PyTorch and in Keras vs transformers 4.57.6's PyTorch pipeline, side by side.

    python3 benchmarks/bench_pipeline.py [--layers N] [--preset released|tiny] [--sentences 128] [--batch-size 8]
                                         [--runs 3] [--threads N] [--seed 0] [--vocab PATH] [--json PATH]

Quick run (4 layers instead of 24):
    python3 benchmarks/bench_pipeline.py --layers 4

The weights: the released-size config (MobileBertConfig() defaults, as the `mobilebert-uncased` preset: 24
layers, H = 512, V = 30,522; --layers overrides num_hidden_layers; --preset tiny is the small test config)
with random weights (seeded), saved ONCE to a temp dir in the hub layout: config.json and model.safetensors
(our PyTorch save_pretrained, a pre-training checkpoint as the hub's) and vocab.txt (the real uncased
vocabulary, --vocab, default ../shared/data/vocab-uncased.txt beside the repo). Three pipelines load that
one directory:
  pt            mobilebert_pt.pipeline("fill-mask", model=DIR, batch_size=B)
  tf            mobilebert_tf.pipeline("fill-mask", model=DIR, batch_size=B)  (converts model.safetensors, from_pt)
  transformers  transformers.pipeline("fill-mask", model=DIR, framework="pt", batch_size=B)

The inputs: --sentences seeded sentences of 6 to 60 whole words of the vocabulary, each with exactly one
[MASK]. Each pipeline is called once on all of them with top_k=5 (the warm-up call, timed as "first"), and
the top-5 answers of ours are checked against transformers': the token ids per sentence must be equal, and
the scores, rank by rank, relative to the sentence's top score (random weights give near-uniform scores of
about 1e-4, so an absolute test would pass anything), within SCORE_TOLERANCE. Random weights can tie rarely:
ids that differ while the scores agree rank by rank are two tied tokens, counted and reported, not a failure.

Then --runs rounds, each calling pt, tf, transformers in turn on all sentences (alternating, in this one
process); sentences/s per pipeline per round, the medians, and ours / transformers (above 1: ours is faster)
are printed and written to --json (default benchmarks/results/pipeline-HOST.json, not committed), with the
config, the machine and the versions. torch and TensorFlow use their default threads unless --threads. The
exit status is 1 when a check fails.

Timings are noisy on a shared machine: compare only figures of one run.
transformers is a benchmark-only reference: nothing of the suite imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log says nothing about speed

from benchmarks.bench_speed import REFERENCE_VERSION, quiet_loading, versions, write_checkpoint  # noqa: E402
from mobilebert_cli.demo import PRESETS  # noqa: E402
from mobilebert_common import MobileBertConfig  # noqa: E402
from mobilebert_common.files import atomic_write_text  # noqa: E402

CONFIGS = {"released": "mobilebert-uncased", "tiny": "mobilebert-tiny"}  # --preset -> mobilebert_cli.demo.PRESETS
VOCAB = os.path.join(os.path.dirname(ROOT), "shared", "data", "vocab-uncased.txt")
PIPELINES = ("pt", "tf", "transformers")
TOP_K = 5
WORDS = (6, 60)  # words per sentence, both ends included
SCORE_TOLERANCE = 1e-5  # max |our score - theirs| at the same rank / theirs' top score of the sentence


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(CONFIGS), default="released",
                        help="released: MobileBertConfig() defaults; tiny: the test config (default: %(default)s)")
    parser.add_argument("--layers", type=int, help="num_hidden_layers (default: the preset's; fewer for a quick run)")
    parser.add_argument("--sentences", type=int, default=128, help="sentences, one [MASK] each (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=8, help="the pipelines' batch_size (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="timed rounds after the warm-up (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads of torch and TensorFlow (0: their default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and sentences")
    parser.add_argument("--vocab", default=VOCAB, help="vocab.txt of the checkpoint (default: %(default)s)")
    parser.add_argument("--json", help="results file (default: benchmarks/results/pipeline-HOST.json)")
    args = parser.parse_args(argv)
    for name, low in (("layers", 1), ("sentences", 1), ("batch_size", 1), ("runs", 1), ("threads", 0)):
        value = getattr(args, name)
        if value is not None and value < low:
            parser.error(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
    overrides = {"num_hidden_layers": args.layers} if args.layers else {}
    config = MobileBertConfig(**{**PRESETS[CONFIGS[args.preset]], **overrides})
    args.json = args.json or os.path.join(ROOT, "benchmarks", "results", f"pipeline-{socket.gethostname()}.json")
    return args, config


# ------------------------------------------------------------------------------------------- inputs and checks


def read_words(vocab_path: str, vocab_size: int) -> list:
    """The vocabulary's whole words: lower-case ASCII letters only (no [CLS], ##piece, digit or punctuation),
    in file order. Each is one token, so a sentence of N words is N + 3 tokens with the full stop, [CLS] and [SEP].
    OSError when it cannot be read; ValueError when it is not UTF-8, has not the model's vocab_size lines or has no
    such word."""
    try:
        with open(vocab_path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except UnicodeDecodeError as err:
        raise ValueError(f"the vocabulary {vocab_path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    if len(lines) != vocab_size:
        raise ValueError(f"the vocabulary {vocab_path} has {len(lines)} lines; the model's vocab_size is {vocab_size}")
    words = [w for w in lines if w.isascii() and w.isalpha() and w.islower()]
    if not words:
        raise ValueError(f"the vocabulary {vocab_path} has no whole words (lower-case letters) to make sentences of")
    return words


def make_sentences(words: list, count: int, seed: int) -> list:
    """`count` sentences of WORDS[0]..WORDS[1] words drawn from `words`, one of them [MASK], ending with a full stop;
    the same for the same seed."""
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(count):
        picked = [words[i] for i in rng.integers(0, len(words), size=int(rng.integers(WORDS[0], WORDS[1] + 1)))]
        picked[0] = picked[0].capitalize()  # the uncased tokenizer lower-cases it again
        picked[int(rng.integers(0, len(picked)))] = "[MASK]"
        sentences.append(" ".join(picked) + " .")
    return sentences


def compare(ours: list, theirs: list) -> dict:
    """ours, theirs: a fill-mask pipeline's answers, one list of TOP_K {"token", "score", ...} per sentence.
    differ: sentences whose top-k token ids differ; max_score_diff: the largest |score difference| at the same rank
    relative to the sentence's top score (theirs). Ids that differ while the scores agree rank by rank are a tie
    between two tokens (random weights), not an error: agree is the scores' test alone."""
    counts = [len(sentence) for sentence in ours], [len(sentence) for sentence in theirs]
    if counts[0] != counts[1]:
        raise ValueError(f"the pipelines gave different numbers of answers per sentence (ours {counts[0]}, theirs "
                         f"{counts[1]}); both were given the same sentences and top_k={TOP_K}")
    our_ids, their_ids = (np.array([[a["token"] for a in s] for s in answers]) for answers in (ours, theirs))  # (S, K)
    our_scores, their_scores = (np.array([[a["score"] for a in s] for s in answers], np.float64)
                                for answers in (ours, theirs))  # (S, K)
    differ = int((our_ids != their_ids).any(axis=1).sum())
    top = their_scores.max(axis=1, keepdims=True)  # (S, 1)
    max_diff = float((np.abs(our_scores - their_scores) / top).max())  # a NaN score stays NaN and fails below
    return dict(differ=differ, max_score_diff=max_diff, agree=bool(max_diff <= SCORE_TOLERANCE))


# ------------------------------------------------------------------------------------------- pipelines


def load_pipelines(directory: str, batch_size: int, threads: int) -> dict:
    """{name: the pipeline}: ours in PyTorch and Keras, transformers' in PyTorch, all on the CPU, from `directory`."""
    import tensorflow as tf
    import torch

    if threads:
        torch.set_num_threads(threads)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.get_logger().setLevel("ERROR")
    import mobilebert_pt
    import mobilebert_tf

    transformers = quiet_loading()
    return {
        "pt": mobilebert_pt.pipeline("fill-mask", model=directory, batch_size=batch_size),
        "tf": mobilebert_tf.pipeline("fill-mask", model=directory, batch_size=batch_size),
        "transformers": transformers.pipeline("fill-mask", model=directory, framework="pt", batch_size=batch_size),
    }


def run(pipelines: dict, sentences: list, runs: int, report) -> dict:
    """One warm-up call each (its answers checked against transformers'), then `runs` rounds, pipeline after
    pipeline. report(line) prints. Returns the results: first-call seconds, agreement, sentences/s per round."""
    firsts, answers = {}, {}
    for name, fill in pipelines.items():
        start = time.perf_counter()
        answers[name] = fill(sentences, top_k=TOP_K)
        if answers[name] and isinstance(answers[name][0], dict):  # a list of one sentence answers as one sentence
            answers[name] = [answers[name]]
        firsts[name] = time.perf_counter() - start
    agreement = {name: compare(answers[name], answers["transformers"]) for name in PIPELINES[:2]}
    for name, check in agreement.items():
        report(f"{name} vs transformers, top-{TOP_K} ids of {len(sentences)} sentences: {check['differ']} differ; "
               f"max |score difference| / top score {check['max_score_diff']:.1e} "
               f"({'ok' if check['agree'] else 'DIFFER'}, within {SCORE_TOLERANCE:g})")
    rates = {name: [] for name in pipelines}
    for round_ in range(1, runs + 1):
        for name, fill in pipelines.items():
            start = time.perf_counter()
            fill(sentences, top_k=TOP_K)
            rates[name].append(len(sentences) / (time.perf_counter() - start))
        report(f"round {round_}: " + ", ".join(f"{name} {rates[name][-1]:.1f}" for name in pipelines) + " sentences/s")
    return dict(first_s=firsts, agreement=agreement, sentences_per_s=rates)


# ------------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    started = time.perf_counter()
    args, config = parse_args(argv)
    try:
        words = read_words(args.vocab, config.vocab_size)
    except (OSError, ValueError) as err:  # OSError: absent, a directory, unreadable (its message names the file)
        print(f"bench_pipeline: error: {err}; pass --vocab PATH to a BERT uncased vocab.txt of {config.vocab_size} "
              "lines", file=sys.stderr)
        return 1
    try:
        import tensorflow  # noqa: F401
        import torch  # noqa: F401
        import transformers
    except ImportError as err:
        print(f"bench_pipeline: error: {err.name} is not installed; this benchmark needs torch, tensorflow with "
              f"tf-keras, and transformers=={REFERENCE_VERSION} (the reference)", file=sys.stderr)
        return 1
    if transformers.__version__ != REFERENCE_VERSION:
        print(f"note: transformers {transformers.__version__} is installed; the reference figures are for "
              f"{REFERENCE_VERSION}")
    sentences = make_sentences(words, args.sentences, args.seed)
    command = ["benchmarks/bench_pipeline.py", *(sys.argv[1:] if argv is None else argv)]
    data = dict(command=" ".join(command), started=time.strftime("%Y-%m-%d %H:%M:%S"),
                config=dict(preset=args.preset, num_hidden_layers=config.num_hidden_layers,
                            hidden_size=config.hidden_size, vocab_size=config.vocab_size, seed=args.seed),
                inputs=dict(sentences=len(sentences), batch_size=args.batch_size, top_k=TOP_K, words=WORDS,
                            words_total=sum(len(s.split()) - 1 for s in sentences)),
                machine=dict(host=socket.gethostname(), cpus=os.cpu_count(), machine=platform.machine(),
                             threads=args.threads, versions=versions(("pt", "tf"))),
                runs=args.runs, score_tolerance=SCORE_TOLERANCE)
    try:  # now, not after minutes of work: an unwritable --json fails here
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        atomic_write_text(args.json, json.dumps(data, indent=1) + "\n")
    except OSError as err:
        print(f"bench_pipeline: error: cannot write the results file {args.json}: {err}", file=sys.stderr)
        return 1
    print(f"fill-mask pipelines, {args.preset} config ({config.num_hidden_layers} layers), random weights (seed "
          f"{args.seed}); {len(sentences)} sentences of {WORDS[0]}-{WORDS[1]} words, batch {args.batch_size}; "
          f"{os.cpu_count()} CPUs, threads {args.threads or 'default'}; {args.runs} alternating rounds after a warm-up")
    with tempfile.TemporaryDirectory() as directory:
        checkpoint = write_checkpoint(directory, config, args.seed, with_tf=False)["pt"]
        shutil.copyfile(args.vocab, os.path.join(checkpoint, "vocab.txt"))
        pipelines = load_pipelines(checkpoint, args.batch_size, args.threads)
        data.update(run(pipelines, sentences, args.runs, lambda line: print(line, flush=True)))
    medians = {name: statistics.median(rates) for name, rates in data["sentences_per_s"].items()}
    ratios = {name: medians[name] / medians["transformers"] for name in PIPELINES[:2]}
    data.update(median_sentences_per_s=medians, ratio_vs_transformers=ratios, seconds=time.perf_counter() - started)
    atomic_write_text(args.json, json.dumps(data, indent=1) + "\n")
    print("median: " + ", ".join(f"{name} {medians[name]:.1f}" for name in PIPELINES) + " sentences/s; ours / "
          "transformers: " + ", ".join(f"{name} {ratios[name]:.2f}x" for name in ratios) + " (above 1: ours is faster)")
    print(f"{time.perf_counter() - started:.0f} s; written to {args.json}")
    failed = [name for name, check in data["agreement"].items() if not check["agree"]]
    if failed:
        print(f"bench_pipeline: {', '.join(failed)}: scores differ from transformers' beyond {SCORE_TOLERANCE:g}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
