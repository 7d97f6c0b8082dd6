"""Inference speed: our MobileBERT vs transformers 4.57.6, side by side, in PyTorch and in Keras.

    python3 benchmarks/bench_speed.py [--framework pt|tf|both] [--paths eager,cached,compile,int8,function,xla]
                                      [--cases 1x128,8x128,32x128,1x512,backbone:8x128] [--repeats 3]
                                      [--threads N] [--layers N] [--device all|cpu|cuda] [--dtypes float32,bfloat16]
                                      [--dynamic-compile] [--runs 1] [--seed 0] [--json PATH]

The issue's figures (median of three whole runs, every path; about 25 minutes on 2 cores):
    python3 benchmarks/bench_speed.py --runs 3 --repeats 5 --cases 1x128,8x128

Quick smoke run, every path (about 45 s of CPU time):
    python3 benchmarks/bench_speed.py --layers 2 --cases 1x128 --repeats 2
On a busy machine, --threads 1 gives steadier ratios: threads that wait for a core stall the others.

The weights: the config of the `mobilebert-uncased` preset (mobilebert_cli/demo.py; google/mobilebert-uncased:
24 layers, H = 512, V = 30,522; --layers overrides num_hidden_layers) with random weights (seeded), saved
once to a temp dir as a pre-training checkpoint, as the hub's: model.safetensors (our save_pretrained) and
tf_model.h5 (our converter). Ours and transformers' MobileBertForMaskedLM / TFMobileBertForMaskedLM (and
MobileBertModel / TFMobileBertModel for the "backbone:BxT" cases) load those same files through their
from_pretrained. Random weights keep activations small: the released weights' 1e7-1e8 do not show here.

The paths, each against the closest one transformers offers:
  eager     PyTorch, model(**inputs) under torch.inference_mode
  cached    PyTorch eager after model.cache_vocabulary_projection() (masked LM only): the head as one
            product over a kept (V, H) copy (62.5 MB; oneDNN on the CPU), against theirs eager
  compile   PyTorch, torch.compile(model, dynamic=False): a compilation per shape, the fastest code (on
            the CPU, code for dynamic shapes ran 3-8x slower here); --dynamic-compile: one compilation for
            all shapes. Ratios against theirs compiled alike and against theirs eager
  int8      PyTorch on the CPU, float32 rows only: ours after mobilebert_pt.quantize_dynamic ("dynamic-int8":
            every Linear int8 per output channel, activations quantized at run time), eager, against
            theirs float32 eager; max rel diff is int8's error (not held to 1e-5), and the share of positions
            whose top-1 token is transformers' float32 top-1; compare with the eager row
  function  Keras, tf.function(model call)
  xla       Keras, tf.function(model call, jit_compile=True)
PyTorch runs on the CPU in float32 and, when torch sees a GPU, on it in float32 and bfloat16 (the
model cast with .to(dtype), as torch_dtype= does); Keras runs in float32 on the device TensorFlow
picks. TF32 is off for float32 on a GPU in both frameworks, so float32 means float32.

Each case: inputs of the shape BxT (random ids, no padding); one warm-up call each (its time, the
compilation for compile / xla, is reported as "first"), then --repeats rounds alternating ours,
theirs, ours, theirs... in this one process; medians are reported, and the ratio transformers / ours
(above 1: ours is faster). The outputs (full masked-LM logits (B, T, V), or the backbone's
last_hidden_state (B, T, H)) of the warm-up calls are compared: max|ours - theirs| / max(1, max|theirs|),
at most 1e-5 in float32; in bfloat16 the difference is reported only. A path that fails (a compiler
error...) is a row with its error and the others still run; the exit status is 1 if any row failed or
differs.
(The two LayerNorms where transformers' PyTorch code takes torch's default epsilon, not layer_norm_eps, are
NoNorm in this config: the epsilon plays no part here.)
FLOPs per forward are counted from the config (benchmarks/flops.py says what is counted; the count is
checked against torch's FlopCounterMode on transformers' PyTorch model) and divided by the median time,
held against the peak: the best float32 (or bfloat16) matrix product measured in this run, torch and
TensorFlow each, at the sizes that matter, before and after their rows (in the closing summary table).
Results go to --json (default benchmarks/results/speed-HOST.json, not committed), rewritten after every row.

Timings are noisy on a shared machine: run it on an idle one, and compare only rows of one run.
transformers is a test-only reference: nothing of the suite imports it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log says nothing about speed

from benchmarks.flops import forward_flops  # noqa: E402
from mobilebert_cli.demo import PRESETS  # noqa: E402
from mobilebert_common import MobileBertConfig  # noqa: E402
from mobilebert_common.files import atomic_write_text  # noqa: E402

PRESET = "mobilebert-uncased"
REFERENCE_VERSION = "4.57.6"
PATHS = {"eager": "pt", "cached": "pt", "compile": "pt", "int8": "pt", "function": "tf", "xla": "tf"}
DEFAULT_CASES = "1x128,8x128,32x128,1x512,backbone:8x128"
DTYPES = ("float32", "bfloat16")
TOLERANCE = 1e-5  # float32: max|ours - theirs| / max(1, max|theirs|)
OUTPUT = {"masked_lm": "logits", "backbone": "last_hidden_state"}
# Matrix products (m, k, n) for the peak: the vocabulary projection and the layers' products at 8 x 128 and
# 32 x 128 tokens; m*n*k large enough to keep every core busy.
PEAK_SIZES = ((1024, 512, 30522), (1024, 512, 512), (4096, 128, 512), (4096, 512, 128))


# ------------------------------------------------------------------------------------------- options


def parse_cases(text: str, max_len: int) -> list:
    """"1x128,backbone:8x128" -> [("masked_lm", 1, 128), ("backbone", 8, 128)]."""
    cases = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        head, _, shape = item.rpartition(":")
        head = {"": "masked_lm", "mlm": "masked_lm", "backbone": "backbone"}.get(head)
        dims = shape.lower().split("x")
        if head is None or len(dims) != 2 or not all(d.isdigit() and int(d) > 0 for d in dims):
            raise ValueError(f"--cases: {item!r} is not BxT or backbone:BxT with positive integers (e.g. 8x128)")
        batch, seq = map(int, dims)
        if seq > max_len:
            raise ValueError(f"--cases: {item!r} has {seq} tokens; the model takes at most {max_len} "
                             "(config.max_position_embeddings)")
        cases.append((head, batch, seq))
    if not cases:
        raise ValueError("--cases is empty")
    return cases


def case_name(head: str, batch: int, seq: int) -> str:
    return f"{'mlm' if head == 'masked_lm' else 'backbone'} {batch}x{seq}"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--framework", choices=("pt", "tf", "both"), default="both")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"comma-separated, of {', '.join(PATHS)} (default: all)")
    parser.add_argument("--cases", default=DEFAULT_CASES, help="comma-separated BxT (masked LM, full logits) or "
                        "backbone:BxT (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of each model per case (median reported)")
    parser.add_argument("--runs", type=int, default=1, help="whole runs of every row, one after another; the summary "
                        "gives each row's median over the runs (the issue's targets hold in the median of 3)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads of torch and TensorFlow (0: their default)")
    parser.add_argument("--layers", type=int,
                        help="num_hidden_layers (default: the preset's 24; fewer for a quick run)")
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all",
                        help="PyTorch devices (default all: the CPU, plus the GPU when torch sees one)")
    parser.add_argument("--dtypes", help="PyTorch dtypes, comma-separated, of float32, bfloat16 "
                        "(default: float32 on the CPU, float32,bfloat16 on a GPU); Keras runs float32")
    parser.add_argument("--dynamic-compile", action="store_true",
                        help="torch.compile(dynamic=True): one compilation for all shapes (default: one per shape)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
    parser.add_argument("--json", help="results file (default: benchmarks/results/speed-HOST.json)")
    args = parser.parse_args(argv)
    for name, low in (("repeats", 1), ("runs", 1), ("threads", 0), ("layers", 1)):
        value = getattr(args, name)
        if value is not None and value < low:
            parser.error(f"--{name} must be at least {low}, got {value}")
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = [p for p in args.paths if p not in PATHS]
    if unknown or not args.paths:
        parser.error(f"--paths: unknown {unknown or 'empty'}; choose from {', '.join(PATHS)}")
    if args.dtypes is not None:
        args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
        if not args.dtypes or any(d not in DTYPES for d in args.dtypes):
            parser.error(f"--dtypes: {args.dtypes} is not a comma-separated list of {', '.join(DTYPES)} (not float16: "
                         "released MobileBERT activations reach 1e7, past its 65504)")
    config = MobileBertConfig(**{**PRESETS[PRESET], **({"num_hidden_layers": args.layers} if args.layers else {})})
    try:
        args.cases = parse_cases(args.cases, config.max_position_embeddings)
    except ValueError as err:
        parser.error(str(err))
    frameworks = ("pt", "tf") if args.framework == "both" else (args.framework,)
    args.paths = [p for p in args.paths if PATHS[p] in frameworks]
    if not args.paths:
        parser.error(f"--paths has no path for --framework {args.framework} (PyTorch: eager, cached, compile, int8; "
                     "Keras: function, xla)")
    args.json = args.json or os.path.join(ROOT, "benchmarks", "results", f"speed-{socket.gethostname()}.json")
    return args, config


# ------------------------------------------------------------------------------------------- helpers


def relative_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.abs(ours - theirs).max() / max(1.0, float(np.abs(theirs).max())))


def make_inputs(config, batch: int, seq: int, seed: int) -> dict:
    """Random ids between [CLS] and [SEP], no padding: (B, T) int64 arrays."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, config.vocab_size, size=(batch, seq), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}


