"""Every framework on every device against the golden Keras-on-CPU outputs (tests/harness/golden.py).

The fixture lets a GPU machine that has torch but no tensorflow check PyTorch on CUDA against
Keras on CPU. Tolerances: relative 1e-5 on CPU, 1e-4 on GPU with TF32 off.
Regenerate the fixture after a deliberate numerical change: `python3 -m tests.harness.golden`.
"""

from __future__ import annotations

import pytest

from tests.harness.models import model_inputs, random_weights
from tests.harness.golden import GOLDEN_PATH, OUTPUTS, case_config, case_key, golden_cases, load_golden
from tests.harness.models import assert_close

CASES = golden_cases()


@pytest.fixture(scope="module")
def golden():
    if not GOLDEN_PATH.is_file():
        pytest.fail(f"{GOLDEN_PATH} is missing; write it with `python3 -m tests.harness.golden` on a machine with tensorflow")
    return load_golden()


def compare_with_golden(golden, architecture, variant, outputs, rtol):
    fields = {k.split("/", 2)[2] for k in golden if k.startswith(f"{architecture}/{variant}/")}
    assert fields, f"no golden outputs for {architecture}/{variant}"
    assert "attentions.0" in fields and "hidden_states.0" in fields, "regenerate the fixture: python3 -m tests.harness.golden"
    assert fields == set(outputs), f"fields differ: {sorted(fields)} vs {sorted(outputs)}"
    for field in sorted(fields):
        assert_close(outputs[field], golden[case_key(architecture, variant, field)], rtol=rtol,
                     what=f"{architecture}/{variant} {field}")


def run_pytorch(architecture, variant, device):
    from tests.harness.models import build_pt, run_pt

    config = case_config(variant)
    model = build_pt(architecture, config, random_weights(config, architecture, "pt"))
    return run_pt(model, model_inputs(config, architecture), device=device, **OUTPUTS)


def run_keras(architecture, variant, device):
    import tensorflow as tf

    from tests.harness.models import build_tf, run_tf

    config = case_config(variant)
    with tf.device(device):
        model = build_tf(architecture, config, random_weights(config, architecture, "tf"))
        return run_tf(model, model_inputs(config, architecture), **OUTPUTS)


@pytest.mark.parametrize("architecture,variant", CASES)
def test_pytorch_cpu_matches_golden(golden, architecture, variant):
    pytest.importorskip("torch")
    compare_with_golden(golden, architecture, variant, run_pytorch(architecture, variant, "cpu"), rtol=1e-5)


@pytest.mark.parametrize("architecture,variant", CASES)
def test_keras_cpu_matches_golden(golden, architecture, variant):
    """Also proves the fixture is current: regenerate it if this fails after a deliberate change."""
    pytest.importorskip("tensorflow")
    compare_with_golden(golden, architecture, variant, run_keras(architecture, variant, "/CPU:0"), rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("architecture,variant", CASES)
def test_pytorch_cuda_matches_golden(golden, architecture, variant):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False  # TF32 would cost ~1e-3 relative
    torch.backends.cudnn.allow_tf32 = False
    compare_with_golden(golden, architecture, variant, run_pytorch(architecture, variant, "cuda"), rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("architecture,variant", CASES)
def test_keras_gpu_matches_golden(golden, architecture, variant):
    tf = pytest.importorskip("tensorflow")
    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("no GPU visible to tensorflow")
    tf.config.experimental.enable_tensor_float_32_execution(False)
    compare_with_golden(golden, architecture, variant, run_keras(architecture, variant, "/GPU:0"), rtol=1e-4)
