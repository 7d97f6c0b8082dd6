"""mobilebert_common.loading: one policy for both frameworks' from_pretrained.

A config.json that builds fewer layers or FFNs than the weights hold must not load with layers
silently dropped: leftover backbone weights are an error naming the file. Another head's weights
stay a warning.
"""

import warnings

import numpy as np
import pytest

from mobilebert_common.loading import LoadReport, apply_policy, compare
from tests.harness.models import tiny_config

FEWER = [dict(num_hidden_layers=1), dict(num_feedforward_networks=1)]


def is_backbone(key):
    return key.startswith(("embeddings.", "encoder."))


def test_policy_rules():
    model = {"embeddings.w": (2,), "encoder.layer.0.w": (2,), "classifier.w": (3,)}
    with pytest.raises(ValueError, match=r"f.bin does not match the config of M: the file holds 1 backbone weights that "
                                         r"the config does not build \(encoder.layer.1.w\).*does not match the weights"):
        apply_policy(compare(model, {**model, "encoder.layer.1.w": (2,)}), source="f.bin", model_class="M",
                     is_backbone=is_backbone)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reinit = apply_policy(compare(model, {"embeddings.w": (2,), "encoder.layer.0.w": (2,), "cls.x": (4,)}),
                              source="f.bin", model_class="M", is_backbone=is_backbone)
    assert reinit == ["classifier.w"]
    (message,) = [str(w.message) for w in caught]
    assert "newly initialised (not in f.bin), train before use: classifier.w" in message
    assert "unused weights of f.bin (another head's, which M does not have): cls.x" in message
    assert not LoadReport()


def _ids(config):
    return np.array([[2, 7, 5, 1, 9]]) % config.vocab_size


@pytest.mark.parametrize("fewer", FEWER)
def test_pytorch_config_with_fewer_layers_than_the_weights(tmp_path, fewer):
    torch = pytest.importorskip("torch")
    import mobilebert_pt

    mobilebert_pt.MobileBertForMaskedLM(tiny_config()).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"model.safetensors does not match the config of MobileBertForMaskedLM.*"
                                         r"the config does not build \(mobilebert.encoder.layer.*"
                                         r"does not match the weights"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, **fewer)
    # The same file with its own config loads, and another head's weights stay a warning.
    mobilebert_pt.MobileBertForPreTraining(tiny_config()).save_pretrained(tmp_path / "pretraining")
    with pytest.warns(UserWarning, match="another head's") as caught:
        model = mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path / "pretraining")
    message = " ".join(str(w.message) for w in caught)
    assert "cls.seq_relationship.weight" in message and "mobilebert.encoder" not in message
    with torch.no_grad():
        assert model(input_ids=torch.from_numpy(_ids(model.config))).logits.shape == (1, 5, 99)


@pytest.mark.parametrize("fewer", FEWER)
def test_keras_config_with_fewer_layers_than_the_weights(tmp_path, fewer):
    pytest.importorskip("tensorflow")
    pytest.importorskip("torch")
    import mobilebert_pt
    import mobilebert_tf

    mobilebert_pt.MobileBertForMaskedLM(tiny_config()).save_pretrained(tmp_path / "pt")
    with pytest.raises(ValueError, match=r"model.safetensors does not match the config of TFMobileBertForMaskedLM.*"
                                         r"mobilebert/encoder/layer_.*does not match the weights"):
        mobilebert_tf.TFMobileBertForMaskedLM.from_pretrained(tmp_path / "pt", from_pt=True, **fewer)
    model = mobilebert_tf.TFMobileBertForMaskedLM.from_pretrained(tmp_path / "pt", from_pt=True)
    model.save_pretrained(tmp_path / "tf")
    with pytest.raises(ValueError, match=r"tf_model.h5 does not match the config of TFMobileBertForMaskedLM.*"
                                         r"mobilebert/encoder/layer_.*does not match the weights"):
        mobilebert_tf.TFMobileBertForMaskedLM.from_pretrained(tmp_path / "tf", **fewer)
    # Another head's weights: a warning that names them, not the backbone.
    with pytest.warns(UserWarning, match="newly initialised.*seq_relationship"):  # a masked-LM file into pre-training
        pretraining = mobilebert_tf.TFMobileBertForPreTraining.from_pretrained(tmp_path / "pt", from_pt=True)
    pretraining.save_pretrained(tmp_path / "pre")
    with pytest.warns(UserWarning, match="another head's") as caught:
        mobilebert_tf.TFMobileBertForMaskedLM.from_pretrained(tmp_path / "pre")
    message = " ".join(str(w.message) for w in caught)
    assert "seq_relationship" in message and "mobilebert/encoder" not in message