def alternate(calls: dict, repeats: int, sync) -> tuple:
    """calls: {name: fn}. One warm-up call each (timed: "first"), then `repeats` rounds, name after name.
    Returns ({name: [seconds...]}, {name: first-call seconds}, {name: warm-up output})."""
    firsts, outputs = {}, {}
    for name, fn in calls.items():
        start = time.perf_counter()
        outputs[name] = fn()
        sync()
        firsts[name] = time.perf_counter() - start
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return times, firsts, outputs


class Results:
    """The rows and the facts of the run, rewritten (atomically) to the JSON file after every row."""

    def __init__(self, path: str, meta: dict):
        self.path, self.data = path, dict(meta, peaks=[], flops={}, flop_check={}, rows=[])
        self.run = 0  # which of --runs the rows being recorded belong to
        self.header_due = True  # the table header goes again above the next row after a line of another kind

    def say(self, line: str):
        print(line, flush=True)
        self.header_due = True

    def save(self):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        atomic_write_text(self.path, json.dumps(self.data, indent=1) + "\n")

    def measure_peak(self, framework: str, device: str, dtype: str, matmul, sync) -> None:
        """Matrix products of PEAK_SIZES, the best of a few each: matmul(m, k, n) returns a function computing one
        product of random matrices of that size. Measured before and after a framework's rows: on a shared machine
        the load changes, and the best of both is nearer the machine's peak."""
        repeats = 2 if device == "cpu" else 20
        for m, k, n in PEAK_SIZES:
            fn = matmul(m, k, n)
            fn()
            sync()
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                sync()
                seconds.append(time.perf_counter() - start)
            self.data["peaks"].append(dict(framework=framework, device=device, dtype=dtype, m=m, k=k, n=n,
                                           gflops=2 * m * k * n / min(seconds) / 1e9))
        best = max(p["gflops"] for p in self.data["peaks"] if (p["framework"], p["device"], p["dtype"]) ==
                   (framework, device, dtype))
        self.say(f"{framework} {device} {dtype} matrix-product peak so far: {best:.1f} GFLOP/s")

    def peak(self, device: str, dtype: str) -> float:
        """GFLOP/s: the best product measured on the device in the dtype, by either framework."""
        found = [p["gflops"] for p in self.data["peaks"] if p["device"] == device and p["dtype"] == dtype]
        return max(found) if found else float("nan")


