"""PyTorch and Keras give the same numbers: every head, every config option, both directions.

In memory: weights converted with conversion.convert (pt -> tf and tf -> pt), logits, hidden
states and attentions compared at relative 1e-5 in float32, and the round trip back is bit-exact.
Through files: save_pretrained in one framework, from_pretrained(from_pt / from_tf) in the other,
and the `python -m conversion` command in between.
Devices: against golden outputs of Keras on CPU (tests/harness/golden.py), so PyTorch on CUDA is checked
on machines that have no TensorFlow.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.harness.models import (ARCHITECTURES, build_pt, build_tf, model_inputs, pt_weights, random_weights, run_pt,
                              run_tf, tf_weights)
from tests.harness.models import VARIANTS, assert_close, tiny_config

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
from conversion.convert import pt_to_tf, tf_to_pt  # noqa: E402

RTOL = 1e-5
ALL_OUTPUTS = dict(output_hidden_states=True, output_attentions=True)

# Every head on every config: 8 x 5 pt -> tf. The reverse direction on every head (default config)
# and on every config (two heads), which covers each converter path at a fraction of the time.
PT_TO_TF_CASES = [(arch, variant) for arch in ARCHITECTURES for variant in VARIANTS]
TF_TO_PT_CASES = [(arch, "default") for arch in ARCHITECTURES] + [
    (arch, variant) for variant in VARIANTS if variant != "default"
    for arch in ("MobileBertForPreTraining", "MobileBertForQuestionAnswering")
]


def config_for(variant):
    return tiny_config(variant, num_labels=3)


def assert_same_outputs(actual: dict, expected: dict, rtol: float = RTOL, context: str = ""):
    assert set(actual) == set(expected), f"{context}: output fields differ: {sorted(actual)} vs {sorted(expected)}"
    assert any(k.startswith("hidden_states") for k in expected) or "hidden_states.0" not in actual
    for field in expected:
        assert_close(actual[field], expected[field], rtol=rtol, what=f"{context} {field}")


@pytest.mark.parametrize("architecture,variant", PT_TO_TF_CASES)
def test_pt_to_tf_in_memory(architecture, variant):
    config = config_for(variant)
    pt_model = build_pt(architecture, config, random_weights(config, architecture, "pt"))
    source = pt_weights(pt_model)
    converted = pt_to_tf(source, config, architecture)
    tf_model = build_tf(architecture, config, converted)

    inputs = model_inputs(config, architecture)
    expected = run_pt(pt_model, inputs, **ALL_OUTPUTS)
    actual = run_tf(tf_model, inputs, **ALL_OUTPUTS)
    assert "attentions.0" in expected and "hidden_states.0" in expected
    assert_same_outputs(actual, expected, context=f"{architecture}/{variant} tf vs pt")

    # pt -> tf -> pt gives back the very same bits.
    back = tf_to_pt(tf_weights(tf_model), config, architecture)
    assert set(back) == set(source)
    for name, value in source.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)


@pytest.mark.parametrize("architecture,variant", TF_TO_PT_CASES)
def test_tf_to_pt_in_memory(architecture, variant):
    config = config_for(variant)
    tf_model = build_tf(architecture, config, random_weights(config, architecture, "tf", seed=1))
    source = tf_weights(tf_model)
    converted = tf_to_pt(source, config, architecture)
    pt_model = build_pt(architecture, config, converted)

    inputs = model_inputs(config, architecture, seed=3)
    expected = run_tf(tf_model, inputs, **ALL_OUTPUTS)
    actual = run_pt(pt_model, inputs, **ALL_OUTPUTS)
    assert_same_outputs(actual, expected, context=f"{architecture}/{variant} pt vs tf")

    # tf -> pt -> tf: bit-exact, and the tied decoder comes back as the word embeddings.
    back = pt_to_tf(pt_weights(pt_model), config, architecture)
    for name, value in source.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)
    decoder = [k for k in back if "/decoder/" in k]
    for name in decoder:
        np.testing.assert_array_equal(back[name], source["mobilebert/embeddings/word_embeddings/weight:0"])


def _load_pt(architecture, path, **kwargs):
    import mobilebert_pt

    return getattr(mobilebert_pt, architecture).from_pretrained(str(path), **kwargs).eval()


def _load_tf(architecture, path, **kwargs):
    import mobilebert_tf

    return getattr(mobilebert_tf, "TF" + architecture).from_pretrained(str(path), **kwargs)


# Every head on the default config; every other config on two heads (all eight heads across them).
FILE_CASES = [(arch, "default") for arch in ARCHITECTURES] + [
    (ARCHITECTURES[(2 * i + k) % len(ARCHITECTURES)], variant)
    for i, variant in enumerate(v for v in VARIANTS if v != "default") for k in (0, 1)
]


@pytest.mark.parametrize("architecture,variant", FILE_CASES)
def test_through_files_both_directions(architecture, variant, tmp_path):
    """PyTorch save -> Keras from_pt -> Keras save -> PyTorch from_tf: same logits, hidden states and
    attentions, same bits."""
    config = config_for(variant)
    pt_model = build_pt(architecture, config, random_weights(config, architecture, "pt", seed=2))
    inputs = model_inputs(config, architecture, seed=5)
    expected = run_pt(pt_model, inputs, **ALL_OUTPUTS)
    assert "attentions.0" in expected

    pt_model.save_pretrained(str(tmp_path / "pt"))
    tf_model = _load_tf(architecture, tmp_path / "pt", from_pt=True)
    assert_same_outputs(run_tf(tf_model, inputs, **ALL_OUTPUTS), expected, context=f"{variant} from_pt")

    tf_model.save_pretrained(str(tmp_path / "tf"))
    pt_back = _load_pt(architecture, tmp_path / "tf", from_tf=True)
    assert_same_outputs(run_pt(pt_back, inputs, **ALL_OUTPUTS), expected, context=f"{variant} from_tf")
    original = pt_weights(pt_model)
    for name, value in pt_weights(pt_back).items():
        np.testing.assert_array_equal(value, original[name], err_msg=name)


@pytest.mark.parametrize("architecture,variant", [("MobileBertForPreTraining", "layer_norm_gelu"),
                                                  ("MobileBertForSequenceClassification", "bottleneck_attention")])
def test_through_the_conversion_command(architecture, variant, tmp_path):
    """`python -m conversion pt-to-tf` then `tf-to-pt`: each file loads in its framework, same logits."""
    from conversion.__main__ import main as convert_main

    config = config_for(variant)
    pt_model = build_pt(architecture, config, random_weights(config, architecture, "pt", seed=4))
    inputs = model_inputs(config, architecture, seed=6)
    expected = run_pt(pt_model, inputs, **ALL_OUTPUTS)
    pt_model.save_pretrained(str(tmp_path / "pt"))

    assert convert_main(["pt-to-tf", str(tmp_path / "pt"), str(tmp_path / "tf"), "--quiet"]) == 0
    assert (tmp_path / "tf" / "tf_model.h5").is_file() and (tmp_path / "tf" / "config.json").is_file()
    assert_same_outputs(run_tf(_load_tf(architecture, tmp_path / "tf"), inputs, **ALL_OUTPUTS), expected, context="pt-to-tf")

    assert convert_main(["tf-to-pt", str(tmp_path / "tf"), str(tmp_path / "back"), "--quiet"]) == 0
    assert_same_outputs(run_pt(_load_pt(architecture, tmp_path / "back"), inputs, **ALL_OUTPUTS), expected,
                        context="tf-to-pt")
