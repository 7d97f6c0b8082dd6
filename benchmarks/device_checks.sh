#!/usr/bin/env bash
# The GPU checks in one call: the CUDA tests (pytest -m gpu) and the PyTorch GPU rows of bench_speed.py
# (float32 and bfloat16, ours vs transformers), for a machine that is lent for minutes and reaches no
# package index.
#
#   bash benchmarks/device_checks.sh fetch      here, with the package index: wheels into .device/
#   bash benchmarks/device_checks.sh run        there, offline: results into $OUT (default out/device)
#
# fetch downloads, for the device's Python (PYVER, default 3.12, manylinux x86-64), every wheel the
# tests and the benchmark need besides torch (which the device has, built for its CUDA): transformers
# 4.57.6 and its dependencies, our core dependencies, pytest. About 45 MB; .device/ is git-ignored, so
# carry it: run(command="bash benchmarks/device_checks.sh run", carry=[".device"], timeout_s=540).
#
# run makes a venv that sees the machine's own torch (--system-site-packages), installs the wheels from
# .device/ without an index, puts the checkout on PYTHONPATH (no build step), and writes to $OUT:
#   env.txt            nvidia-smi, Python, torch and CUDA versions
#   gpu-tests.txt      python -m pytest -q -m gpu (every CUDA test; the CPU-only ones are deselected)
#   speed-gpu.txt/json bench_speed.py --framework pt --device cuda, float32 and bfloat16, eager and
#                      torch.compile, (1, 128) and (8, 128)
# Each step has its own time limit (GPU_TEST_S, BENCH_S seconds) so that one that hangs still leaves the
# others' files. DRY=1 runs the same steps on the CPU (2 layers, --device cpu) to check the script itself.
set -uo pipefail
cd "$(dirname "$0")/.."
KIT=${DEVICE_KIT:-.device}  # the carried folder (a test points it elsewhere)
PYVER=${PYVER:-3.12}
# Everything the suite imports at test time except torch and TensorFlow (the GPU tests compare against
# stored Keras-CPU outputs, tests/fixtures/golden_tf_cpu.npz, so TensorFlow is not needed there).
WANTED=("transformers==4.57.6" "tokenizers>=0.15" "safetensors>=0.4" "h5py>=3.8" "huggingface_hub>=0.23"
        "tqdm>=4.60" "numpy>=1.24" "pytest>=7")

fetch() {
    rm -rf "$KIT/wheels" && mkdir -p "$KIT/wheels"
    python3 -m pip download --quiet --dest "$KIT/wheels" --only-binary=:all: --implementation cp \
        --python-version "$PYVER" --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux_2_28_x86_64 "${WANTED[@]}" || { echo "fetch: pip download failed" >&2; exit 1; }
    local vocab=../shared/data/vocab-uncased.txt  # for tests that read the real vocabulary, when it is here
    [ -f "$vocab" ] && cp "$vocab" "$KIT/vocab-uncased.txt"
    du -sh "$KIT" && ls "$KIT/wheels" | wc -l | xargs echo "wheels:"
}

run() {
    local out=${OUT:-out/device}
    mkdir -p "$out"
    [ -d "$KIT/wheels" ] || { echo "run: no $KIT/wheels; run 'fetch' first and carry $KIT" >&2; exit 1; }
    local env=/tmp/mobilebert-device-env py target=()
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
    if python3 -m venv --system-site-packages "$env" > "$out/install.txt" 2>&1; then
        py=$env/bin/python  # sees the machine's torch; only what it lacks is installed below
    else  # no venv module there: the same wheels into a folder on PYTHONPATH, for the machine's python3
        py=python3 target=(--target /tmp/mobilebert-device-site)
        export PYTHONPATH=$PYTHONPATH:/tmp/mobilebert-device-site
    fi
    "$py" -m pip install --quiet --no-index --find-links "$KIT/wheels" "${target[@]}" "${WANTED[@]}" \
        >> "$out/install.txt" 2>&1 || { echo "run: offline install failed, see $out/install.txt" >&2; exit 1; }
    if [ -f "$KIT/vocab-uncased.txt" ] && [ ! -f ../shared/data/vocab-uncased.txt ]; then
        mkdir -p ../shared/data && cp "$KIT/vocab-uncased.txt" ../shared/data/  # where the tests look for it
    fi
    {
        nvidia-smi 2>&1 || echo "nvidia-smi: not found"
        "$py" -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.version.cuda, '| available', torch.cuda.is_available())"
    } > "$out/env.txt" 2>&1
    local device=cuda layers=() marker=(-m gpu)
    if [ "${DRY:-0}" = 1 ]; then device=cpu; layers=(--layers 2); marker=(-m "gpu or not gpu" tests/test_golden.py); fi
    timeout "${GPU_TEST_S:-240}" "$py" -m pytest -q -p no:cacheprovider "${marker[@]}" > "$out/gpu-tests.txt" 2>&1
    echo "pytest exit $?" >> "$out/gpu-tests.txt"
    timeout "${BENCH_S:-240}" "$py" benchmarks/bench_speed.py --framework pt --device "$device" \
        --dtypes float32,bfloat16 --paths eager,compile --cases 1x128,8x128 --repeats 10 "${layers[@]}" \
        --json "$out/speed-gpu.json" > "$out/speed-gpu.txt" 2>&1
    echo "bench_speed exit $?" >> "$out/speed-gpu.txt"
    tail -n 3 "$out/gpu-tests.txt"; tail -n 12 "$out/speed-gpu.txt"
}

case "${1:-}" in
    fetch) fetch ;;
    run) run ;;
    *) echo "usage: bash benchmarks/device_checks.sh fetch|run (see the comment at the top)" >&2; exit 2 ;;
esac