HEADER = (f"{'fw':3s} {'path':9s} {'device':7s} {'dtype':9s} {'case':16s} {'ours ms':>9s} {'theirs ms':>9s} "
          f"{'theirs/ours':>11s} {'vs eager':>8s} {'ours GFLOP/s':>12s} {'theirs GFLOP/s':>14s} "
          f"{'first s ours/theirs':>19s} {'max rel diff':>12s}")
WHAT = ("framework", "path", "device", "dtype", "head", "batch", "seq")  # what a row is about


def row_line(row: dict, with_peak: bool = False) -> str:
    what = (f"{row['framework']:3s} {row['path']:9s} {row['device']:7s} {row['dtype']:9s} "
            f"{case_name(row['head'], row['batch'], row['seq']):16s}")
    if "error" in row:
        return f"{what} FAILED: {row['error'][:500]}"
    vs_eager = f"{row['ratio_vs_theirs_eager']:8.2f}" if row["ratio_vs_theirs_eager"] else f"{'-':>8s}"
    verdict = {None: "   ", True: " ok", False: " DIFFER"}[row["agree"]]
    line = (f"{what} {row['ours_s'] * 1e3:9.1f} {row['theirs_s'] * 1e3:9.1f} {row['ratio']:11.2f} {vs_eager} "
            f"{row['ours_gflops']:12.1f} {row['theirs_gflops']:14.1f} "
            f"{row['ours_first_s']:9.2f}/{row['theirs_first_s']:<9.2f} {row['max_rel_diff']:12.2e}{verdict}")
    if with_peak:
        line += f" {100 * row['ours_peak_fraction']:5.1f}%/{100 * row['theirs_peak_fraction']:.1f}%"
    if "top1_agreement" in row:
        line += f"  top-1 same as theirs at {100 * row['top1_agreement']:.1f}% of {row['positions']} positions"
    return line


