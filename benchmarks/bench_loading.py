"""Loading memory and time: our MobileBertForMaskedLM.from_pretrained vs transformers' on the same files.

A random checkpoint of google/mobilebert-uncased's shape (24 layers, H = 512, V = 30,522; the
masked-LM head included) is written once, as model.safetensors and as pytorch_model.bin, each
beside its config.json. Every measurement then runs in a fresh Python process (nothing cached,
nothing shared), which imports torch and the loader first and records its resident memory (RSS),
then calls from_pretrained once and reports:

  time             wall time of the from_pretrained call.
  peak RSS         the process's peak RSS during the call (VmHWM, restarted just before it through
                   /proc/self/clear_refs) minus its RSS before. (getrusage's ru_maxrss would carry
                   the parent's peak across fork + exec.)
  anon* / file*    sampled (every 2 ms) peaks of its anonymous memory (RssAnon: memory of its own) and
                   of its mapped file pages (RssFile: page cache, shared and reclaimable). The weights
                   take about the checkpoint's size; a loader that holds them twice (a full state dict
                   read next to the built model) shows about twice that in anon*. Reading a mapped
                   file shows up in file*, not anon*.
  after fwd        RSS and RssAnon after one forward pass: a loader that leaves the weights mapped
                   from the file (lazily) pays for them here instead of during the call.

"build only" (the model class constructed from the config, randomly initialised, no file read) is the
floor any loader pays. Medians over --repeats processes. Timings are noisy on a shared machine.

    python benchmarks/bench_loading.py [--dir DIR] [--repeats 3] [--preset released|tiny] [--threads N]
                                       [--no-transformers]

transformers is a test-only reference here (never imported by the package): its rows are skipped
when it is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PRESETS = {
    "released": {},  # MobileBertConfig's defaults are google/mobilebert-uncased
    "tiny": dict(hidden_size=128, embedding_size=64, intra_bottleneck_size=64, num_hidden_layers=4, intermediate_size=128),
}

# case -> (loader, weights file). The child process below knows how to run each.
CASES = {
    "ours, build only": ("ours-build", None),
    "ours, model.safetensors": ("ours", "model.safetensors"),
    "ours, pytorch_model.bin": ("ours", "pytorch_model.bin"),
    "transformers, build only": ("transformers-build", None),
    "transformers, model.safetensors": ("transformers", "model.safetensors"),
    "transformers, pytorch_model.bin": ("transformers", "pytorch_model.bin"),
}

# Runs in a fresh interpreter: argv = loader, directory, torch threads (0: torch's default). Prints one JSON line.
CHILD = r"""
import json, os, sys, threading, time
sys.path.insert(0, {root!r})
loader, directory, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])

def status():  # MiB: RssAnon = process memory, RssFile = mapped file pages (page cache, shared, reclaimable)
    out = {{}}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024
    return out

import torch
if threads:
    torch.set_num_threads(threads)
if loader.startswith("transformers"):
    import warnings
    warnings.simplefilter("ignore")
    from transformers import MobileBertConfig, MobileBertForMaskedLM
else:
    from mobilebert_pt import MobileBertConfig, MobileBertForMaskedLM
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # restart VmHWM (the peak RSS) here. Not getrusage: its peak survives exec from the parent
before = status()
peaks = dict(before)
done = threading.Event()

def sample():  # the kernel keeps only the total's peak (ru_maxrss): sample the split every 2 ms
    while not done.is_set():
        for key, value in status().items():
            peaks[key] = max(peaks[key], value)
        time.sleep(0.002)

sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
start = time.perf_counter()
if loader.endswith("-build"):
    model = MobileBertForMaskedLM(MobileBertConfig.from_pretrained(directory))
else:
    model = MobileBertForMaskedLM.from_pretrained(directory)
seconds = time.perf_counter() - start
done.set()
sampler.join()
peak = status()["VmHWM"]
model.eval()
with torch.no_grad():  # touches every weight: lazily mapped ones are paged in now
    model(input_ids=torch.tensor([[101, 7592, 2088, 102]]))
after = status()
print(json.dumps(dict(
    seconds=seconds, peak=peak - before["VmRSS"], anon=peaks["RssAnon"] - before["RssAnon"],
    file=peaks["RssFile"] - before["RssFile"], after=after["VmRSS"] - before["VmRSS"],
    after_anon=after["RssAnon"] - before["RssAnon"],
)))
"""


def write_checkpoint(directory: str, preset: str) -> dict:
    """model.safetensors in DIR/safetensors, pytorch_model.bin in DIR/bin, each with config.json. Returns sizes."""
    import torch

    from mobilebert_pt import MobileBertConfig, MobileBertForMaskedLM

    paths = {"model.safetensors": os.path.join(directory, "safetensors"), "pytorch_model.bin": os.path.join(directory, "bin")}
    if not all(os.path.isfile(os.path.join(p, name)) for name, p in paths.items()):
        torch.manual_seed(0)
        model = MobileBertForMaskedLM(MobileBertConfig(**PRESETS[preset]))
        model.save_pretrained(paths["model.safetensors"])
        model.save_pretrained(paths["pytorch_model.bin"], safe_serialization=False)
        del model
    return {name: (p, os.path.getsize(os.path.join(p, name)) / 2**20) for name, p in paths.items()}


def measure(loader: str, directory: str, threads: int = 0) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=ROOT), loader, directory, str(threads)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{loader} on {directory} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", help="where the checkpoint is written (reused if present); default: a temp dir")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per case (median reported)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="released")
    parser.add_argument("--no-transformers", action="store_true", help="our loader only")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads in each process (0: torch's default). On a busy machine 1 is steadier: "
                             "the initialisation of many small tensors slows down badly when its threads wait for cores")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    try:
        import transformers  # noqa: F401
        have_reference = not args.no_transformers
    except ImportError:
        have_reference = False

    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or tmp
        os.makedirs(directory, exist_ok=True)
        files = write_checkpoint(directory, args.preset)
        safe_dir, safe_mb = files["model.safetensors"]
        print(f"checkpoint ({args.preset}): model.safetensors {safe_mb:.1f} MiB, "
              f"pytorch_model.bin {files['pytorch_model.bin'][1]:.1f} MiB; median of {args.repeats} fresh processes")
        print(f"{'case':33s} {'file':>6s} {'time':>6s} {'peak RSS':>9s} {'x file':>6s} {'anon*':>6s} {'file*':>6s} "
              f"{'after fwd':>9s} {'anon':>6s}")
        for case, (loader, weights) in CASES.items():
            if loader.startswith("transformers") and not have_reference:
                continue
            directory_for_case, size = files[weights] if weights else (safe_dir, safe_mb)
            runs = [measure(loader, directory_for_case, args.threads) for _ in range(args.repeats)]
            m = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            file_mb = f"{size:6.1f}" if weights else f"{'-':>6s}"
            print(f"{case:33s} {file_mb} {m['seconds']:6.2f} {m['peak']:9.1f} {m['peak'] / size:6.2f} {m['anon']:6.1f} "
                  f"{m['file']:6.1f} {m['after']:9.1f} {m['after_anon']:6.1f}")
        print("MiB, growth over the process before the call; time in s. peak RSS: VmHWM during the call; "
              "anon* / file*: sampled peaks (2 ms) of process memory / mapped file pages (page cache, reclaimable); "
              "after fwd: RSS and anon after one forward pass (lazily mapped weights paged in).")


if __name__ == "__main__":
    main()
