"""On-device exports against our PyTorch and Keras models: latency, file size, parity, top-1 agreement.

A released-size random checkpoint (the `mobilebert-uncased` preset of mobilebert_cli/demo.py, torch's
init, seed 0; the real uncased vocabulary) gets its fill-mask head exported by `mobilebert export`'s
functions in both formats and every quantization (sequence length 128, any batch). Then, at (1, 128)
and (8, 128) in one run:

  PyTorch eager    MobileBertForMaskedLM, float32, torch threads = --threads
  Keras            TFMobileBertForMaskedLM in a tf.function (graph, no XLA), TF intra-op threads = --threads
  LiteRT           each .tflite in the LiteRT interpreter, num_threads = --threads (XNNPACK)
  ONNX Runtime     each .onnx on the CPU execution provider, intra-op threads = --threads

as milliseconds (the fastest of --repeats runs, the runtimes taking turns) and as ratios to PyTorch eager; each file's size; the parity that the export
printed (its probe batch); and, on the (8, 128) batch with 15% [MASK]s, the top-1 agreement at the
masked positions with PyTorch and the max relative difference of the logits there. Random weights
do not have the released model's 1e7 activations: float16 does not overflow here as it does there.
Timings are noisy on a shared machine (the load average is printed); there, --threads 1 is steadier:
with 2 threads on a busy 2-core machine, PyTorch's OpenMP waits at every op for a thread the machine
has put aside (measured: 1.15 s against 0.27 s with 1 thread for one (1, 128) forward), which the
other runtimes' thread pools do not.

    python benchmarks/bench_export.py [--vocab PATH] [--workdir DIR] [--repeats 5] [--threads 2] [--layers N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mobilebert_cli.demo import PRESETS  # noqa: E402
from mobilebert_common import MobileBertConfig  # noqa: E402
from mobilebert_common.export import relative_difference, top_k_agreement  # noqa: E402
from mobilebert_common.quantization import QUANTIZATIONS  # noqa: E402

SHAPES = ((1, 128), (8, 128))
DEFAULT_VOCAB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                             "shared", "data", "vocab-uncased.txt")


def best_ms(calls: dict, repeats: int) -> dict:
    """{key: fastest of ``repeats`` timed calls, in ms}. The calls take turns, round after round, so that a
    busy spell of the machine falls on all of them alike; the fastest run is the least disturbed one."""
    for fn in calls.values():
        fn()  # warm-up: allocation, graph building, delegate setup
    times = {key: [] for key in calls}
    for _ in range(repeats):
        for key, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {key: 1000 * min(t) for key, t in times.items()}


def write_checkpoint(directory: str, vocab: str, layers) -> str:
    import torch

    from mobilebert_pt import MobileBertForMaskedLM

    config = MobileBertConfig(**PRESETS["mobilebert-uncased"], **({"num_hidden_layers": layers} if layers else {}))
    torch.manual_seed(0)
    MobileBertForMaskedLM(config).save_pretrained(directory)
    shutil.copy(vocab, os.path.join(directory, "vocab.txt"))
    return directory


def masked_batch(config, mask_id: int, batch: int, length: int, seed: int = 0) -> dict:
    """Random word ids (past the special tokens) in [CLS] ... [SEP], 15% of them [MASK]; int64."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, config.vocab_size, size=(batch, length), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    ids[:, 1:-1][rng.random((batch, length - 2)) < 0.15] = mask_id
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", default=DEFAULT_VOCAB, help="vocab.txt of the random checkpoint (default: %(default)s)")
    parser.add_argument("--workdir", default=None, help="keep the checkpoint and the exports here (default: a temporary folder)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (the fastest counts)")
    parser.add_argument("--threads", type=int, default=2, help="threads of every runtime (default: %(default)s)")
    parser.add_argument("--layers", type=int, default=None, help="fewer layers, for a quick smoke run")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.vocab):
        parser.error(f"{args.vocab} does not exist; pass --vocab PATH to a vocab.txt of 30522 lines")

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import onnxruntime as ort
    import torch

    from mobilebert_common import MobileBertTokenizer
    from mobilebert_pt import MobileBertForMaskedLM, export_onnx
    from mobilebert_tf import TFMobileBertForMaskedLM, export_tflite
    from mobilebert_tf.export import signature_runner

    torch.set_num_threads(args.threads)
    work = args.workdir or tempfile.mkdtemp(prefix="bench_export.")
    os.makedirs(work, exist_ok=True)
    checkpoint = write_checkpoint(os.path.join(work, "checkpoint"), args.vocab, args.layers)
    config = MobileBertConfig.from_pretrained(checkpoint)
    print(f"checkpoint: {checkpoint} (random weights, {config.num_hidden_layers} layers, vocabulary {args.vocab})", flush=True)

    exports = {}  # (format, quantization) -> ExportResult
    for fmt, export in (("onnx", export_onnx), ("tflite", export_tflite)):
        for quantize in QUANTIZATIONS:
            start = time.perf_counter()
            result = export(checkpoint, "fill-mask", os.path.join(work, f"fill-mask.{quantize}.{fmt}"), seq_len=128,
                            quantize=quantize, force=True, log=lambda line: None)
            exports[fmt, quantize] = result
            print(f"exported {fmt} {quantize} in {time.perf_counter() - start:.0f} s: {result.size_bytes / 1e6:.1f} MB, "
                  f"probe logits max rel. diff {result.parity[0].relative_difference:.3g}", flush=True)

    mask_id = MobileBertTokenizer.from_pretrained(checkpoint).mask_token_id
    batches = {shape: masked_batch(config, mask_id, *shape) for shape in SHAPES}
    pt_model = MobileBertForMaskedLM.from_pretrained(checkpoint).eval()
    keras_model = TFMobileBertForMaskedLM.from_pretrained(checkpoint, from_pt=True)
    keras_call = tf.function(lambda x: keras_model(x, training=False).logits)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1

    def pytorch(x):
        with torch.no_grad():
            return pt_model(**{k: torch.from_numpy(v) for k, v in x.items()}).logits.numpy()

    def runner(fmt, quantize):
        if fmt == "onnx":
            session = ort.InferenceSession(exports[fmt, quantize].path, options, providers=["CPUExecutionProvider"])
            return lambda x: session.run(["logits"], x)[0]
        runners = {}  # one signature runner per batch size: a new shape reallocates the interpreter

        def run(x):
            key = x["input_ids"].shape
            if key not in runners:
                runners[key] = signature_runner(exports[fmt, quantize].path, num_threads=args.threads)
            return runners[key](**{k: v.astype(np.int32) for k, v in x.items()})["logits"]
        return run

    rows = [("PyTorch eager", "float32", None, pytorch),
            ("Keras tf.function", "float32", None, lambda x: keras_call({k: tf.constant(v) for k, v in x.items()}).numpy())]
    for fmt, name in (("tflite", "LiteRT"), ("onnx", "ONNX Runtime")):
        for quantize in QUANTIZATIONS:
            rows.append((name, "float32" if quantize == "none" else quantize, exports[fmt, quantize], runner(fmt, quantize)))

    reference = pytorch(batches[8, 128])
    masked = batches[8, 128]["input_ids"] == mask_id
    latency = {}
    for shape in SHAPES:
        calls = {i: (lambda fn=fn, x=batches[shape]: fn(x)) for i, (_, _, _, fn) in enumerate(rows)}
        for i, ms in best_ms(calls, args.repeats).items():
            latency[i, shape] = ms
        print(f"timed {shape}: " + ", ".join(f"{rows[i][0]} {rows[i][1]} {latency[i, shape]:.0f} ms" for i in calls),
              flush=True)
    table = []
    for i, (name, variant, result, fn) in enumerate(rows):
        logits = np.asarray(fn(batches[8, 128]), dtype=np.float32)
        table.append((name, variant, result, [latency[i, shape] for shape in SHAPES],
                      top_k_agreement(logits[masked], reference[masked], 1), relative_difference(logits[masked], reference[masked])))

    base = table[0][3]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nfill-mask, {config.num_hidden_layers} layers, random weights; {args.threads} threads each; best of "
          f"{args.repeats} interleaved runs; {os.cpu_count()} CPUs, load average {load:.1f}; {int(masked.sum())} [MASK] positions in (8, 128)\n")
    print("| runtime | weights | file MB | (1, 128) ms | vs PyTorch | (8, 128) ms | vs PyTorch "
          "| export parity (probe) | top-1 at [MASK] vs PyTorch | max rel. diff at [MASK] |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, variant, result, latencies, top1, diff in table:
        size = "-" if result is None else f"{result.size_bytes / 1e6:.1f}"
        parity = "-" if result is None else f"{result.parity[0].relative_difference:.2g}"
        ratios = [t / b for t, b in zip(latencies, base)]
        print(f"| {name} | {variant} | {size} | {latencies[0]:.0f} | {ratios[0]:.2f} | {latencies[1]:.0f} | {ratios[1]:.2f} "
              f"| {parity} | {top1:.3f} | {diff:.2g} |")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