def record(results: Results, what: tuple, run) -> dict:
    """One row: run() -> (times, firsts, ours output, theirs output[, theirs eager seconds]) as numpy; medians,
    ratio, GFLOP/s and agreement printed and kept. A failure (a compiler error...) becomes a row with its error,
    and the other rows still run. Returns the row."""
    row = dict(zip(WHAT, what), run=results.run)
    try:
        times, firsts, ours_out, theirs_out, *eager = run()
    except Exception as err:  # reported in the table and in the exit status, not hidden
        row["error"] = f"{type(err).__name__}: {err}"
        results.data["rows"].append(row)
        results.save()
        results.say(row_line(row))
        return row
    flops = results.data["flops"][case_name(row["head"], row["batch"], row["seq"])]["total"]
    ours_s, theirs_s = statistics.median(times["ours"]), statistics.median(times["theirs"])
    theirs_eager_s = eager[0] if eager else None
    diff = relative_difference(ours_out, theirs_out)
    row.update(flops=flops, ours_s=ours_s, theirs_s=theirs_s, ratio=theirs_s / ours_s, ours_times=times["ours"],
               theirs_times=times["theirs"], ours_first_s=firsts["ours"], theirs_first_s=firsts["theirs"],
               ours_gflops=flops / ours_s / 1e9, theirs_gflops=flops / theirs_s / 1e9,
               max_rel_diff=diff, agree=diff <= TOLERANCE if row["dtype"] == "float32" and row["path"] != "int8" else None,
               theirs_eager_s=theirs_eager_s, ratio_vs_theirs_eager=theirs_eager_s / ours_s if theirs_eager_s else None)
    if row["path"] == "int8":  # int8's drift, beside max rel diff: the same top-1 token as float32 transformers?
        row["top1_agreement"] = float(np.mean(ours_out.argmax(-1) == theirs_out.argmax(-1)))
        row["positions"] = int(np.prod(ours_out.shape[:-1]))
    results.data["rows"].append(row)
    results.save()
    if results.header_due:
        print(HEADER)
        results.header_due = False
    print(row_line(row), flush=True)
    return row


