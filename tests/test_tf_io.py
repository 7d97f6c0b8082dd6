"""Keras MobileBERT: from_pretrained / save_pretrained in the hub's layout, and Keras' own weight files.

Round trips through our files, through the reference's files (transformers==4.57.6, tests only:
its TF classes save tf_model.h5, its PyTorch classes save safetensors / pytorch_model.bin),
head-to-head loading, and every broken or missing file.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")
h5py = pytest.importorskip("h5py")

import mobilebert_tf  # noqa: E402
from conversion import formats  # noqa: E402
from mobilebert_common import weights as weight_table  # noqa: E402
from mobilebert_tf.pretrained import weights_by_name  # noqa: E402
from tests.harness.models import ARCHITECTURES, build_tf, model_inputs, random_weights, run_tf  # noqa: E402
from tests.harness.models import VARIANTS, assert_close, tiny_config  # noqa: E402


# The tied masked-LM decoder and the tensor it copies (the hub's names).
DECODER = "predictions___cls/predictions/decoder/weight:0"
WORD_EMBEDDINGS = "mobilebert/embeddings/word_embeddings/weight:0"


def _cls(architecture):
    return getattr(mobilebert_tf, "TF" + architecture)


def _model(architecture, config, seed=0):
    return build_tf(architecture, config, random_weights(config, architecture, "tf", seed=seed))


def _load(architecture, path, **kwargs):
    """from_pretrained, returning (model, the loader's warnings)."""
    cls = _cls(architecture)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = cls.from_pretrained(path, **kwargs)
    ours = [str(w.message) for w in caught if str(w.message).startswith(cls.__name__ + ":")]
    return model, ours


def _logits(out: dict) -> dict:
    return {k: v for k, v in out.items() if "logits" in k or k in ("last_hidden_state", "pooler_output")}


# ---------------------------------------------------------------------------------- our files


CASES = [(a, "default") for a in ARCHITECTURES] + [("MobileBertForPreTraining", v) for v in VARIANTS if v != "default"]


@pytest.mark.parametrize("architecture,variant", CASES)
def test_save_load_round_trip(architecture, variant, tmp_path):
    config = tiny_config(variant, num_hidden_layers=1)
    model = _model(architecture, config)
    inputs = model_inputs(config, architecture)
    expected = run_tf(model, inputs)
    paths = model.save_pretrained(tmp_path)
    assert sorted(os.path.basename(p) for p in paths) == ["config.json", "tf_model.h5"]
    assert sorted(os.listdir(tmp_path)) == ["config.json", "tf_model.h5"]  # no temporary files left
    # transformers writes the architecture without the TF prefix; so do we.
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [architecture]

    loaded, notes = _load(architecture, tmp_path)
    assert notes == []
    got = run_tf(loaded, inputs)
    assert set(got) == set(expected)
    for key in expected:
        assert_close(got[key], expected[key], rtol=0, what=key)  # the very same weights


def test_h5_layout_is_the_hubs(tmp_path):
    """Groups per top-level layer, weight_names with the model-name prefix, the decoder stored (= embeddings)."""
    config = tiny_config("layer_norm_gelu", num_hidden_layers=1)
    model = _model("MobileBertForPreTraining", config)
    model.save_pretrained(tmp_path)
    with h5py.File(tmp_path / "tf_model.h5", "r") as f:
        layer_names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        assert layer_names == ["mobilebert", "predictions___cls", "seq_relationship___cls"]
        names = [n.decode() if isinstance(n, bytes) else n for n in f["predictions___cls"].attrs["weight_names"]]
        assert "tf_mobile_bert_for_pre_training/predictions___cls/predictions/transform/LayerNorm/gamma:0" in names
        decoder = f["predictions___cls/tf_mobile_bert_for_pre_training/" + DECODER][()]
        embeddings = f["mobilebert/tf_mobile_bert_for_pre_training/" + WORD_EMBEDDINGS][()]
    np.testing.assert_array_equal(decoder, embeddings)
    expected = {e.tf_name for e in weight_table.entries(config, "MobileBertForPreTraining")}
    assert set(formats.read_tf_h5(str(tmp_path / "tf_model.h5"))) == expected


def test_config_overrides_and_explicit_config(tmp_path):
    config = tiny_config(num_hidden_layers=1, num_labels=3)
    _model("MobileBertForSequenceClassification", config).save_pretrained(tmp_path)
    loaded, notes = _load("MobileBertForSequenceClassification", tmp_path, hidden_dropout_prob=0.0)
    assert notes == [] and loaded.config.hidden_dropout_prob == 0.0 and loaded.config.num_labels == 3
    loaded, notes = _load("MobileBertForSequenceClassification", tmp_path, config=config.copy(classifier_dropout=0.2))
    assert notes == [] and loaded.config.classifier_dropout == 0.2
    # A weights file given directly; config.json from its directory.
    loaded, notes = _load("MobileBertForSequenceClassification", tmp_path / "tf_model.h5")
    assert notes == [] and loaded.config.num_labels == 3
    _, info = _cls("MobileBertForSequenceClassification").from_pretrained(tmp_path, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    with pytest.warns(UserWarning, match="unused weights"):
        _, info = _cls("MobileBertForTokenClassification").from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["unexpected_keys"]) == ["mobilebert/pooler/dense/bias:0", "mobilebert/pooler/dense/kernel:0"]


def test_keras_save_weights_h5_is_readable_as_tf_model_h5(tmp_path):
    """Keras' own h5 is the hub's layout: from_pretrained reads it as tf_model.h5 (the decoder is tied)."""
    config = tiny_config(num_hidden_layers=1)
    model = _model("MobileBertForMaskedLM", config)
    model.save_weights(str(tmp_path / "tf_model.h5"), save_format="h5")
    config.save_pretrained(tmp_path)
    loaded, notes = _load("MobileBertForMaskedLM", tmp_path)
    assert notes == []
    inputs = model_inputs(config, "MobileBertForMaskedLM")
    assert_close(run_tf(loaded, inputs)["logits"], run_tf(model, inputs)["logits"], rtol=0)


# ---------------------------------------------------------------------------------- head to head


def test_pretraining_checkpoint_into_classifier(tmp_path):
    config = tiny_config(num_hidden_layers=1)
    source = _model("MobileBertForPreTraining", config)
    source.save_pretrained(tmp_path)
    model, notes = _load("MobileBertForSequenceClassification", tmp_path)
    assert len(notes) == 1  # ONE warning: new head weights and the unused ones together
    assert "classifier/kernel:0" in notes[0] and "classifier/bias:0" in notes[0]
    assert "predictions___cls/predictions/bias:0" in notes[0] and "seq_relationship___cls" in notes[0]
    theirs, ours = weights_by_name(source), weights_by_name(model)
    for name, var in ours.items():
        if name.startswith("mobilebert/"):
            np.testing.assert_array_equal(var.numpy(), theirs[name].numpy(), err_msg=name)
    kernel = ours["classifier/kernel:0"].numpy()
    r = config.initializer_range
    assert np.abs(kernel).max() <= 2 * r + 1e-7 and 0.5 * r < kernel.std() < 1.2 * r  # truncated normal(initializer_range)
    np.testing.assert_array_equal(ours["classifier/bias:0"].numpy(), 0)


def test_bare_backbone_into_masked_lm_and_back(tmp_path):
    config = tiny_config(num_hidden_layers=1)
    _model("MobileBertModel", config).save_pretrained(tmp_path / "bare")
    mlm, notes = _load("MobileBertForMaskedLM", tmp_path / "bare")
    assert len(notes) == 1 and "predictions___cls/predictions/dense/weight:0" in notes[0]
    assert "pooler" in notes[0]  # the bare model's pooler is unused by the masked-LM head
    mlm.save_pretrained(tmp_path / "mlm")
    bare, notes = _load("MobileBertModel", tmp_path / "mlm")
    assert len(notes) == 1 and "pooler/dense/kernel:0" in notes[0] and DECODER in notes[0]


def test_head_shape_mismatch_needs_ignore_mismatched_sizes(tmp_path):
    config = tiny_config(num_hidden_layers=1, num_labels=2)
    _model("MobileBertForSequenceClassification", config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="ignore_mismatched_sizes"):
        _cls("MobileBertForSequenceClassification").from_pretrained(tmp_path, num_labels=5)
    model, notes = _load("MobileBertForSequenceClassification", tmp_path, num_labels=5, ignore_mismatched_sizes=True)
    assert len(notes) == 1 and "classifier/kernel:0" in notes[0]
    assert tuple(weights_by_name(model)["classifier/kernel:0"].shape) == (config.hidden_size, 5)


def test_backbone_mismatch_is_an_error(tmp_path):
    config = tiny_config(num_hidden_layers=1)
    _model("MobileBertModel", config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="tf_model.h5.*shape mismatch"):
        _cls("MobileBertModel").from_pretrained(tmp_path, config=config.copy(intermediate_size=40))
    with pytest.raises(ValueError, match="backbone weights are missing"):
        _cls("MobileBertModel").from_pretrained(tmp_path, config=config.copy(num_hidden_layers=2))


def test_untied_decoder_is_an_error(tmp_path):
    config = tiny_config(num_hidden_layers=1)
    weights = random_weights(config, "MobileBertForMaskedLM", "tf")
    weights[DECODER] = weights[DECODER] + 1.0
    config.copy(architectures=["MobileBertForMaskedLM"]).save_pretrained(tmp_path)
    formats.write_tf_h5(str(tmp_path / "tf_model.h5"), weights, model_name="tf_mobile_bert_for_masked_lm")
    with pytest.raises(ValueError, match="decoder"):
        _cls("MobileBertForMaskedLM").from_pretrained(tmp_path)


def test_from_pt_our_pytorch_files_same_head_and_head_to_head(tmp_path):
    pytest.importorskip("torch")
    from tests.harness.models import build_pt, run_pt

    config = tiny_config(num_hidden_layers=1)
    source = build_pt("MobileBertForPreTraining", config, random_weights(config, "MobileBertForPreTraining", "pt"))
    source.save_pretrained(tmp_path)
    inputs = model_inputs(config, "MobileBertForPreTraining")
    expected = run_pt(source, inputs)
    same, notes = _load("MobileBertForPreTraining", tmp_path, from_pt=True)
    assert notes == []
    got = run_tf(same, inputs)
    for key in ("prediction_logits", "seq_relationship_logits"):
        assert_close(got[key], expected[key], rtol=1e-5, what=key)
    classifier, notes = _load("MobileBertForSequenceClassification", tmp_path, from_pt=True, num_labels=3)
    assert len(notes) == 1 and "classifier/kernel:0" in notes[0] and "predictions___cls" in notes[0]
    ours, theirs = weights_by_name(classifier), weights_by_name(same)
    for name in theirs:
        if name.startswith("mobilebert/"):
            np.testing.assert_array_equal(ours[name].numpy(), theirs[name].numpy(), err_msg=name)


def test_loading_inside_an_outer_name_scope(tmp_path):
    """Keras names variables by the name scopes open when they are created; the model builds under its
    own name as an absolute scope, so an outer tf.name_scope changes nothing: same names, same weights."""
    config = tiny_config(num_hidden_layers=1)
    source = _model("MobileBertForPreTraining", config)
    source.save_pretrained(tmp_path / "src")
    with tf.name_scope("outer"):
        with tf.name_scope("inner"):
            loaded, notes = _load("MobileBertForPreTraining", tmp_path / "src")
        loaded.save_weights(str(tmp_path / "keras.h5"), save_format="h5")  # Keras' own h5 written in the scope
    assert notes == []
    assert all(v.name.startswith("tf_mobile_bert_for_pre_training/") for v in loaded.weights)
    inputs = model_inputs(config, "MobileBertForPreTraining")
    expected = run_tf(source, inputs)
    got = run_tf(loaded, inputs)
    for key in expected:
        assert_close(got[key], expected[key], rtol=0, what=key)
    expected_names = {e.tf_name for e in weight_table.entries(config, "MobileBertForPreTraining") if e.transform != "tie"}
    assert set(formats.read_tf_h5(str(tmp_path / "keras.h5"))) == expected_names


def test_a_file_without_any_backbone_weight_names_the_file(tmp_path):
    config = tiny_config(num_hidden_layers=1)
    weights = {"encoder_of_something_else/" + k: v for k, v in random_weights(config, "MobileBertModel", "tf").items()}
    config.copy(architectures=["MobileBertModel"]).save_pretrained(tmp_path)
    formats.write_tf_h5(str(tmp_path / "tf_model.h5"), weights, model_name="tf_mobile_bert_model")
    with pytest.raises(ValueError, match=r"tf_model.h5: none of TFMobileBertModel's backbone weights is in it"):
        _cls("MobileBertModel").from_pretrained(tmp_path)


_FROM_PT_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now fails
import numpy as np
import mobilebert_tf
model = mobilebert_tf.TFMobileBertForMaskedLM.from_pretrained(sys.argv[1], from_pt=True)
inputs = dict(np.load(sys.argv[2]))
np.save(sys.argv[3], model(inputs, training=False).logits.numpy())
assert sys.modules["torch"] is None
"""


def test_from_pt_safetensors_without_torch(tmp_path):
    import subprocess
    import sys

    config = tiny_config(num_hidden_layers=1)
    architecture = "MobileBertForMaskedLM"
    config.copy(architectures=[architecture]).save_pretrained(tmp_path)
    formats.write_safetensors(str(tmp_path / "model.safetensors"), random_weights(config, architecture, "pt"), {"format": "pt"})
    inputs = model_inputs(config, architecture)
    np.savez(tmp_path / "inputs.npz", **inputs)
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    proc = subprocess.run([sys.executable, "-c", _FROM_PT_WITHOUT_TORCH, str(tmp_path), str(tmp_path / "inputs.npz"),
                           str(tmp_path / "logits.npy")], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = run_tf(_model(architecture, config), inputs)["logits"]  # the same weights, in Keras naming
    assert_close(np.load(tmp_path / "logits.npy"), expected, rtol=1e-6)


# ---------------------------------------------------------------------------------- broken / missing files


def test_corrupt_and_truncated_h5_name_the_file(tmp_path):
    config = tiny_config(num_hidden_layers=1)
    _model("MobileBertModel", config).save_pretrained(tmp_path)
    path = tmp_path / "tf_model.h5"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="tf_model.h5"):
        _cls("MobileBertModel").from_pretrained(tmp_path)
    path.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(ValueError, match="tf_model.h5"):
        _cls("MobileBertModel").from_pretrained(tmp_path)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        _cls("MobileBertModel").from_pretrained(tmp_path / "does-not-exist")
    config = tiny_config(num_hidden_layers=1)
    config.save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="tf_model.h5"):
        _cls("MobileBertModel").from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        _cls("MobileBertModel").from_pretrained(tmp_path, from_pt=True)
    os.remove(tmp_path / "config.json")
    with pytest.raises(FileNotFoundError, match="config.json"):
        _cls("MobileBertModel").from_pretrained(tmp_path)
    # PyTorch weights only: the message says to pass from_pt=True.
    config.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="from_pt=True"):
        _cls("MobileBertModel").from_pretrained(tmp_path)


def test_hub_repo_offline_and_bad_keywords(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="google/mobilebert-uncased"):
        _cls("MobileBertModel").from_pretrained("google/mobilebert-uncased", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unknown keyword"):
        _cls("MobileBertModel").from_pretrained(tmp_path, no_such_option=1)


def test_save_into_a_file_is_an_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ValueError, match="directory"):
        _model("MobileBertModel", tiny_config(num_hidden_layers=1)).save_pretrained(target)


# ---------------------------------------------------------------------------------- the reference's files

REFERENCE_HEADS = ARCHITECTURES  # all eight


def _transformers():
    return pytest.importorskip("transformers")


def _hf_config(transformers, config):
    return transformers.MobileBertConfig(**{k: v for k, v in config.to_dict().items() if k != "true_hidden_size"})


def _hf_outputs(model, inputs) -> dict:
    out = model(**{k: tf.constant(v) for k, v in inputs.items()}, training=False)
    return {k: np.asarray(v) for k, v in out.items() if v is not None and not isinstance(v, tuple)}


@pytest.mark.reference
@pytest.mark.parametrize("architecture", REFERENCE_HEADS)
def test_reference_tf_files_both_ways(architecture, tmp_path):
    transformers = _transformers()
    variant = "layer_norm_gelu" if architecture == "MobileBertForPreTraining" else "default"
    config = tiny_config(variant, num_hidden_layers=1)
    weights = random_weights(config, architecture, "tf")
    inputs = model_inputs(config, architecture)

    # The reference's TF model with our random weights -> its tf_model.h5 -> ours.
    ref = getattr(transformers, "TF" + architecture)(_hf_config(transformers, config))
    ref(ref.dummy_inputs, training=False)
    for var in ref.weights:
        var.assign(weights[var.name.split("/", 1)[1]])
    expected = _logits(_hf_outputs(ref, inputs))
    ref.save_pretrained(tmp_path / "ref")
    ours, notes = _load(architecture, tmp_path / "ref")
    assert notes == []
    got = run_tf(ours, inputs)
    for key in expected:
        assert_close(got[key], expected[key], rtol=1e-5, what=key)

    # Ours -> tf_model.h5 -> the reference's TF loader: nothing missing, nothing unused, same outputs.
    ours.save_pretrained(tmp_path / "ours")
    back, info = getattr(transformers, "TF" + architecture).from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    for key, value in _logits(_hf_outputs(back, inputs)).items():
        assert_close(value, expected[key], rtol=1e-5, what=key)


@pytest.mark.reference
@pytest.mark.parametrize("fmt", ["safetensors", "bin", "sharded"])
def test_from_pt_reference_files(fmt, tmp_path):
    transformers = _transformers()
    torch = pytest.importorskip("torch")
    architecture = "MobileBertForMaskedLM" if fmt != "bin" else "MobileBertForQuestionAnswering"
    config = tiny_config(num_hidden_layers=1)
    ref = getattr(transformers, architecture)(_hf_config(transformers, config)).eval()
    state = {k: torch.from_numpy(v) for k, v in random_weights(config, architecture, "pt").items()}
    missing, unexpected = ref.load_state_dict(state, strict=False)
    assert unexpected == [] and all(".decoder." in k for k in missing)  # tied to the embeddings and the bias
    inputs = model_inputs(config, architecture)
    with torch.no_grad():
        out = ref(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    expected = {k: v.numpy() for k, v in out.items() if "logits" in k}
    kwargs = {"safetensors": {}, "bin": {"safe_serialization": False}, "sharded": {"max_shard_size": "20KB"}}[fmt]
    ref.save_pretrained(tmp_path, **kwargs)
    names = set(os.listdir(tmp_path))
    assert {"safetensors": "model.safetensors", "bin": "pytorch_model.bin", "sharded": "model.safetensors.index.json"}[fmt] in names

    ours, notes = _load(architecture, tmp_path, from_pt=True)
    assert notes == []
    got = run_tf(ours, inputs)
    for key in expected:
        assert_close(got[key], expected[key], rtol=1e-5, what=key)
