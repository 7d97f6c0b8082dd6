"""Keras MobileBERT as TensorFlow users run it: tf.function with dynamic shapes, XLA, Keras weight files,
SavedModels and Keras' own saving reloaded in a fresh process. (Training: test_tf_training.py; the
input checks around XLA: test_tf_xla.py.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")

from tests.harness.models import build_tf, model_inputs, random_weights, run_tf  # noqa: E402
from tests.harness.models import assert_close, random_inputs, tiny_config  # noqa: E402


def _model(architecture, config, seed=0):
    return build_tf(architecture, config, random_weights(config, architecture, "tf", seed=seed))


def _eager(model, inputs, key="logits"):
    return run_tf(model, inputs)[key]


# ---------------------------------------------------------------------------------- tf.function, XLA

HEADS = ["MobileBertForSequenceClassification", "MobileBertForPreTraining", "MobileBertForQuestionAnswering"]


def _outputs(model, inputs: dict) -> dict:
    return {k: v for k, v in run_tf(model, inputs).items() if "logits" in k}


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize("architecture", HEADS)
def test_tf_function_dynamic_shapes(architecture, jit_compile):
    config = tiny_config(num_hidden_layers=1)
    model = _model(architecture, config)
    spec = [tf.TensorSpec([None, None], tf.int32, name=n) for n in ("input_ids", "attention_mask", "token_type_ids")]

    @tf.function(input_signature=spec, jit_compile=jit_compile)
    def logits(input_ids, attention_mask, token_type_ids):
        out = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, training=False)
        return {k: v for k, v in out.items() if "logits" in k}

    for batch, seq in ((2, 7), (3, 5)):  # other batch and length: the same trace
        inputs = random_inputs(config, batch=batch, seq=seq, seed=seq)
        got = logits(**{k: tf.constant(v, tf.int32) for k, v in inputs.items()})
        expected = _outputs(model, inputs)
        assert sorted(got) == sorted(expected)
        for key in expected:
            assert_close(got[key].numpy(), expected[key], rtol=1e-5, what=f"{key} {batch}x{seq}")
    assert logits.experimental_get_tracing_count() == 1


def test_tf_function_returns_the_output_class():
    config = tiny_config(num_hidden_layers=1)
    model = _model("MobileBertForQuestionAnswering", config)
    inputs = random_inputs(config)
    out = tf.function(model)({k: tf.constant(v) for k, v in inputs.items()}, training=False)
    assert type(out).__name__ == "QuestionAnsweringModelOutput" and out.keys() == ["start_logits", "end_logits"]
    assert_close(out.start_logits.numpy(), _eager(model, inputs, "start_logits"), rtol=1e-5)


def test_serving_function_multiple_choice_xla():
    config = tiny_config(num_hidden_layers=1)
    model = _model("MobileBertForMultipleChoice", config)
    inputs = model_inputs(config, "MobileBertForMultipleChoice")  # (2, 3, 7)
    fn = model.serving_function(tf.int64, jit_compile=True)
    got = fn(**{k: tf.constant(inputs[k]) for k in ("input_ids", "attention_mask", "token_type_ids")})
    assert_close(got["logits"].numpy(), _eager(model, inputs), rtol=1e-5)
    # The inputs are checked before XLA (which would drop the assertion): a readable error, not numbers.
    bad = {k: tf.constant(v) for k, v in inputs.items()}
    bad["input_ids"] = bad["input_ids"] + config.vocab_size
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"input_ids must hold ids in \[0, 99\)"):
        fn(**bad)


# ---------------------------------------------------------------------------------- Keras weight files


@pytest.mark.parametrize("fmt", ["h5", "tf"])
def test_keras_save_weights_load_weights(fmt, tmp_path):
    config = tiny_config(num_hidden_layers=1)
    model = _model("MobileBertForMaskedLM", config)
    inputs = random_inputs(config)
    path = str(tmp_path / ("weights.h5" if fmt == "h5" else "ckpt"))
    model.save_weights(path, save_format=fmt)
    other = build_tf("MobileBertForMaskedLM", config)  # fresh initialisation
    assert not np.allclose(_eager(other, inputs), _eager(model, inputs))
    status = other.load_weights(path)
    if fmt == "tf":
        status.assert_existing_objects_matched()
    assert_close(_eager(other, inputs), _eager(model, inputs), rtol=0)


# ---------------------------------------------------------------------------------- SavedModel, Keras saving

# Runs in a fresh interpreter WITHOUT this package on its path: a SavedModel is self-contained.
_RELOAD_SAVED_MODELS = textwrap.dedent(
    """
    import json, sys, numpy as np, tensorflow as tf
    manifest, out_path = json.load(open(sys.argv[1])), sys.argv[2]
    out = {}
    for case, item in manifest.items():
        inputs = dict(np.load(item["inputs"]))
        loaded = tf.saved_model.load(item["dir"])
        feed = lambda dtype, cut=None: {k: tf.constant(v if cut is None else v[:1, ..., :cut], dtype) for k, v in inputs.items()}
        out[case + "/default"] = loaded.signatures["serving_default"](**feed(tf.int64))[item["key"]].numpy()
        if item["kind"] == "export":
            out[case + "/int32"] = loaded.signatures["serving_int32"](**feed(tf.int32))[item["key"]].numpy()
            for dtype in (tf.int32, tf.int64):
                out[case + "/serving_" + dtype.name] = loaded.serving(**feed(dtype))[item["key"]].numpy()
            out[case + "/short"] = loaded.signatures["serving_default"](**feed(tf.int64, cut=4))[item["key"]].numpy()
    np.savez(out_path, **out)
    """
)

# Keras' own load_model: needs the classes, registered when mobilebert_tf is imported.
_RELOAD_KERAS = textwrap.dedent(
    """
    import json, sys, numpy as np, tensorflow as tf, tf_keras as keras
    import mobilebert_tf  # registers the classes with Keras
    manifest, out_path = json.load(open(sys.argv[1])), sys.argv[2]
    out = {}
    for case, item in manifest.items():
        model = keras.models.load_model(item["dir"])
        assert type(model).__name__ == item["class"], type(model)
        inputs = {k: tf.constant(v) for k, v in np.load(item["inputs"]).items()}
        out[case] = model(inputs, training=False)[item["key"]].numpy()
    np.savez(out_path, **out)
    """
)


def _run_fresh(script: str, manifest: dict, tmp_path, with_package: bool) -> dict:
    import json
    import os

    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) if with_package else ""
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "manifest.json"), str(tmp_path / "out.npz")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(tmp_path / "out.npz"))


def test_saved_models_in_a_fresh_process(tmp_path):
    """export (serving_default int64, serving_int32, serving for both), tf.saved_model.save(model) and
    model.save(dir, save_format="tf"), reloaded with tf.saved_model.load in a fresh interpreter: same logits."""
    config = tiny_config(num_hidden_layers=1)
    manifest, expected = {}, {}
    cases = [("export", "MobileBertForTokenClassification", "logits"), ("export", "MobileBertForMultipleChoice", "logits"),
             ("export", "MobileBertForPreTraining", "seq_relationship_logits"),
             ("tf_saved_model_save", "MobileBertForSequenceClassification", "logits"),
             ("keras_save_tf", "MobileBertForQuestionAnswering", "start_logits")]
    for kind, architecture, key in cases:
        model = _model(architecture, config)
        inputs = model_inputs(config, architecture)
        case = f"{kind}-{architecture}"
        path = tmp_path / case
        if kind == "export":
            assert model.export(path) == str(path)  # Keras' name for export_saved_model
        elif kind == "tf_saved_model_save":
            tf.saved_model.save(model, str(path))
        else:
            model.save(str(path), save_format="tf")
        np.savez(tmp_path / f"{case}.npz", **inputs)
        manifest[case] = {"kind": kind, "dir": str(path), "inputs": str(tmp_path / f"{case}.npz"), "key": key}
        expected[case] = _eager(model, inputs, key)
        if kind == "export":
            expected[case + "/short"] = _eager(model, {k: v[:1, ..., :4] for k, v in inputs.items()}, key)
    out = _run_fresh(_RELOAD_SAVED_MODELS, manifest, tmp_path, with_package=False)
    for case in manifest:
        variants = ["default"] + (["int32", "serving_int32", "serving_int64"] if manifest[case]["kind"] == "export" else [])
        for variant in variants:
            assert_close(out[f"{case}/{variant}"], expected[case], rtol=1e-5, what=f"{case} {variant}")
        if manifest[case]["kind"] == "export":
            assert_close(out[f"{case}/short"], expected[case + "/short"], rtol=1e-5, what=f"{case}: other batch and length")


def test_keras_model_save_and_load_model_in_a_fresh_process(tmp_path):
    """model.save("m.keras") and model.save(dir, save_format="tf"), then keras.models.load_model: the same
    class (get_config / from_config over the MobileBertConfig) with the same logits."""
    config = tiny_config(num_hidden_layers=1, num_labels=3)
    manifest, expected = {}, {}
    for fmt, architecture, key in (("keras", "MobileBertForSequenceClassification", "logits"),
                                   ("keras", "MobileBertForMaskedLM", "logits"),
                                   ("tf", "MobileBertForMultipleChoice", "logits")):
        model = _model(architecture, config)
        inputs = model_inputs(config, architecture)
        case = f"{fmt}-{architecture}"
        path = tmp_path / (case + ".keras" if fmt == "keras" else case)
        model.save(str(path)) if fmt == "keras" else model.save(str(path), save_format="tf")
        np.savez(tmp_path / f"{case}.npz", **inputs)
        manifest[case] = {"dir": str(path), "inputs": str(tmp_path / f"{case}.npz"), "key": key, "class": "TF" + architecture}
        expected[case] = _eager(model, inputs, key)
    out = _run_fresh(_RELOAD_KERAS, manifest, tmp_path, with_package=True)
    for case in manifest:
        assert_close(out[case], expected[case], rtol=0, what=case)


def test_get_config_rebuilds_the_same_model():
    import mobilebert_tf

    config = tiny_config("layer_norm_gelu", num_hidden_layers=1, num_labels=4, id2label={i: f"L{i}" for i in range(4)})
    model = build_tf("MobileBertForTokenClassification", config)
    keras_config = model.get_config()
    assert keras_config["config"] == config.to_dict()
    rebuilt = mobilebert_tf.TFMobileBertForTokenClassification.from_config(keras_config)
    assert rebuilt.config == config and rebuilt.name == model.name
    # Keras' own (de)serialization finds the registered class by name.
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert type(again) is mobilebert_tf.TFMobileBertForTokenClassification and again.config == config