def median_row(rows: list) -> dict:
    """One row from the same row of several runs: median times, ratios and drift (a failure in any run wins)."""
    failed = [r for r in rows if "error" in r]
    if failed or len(rows) == 1:
        return dict(failed[0] if failed else rows[0], runs=len(rows))
    row = dict(rows[0], runs=len(rows))
    for key in ("ours_s", "theirs_s", "ratio", "ratio_vs_theirs_eager", "max_rel_diff", "top1_agreement",
                "ours_first_s", "theirs_first_s"):
        values = [r[key] for r in rows if r.get(key) is not None]
        if key in row:
            row[key] = statistics.median(values) if values else None
    row.update(ours_gflops=row["flops"] / row["ours_s"] / 1e9, theirs_gflops=row["flops"] / row["theirs_s"] / 1e9,
               agree=None if rows[0]["agree"] is None else all(r["agree"] for r in rows),
               ratios=[r["ratio"] for r in rows])
    return row


def summary(results: Results) -> None:
    """Every row again (with --runs N, its median over the runs), with its share of the peak (the best product
    of the whole run on its device and dtype)."""
    groups = {}
    for row in results.data["rows"]:
        groups.setdefault(tuple(row[k] for k in WHAT), []).append(row)
    medians = [median_row(rows) for rows in groups.values()]
    for row in medians:
        if "error" not in row:
            peak = results.peak(row["device"], row["dtype"])
            row.update(peak_gflops=peak, ours_peak_fraction=row["ours_gflops"] / peak,
                       theirs_peak_fraction=row["theirs_gflops"] / peak)
    results.data["summary"] = medians
    peaks = sorted({(p["device"], p["dtype"]) for p in results.data["peaks"]})
    runs = max(len(rows) for rows in groups.values()) if groups else 0
    print(f"\nsummary{f', median of {runs} runs' if runs > 1 else ''}; peak (best matrix product of the run, "
          "torch or TensorFlow): " + ", ".join(f"{d} {t} {results.peak(d, t):.1f} GFLOP/s" for d, t in peaks))
    print(f"{HEADER} {'%peak ours/theirs'}")
    for row in medians:
        line = row_line(row, with_peak=True)
        if len(row.get("ratios") or ()) > 1:
            line += "  ratios " + "/".join(f"{r:.2f}" for r in row["ratios"])
        print(line)


def quiet_loading():
    """transformers' notes and warnings off; ours that a model leaves part of the file unused (each model reads
    its part of the pre-training checkpoint) too. A weight missing from the file is still a warning."""
    import transformers

    warnings.filterwarnings("ignore", message=r"\w+: unused weights of ")
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", module="transformers")
    return transformers


# ------------------------------------------------------------------------------------------- PyTorch


def torch_matmul(torch, device: str, dtype: str):
    def matmul(m, k, n):
        a = torch.randn(m, k, device=device, dtype=getattr(torch, dtype))
        b = torch.randn(k, n, device=device, dtype=getattr(torch, dtype))
        return lambda: torch.mm(a, b)

    return matmul


