"""Keras MobileBERT against the reference's TF classes (transformers==4.57.6, test-only; skipped when absent).

Every head x every tiny variant: our variable names are the hub's tf_model.h5 names (the Keras model
name included), with the reference's shapes, and with the same weights the outputs (logits, hidden
states, attentions) agree to relative 1e-5 in float32. Files both ways: test_tf_io.py.
"""

from __future__ import annotations

import re

import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")

from mobilebert_tf.pretrained import weights_by_name  # noqa: E402
from tests.harness.models import ARCHITECTURES, build_tf, flatten_output, model_inputs, random_weights, run_tf  # noqa: E402
from tests.harness.models import VARIANTS, assert_close, tiny_config  # noqa: E402

DECODER = "predictions___cls/predictions/decoder/weight:0"
WORDS = "mobilebert/embeddings/word_embeddings/weight:0"


def _reference_tf(architecture, config):
    transformers = pytest.importorskip("transformers")
    ref_config = transformers.MobileBertConfig.from_dict(config.to_dict())
    ref = getattr(transformers, "TF" + architecture)(ref_config)
    ref(ref.dummy_inputs, training=False)
    return ref


@pytest.mark.reference
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_names_and_outputs_equal_the_reference_tf(architecture, variant):
    # The reference sizes qa_outputs by num_labels: 2 there.
    config = tiny_config(variant, num_labels=2 if architecture == "MobileBertForQuestionAnswering" else 3)
    ref = _reference_tf(architecture, config)
    model = build_tf(architecture, config, random_weights(config, architecture, "tf"))
    # The weight names are the hub's tf_model.h5 names: model name, then the same path, same shapes.
    assert model.name == re.sub(r"_\d+$", "", ref.name)  # Keras numbers the reference's later instances
    ref_vars = {v.name.split("/", 1)[1]: v for v in ref.weights}
    ours = weights_by_name(model)
    assert sorted(ours) == sorted(k for k in ref_vars if k != DECODER)
    assert all(v.name.split("/", 1)[0] == model.name for v in model.weights)
    for name, var in ours.items():
        assert tuple(var.shape) == tuple(ref_vars[name].shape), name
        ref_vars[name].assign(var)
    if DECODER in ref_vars:  # the reference keeps its own decoder; ours is tied to the word embeddings
        ref_vars[DECODER].assign(ours[WORDS])
    # Outputs without labels (the reference's TF losses reduce differently and do not clamp QA
    # positions; our losses are compared with PyTorch's in test_model.py).
    inputs = model_inputs(config, architecture)
    flags = dict(output_hidden_states=True, output_attentions=True)
    expected = flatten_output(ref(**{k: tf.constant(v) for k, v in inputs.items()}, training=False, **flags))
    got = run_tf(model, inputs, **flags)
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert_close(got[key], expected[key], rtol=1e-5, what=key)