def check_flop_count(torch, model, config, head: str, results: Results) -> None:
    """The analytic count (flops.py) against torch's FlopCounterMode on transformers' PyTorch model, at (2, 16)."""
    from torch.utils.flop_counter import FlopCounterMode

    ids = torch.from_numpy(make_inputs(config, 2, 16, 0)["input_ids"]).to(model.device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(input_ids=ids)
    check = dict(analytic=forward_flops(config, 2, 16, head)["total"], counted=counter.get_total_flops())
    results.data["flop_check"][head] = check
    same = "equal" if check["analytic"] == check["counted"] else "DIFFERENT"
    results.say(f"FLOPs of {head} at (2, 16): analytic {check['analytic']:,}, "
                f"torch FlopCounterMode on transformers' model {check['counted']:,}: {same}")


def run_pytorch(args, config, directory: str, results: Results):
    import torch

    import mobilebert_pt

    transformers = quiet_loading()
    if args.threads:
        torch.set_num_threads(args.threads)
    # transformers' forward may break dynamo's graph and warn at length at every compilation (ours traces as one
    # graph: tests/test_pt_compile_int8.py); the warnings are not wanted here.
    torch._logging.set_logs(dynamo=logging.ERROR)
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32 (and stays within 1e-5 of theirs)
    torch.backends.cudnn.allow_tf32 = False
    devices = {"all": ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"], "cpu": ["cpu"], "cuda": ["cuda"]}
    devices = devices[args.device]
    classes = {"masked_lm": (mobilebert_pt.MobileBertForMaskedLM, transformers.MobileBertForMaskedLM),
               "backbone": (mobilebert_pt.MobileBertModel, transformers.MobileBertModel)}
    for device in devices:
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for dtype in args.dtypes or (["float32"] if device == "cpu" else ["float32", "bfloat16"]):
            results.measure_peak("torch", device, dtype, torch_matmul(torch, device, dtype), sync)
            for head in dict.fromkeys(h for h, _, _ in args.cases):
                ours_cls, theirs_cls = classes[head]
                models = {"ours": ours_cls.from_pretrained(directory), "theirs": theirs_cls.from_pretrained(directory)}
                if head not in results.data["flop_check"]:
                    check_flop_count(torch, models["theirs"], config, head, results)
                models = {k: m.to(device=device, dtype=getattr(torch, dtype)).eval() for k, m in models.items()}
                for h, batch, seq in args.cases:
                    if h == head:
                        inputs = {k: torch.from_numpy(v).to(device)
                                  for k, v in make_inputs(config, batch, seq, args.seed).items()}
                        pytorch_case(torch, args, models, inputs, (device, dtype, head, batch, seq), results, sync)
                del models
                torch.compiler.reset()  # drop the compiled graphs of these models (and their recompile counts)
                if device == "cuda":
                    torch.cuda.empty_cache()
            results.measure_peak("torch", device, dtype, torch_matmul(torch, device, dtype), sync)


def pytorch_case(torch, args, models: dict, inputs: dict, where: tuple, results: Results, sync) -> None:
    """The eager, cached, compile and int8 rows of one case; where = (device, dtype, head, batch, seq)."""
    key = OUTPUT[where[2]]

    def timed(impls: dict, *extra):
        times, firsts, outs = alternate({name: (lambda m=m: getattr(m(**inputs), key)) for name, m in impls.items()},
                                        args.repeats, sync)
        return (times, firsts, *(outs[name].float().cpu().numpy() for name in ("ours", "theirs")), *extra)

    eager = {}
    with torch.inference_mode():
        if "eager" in args.paths:
            eager = record(results, ("pt", "eager", *where), lambda: timed(models))
        if "cached" in args.paths and where[2] == "masked_lm":
            models["ours"].cache_vocabulary_projection()
            record(results, ("pt", "cached", *where), lambda: timed(models))
            models["ours"].cache_vocabulary_projection(False)  # the other paths run the model as loaded
        if "compile" in args.paths:
            def compiled():
                return {name: torch.compile(m, dynamic=args.dynamic_compile) for name, m in models.items()}

            record(results, ("pt", "compile", *where), lambda: timed(compiled(), eager.get("theirs_s")))
            if not args.dynamic_compile:
                torch.compiler.reset()  # this shape's code is not needed again; nor is the recompile limit
        if "int8" in args.paths and where[:2] == ("cpu", "float32"):
            import mobilebert_pt

            int8 = dict(models, ours=mobilebert_pt.quantize_dynamic(models["ours"]))
            record(results, ("pt", "int8", *where), lambda: timed(int8))


# ------------------------------------------------------------------------------------------- Keras


def traced(tf, model, key: str, signature, jit: bool):
    """tf.function(model's call -> its output `key`), XLA-compiled when jit."""
    def call(input_ids, attention_mask, token_type_ids):
        out = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, training=False)
        return getattr(out, key)

    return tf.function(call, input_signature=signature, jit_compile=jit)


def run_keras(args, config, directory: str, results: Results):
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:  # leave GPU memory to torch: take it as needed, not all at start
        tf.config.experimental.set_memory_growth(gpu, True)
    tf.config.experimental.enable_tensor_float_32_execution(False)  # float32 means float32
    tf.get_logger().setLevel("ERROR")  # its "retracing" note counts our one tf.function per model and path
    import mobilebert_tf

    transformers = quiet_loading()
    # Our XLA functions warn that TensorFlow drops assertions inside XLA: the inputs are validated eagerly below.
    warnings.filterwarnings("ignore", message="MobileBERT is being traced inside an XLA-compiled function")
    device = "cuda" if gpus else "cpu"  # torch's name for the same GPU: one peak per device
    sync = tf.test.experimental.sync_devices if gpus else (lambda: None)

    def matmul(m, k, n):
        a, b = tf.random.normal((m, k)), tf.random.normal((k, n))
        return lambda: tf.linalg.matmul(a, b)

    results.measure_peak("tensorflow", device, "float32", matmul, sync)
    classes = {"masked_lm": (mobilebert_tf.TFMobileBertForMaskedLM, transformers.TFMobileBertForMaskedLM),
               "backbone": (mobilebert_tf.TFMobileBertModel, transformers.TFMobileBertModel)}
    for head in dict.fromkeys(h for h, _, _ in args.cases):
        ours_cls, theirs_cls = classes[head]
        models = {"ours": ours_cls.from_pretrained(directory), "theirs": theirs_cls.from_pretrained(directory)}
        key = OUTPUT[head]
        # (B, T) int32 of any size: traced once per model and path (XLA still compiles once per shape)
        signature = [tf.TensorSpec((None, None), tf.int32, name) for name in ("input_ids", "attention_mask",
                                                                               "token_type_ids")]
        for path in (p for p in ("function", "xla") if p in args.paths):
            functions = {name: traced(tf, model, key, signature, path == "xla") for name, model in models.items()}
            for h, batch, seq in args.cases:
                if h != head:
                    continue
                inputs = {k: tf.constant(v, tf.int32) for k, v in make_inputs(config, batch, seq, args.seed).items()}
                models["ours"].validate_inputs(inputs)  # eagerly: what users do before an XLA function

                def timed():
                    calls = {name: (lambda f=f: f(**inputs)) for name, f in functions.items()}
                    times, firsts, outs = alternate(calls, args.repeats, sync)
                    return times, firsts, outs["ours"].numpy(), outs["theirs"].numpy()

                record(results, ("tf", path, device, "float32", head, batch, seq), timed)
    results.measure_peak("tensorflow", device, "float32", matmul, sync)


# ------------------------------------------------------------------------------------------- main


def write_checkpoint(directory: str, config, seed: int, with_tf: bool) -> dict:
    """{"pt": DIR/pt, "tf": DIR/tf}: config.json + model.safetensors (our save_pretrained) and, for Keras,
    config.json + tf_model.h5 (our converter). Like the hub's, the checkpoint is MobileBertForPreTraining's:
    the backbone with its pooler, and the masked-LM head, so every model finds all its weights in it.
    Apart: transformers' TF loader prefers a model.safetensors beside tf_model.h5, and 4.57.6 then fails on
    a PyTorch one ('safe_open' object is not iterable)."""
    import torch

    from conversion.directories import convert_checkpoint
    from mobilebert_pt import MobileBertForPreTraining

    dirs = {"pt": os.path.join(directory, "pt"), "tf": os.path.join(directory, "tf")}
    torch.manual_seed(seed)
    MobileBertForPreTraining(config).save_pretrained(dirs["pt"])
    if with_tf:
        convert_checkpoint("pt-to-tf", dirs["pt"], dirs["tf"])
    return dirs


def versions(frameworks) -> dict:
    import torch
    import transformers

    out = dict(python=platform.python_version(), numpy=np.__version__, torch=torch.__version__,
               transformers=transformers.__version__)
    if "tf" in frameworks:
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
    return out


def main(argv=None) -> int:
    started = time.perf_counter()
    args, config = parse_args(argv)
    frameworks = sorted({PATHS[p] for p in args.paths})
    try:
        import torch  # the checkpoint is written with our PyTorch model, for both frameworks
        import transformers
        if "tf" in frameworks:
            import tensorflow  # noqa: F401
    except ImportError as err:
        print(f"bench_speed: error: {err.name} is not installed; this benchmark needs torch, transformers=="
              f"{REFERENCE_VERSION} (the reference){' and tensorflow with tf-keras' if 'tf' in frameworks else ''}",
              file=sys.stderr)
        return 1
    if args.device == "cuda" and "pt" in frameworks and not torch.cuda.is_available():
        print("bench_speed: error: --device cuda, but torch sees no GPU (torch.cuda.is_available() is False); "
              "use --device cpu", file=sys.stderr)
        return 1
    if transformers.__version__ != REFERENCE_VERSION:
        print(f"note: transformers {transformers.__version__} is installed; the reference figures are for "
              f"{REFERENCE_VERSION}")
    flops = {case_name(h, b, t): forward_flops(config, b, t, h) for h, b, t in args.cases}
    command = ["benchmarks/bench_speed.py", *(sys.argv[1:] if argv is None else argv)]
    meta = dict(command=" ".join(command), host=socket.gethostname(),
                cpus=os.cpu_count(), machine=platform.machine(), versions=versions(frameworks),
                config=dict(preset=PRESET, num_hidden_layers=config.num_hidden_layers, seed=args.seed),
                threads=args.threads, repeats=args.repeats, runs=args.runs, compile_dynamic=args.dynamic_compile,
                tolerance=TOLERANCE, started=time.strftime("%Y-%m-%d %H:%M:%S"))
    results = Results(args.json, meta)
    results.data["flops"] = flops
    try:
        results.save()  # now, not after minutes of work: an unwritable --json fails here
    except OSError as err:
        print(f"bench_speed: error: cannot write the results file {args.json}: {err}", file=sys.stderr)
        return 1
    print(f"{PRESET} config ({config.num_hidden_layers} layers), random weights (seed {args.seed}); "
          f"{os.cpu_count()} CPUs; median of {args.repeats} alternating calls after one warm-up")
    for name, parts in flops.items():
        print(f"FLOPs per forward, {name}: {parts['total'] / 1e9:.2f} G (embeddings {parts['embeddings'] / 1e9:.2f}, "
              f"layers {parts['layers'] / 1e9:.2f}, pooler {parts['pooler'] / 1e9:.4f}, "
              f"masked-LM head {parts['mlm_head'] / 1e9:.2f})")
    with tempfile.TemporaryDirectory() as directory:
        dirs = write_checkpoint(directory, config, args.seed, "tf" in frameworks)
        for run in range(args.runs):
            results.run = run
            if args.runs > 1:
                results.say(f"run {run + 1} of {args.runs}")
            if "pt" in frameworks:
                run_pytorch(args, config, dirs["pt"], results)
            if "tf" in frameworks:
                run_keras(args, config, dirs["tf"], results)
    rows = results.data["rows"]
    summary(results)
    results.data["seconds"] = time.perf_counter() - started
    results.save()
    differ = [r for r in rows if r.get("agree") is False]
    failed = [r for r in rows if "error" in r]
    print(f"theirs/ours: transformers time / our time (above 1: ours is faster); vs eager: transformers eager / ours "
          f"compiled; first: the warm-up call (compilation included); max rel diff: max|ours - theirs| / "
          f"max(1, max|theirs|), float32 within {TOLERANCE:g}; ms: medians")
    print(f"{len(rows)} rows in {results.data['seconds']:.0f} s; written to {args.json}")
    if differ or failed:
        print(f"bench_speed: {len(differ)} float32 row(s) DIFFER beyond {TOLERANCE:g}, {len(failed)} FAILED",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
