"""from_pretrained(from_tf=True): a Keras tf_model.h5 (hub layout) read through `conversion` into PyTorch.

The h5 files come from the reference's TF classes (transformers==4.57.6, test-only), which write the
layout MobileBERT users have on the hub; our PyTorch model must give the logits of the PyTorch model
the file was made from.
"""

from __future__ import annotations

import os
import warnings

import pytest
import torch

import mobilebert_pt
from tests.harness.models import assert_close, random_inputs, tiny_config

pytest.importorskip("tensorflow")
transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.reference

CASES = [("MobileBertForMaskedLM", "default"), ("MobileBertForPreTraining", "layer_norm_gelu"),
         ("MobileBertForSequenceClassification", "separate_qk_no_bottleneck"), ("MobileBertModel", "bottleneck_attention")]


def make(cls_name, variant):
    torch.manual_seed(0)
    model = getattr(mobilebert_pt, cls_name)(tiny_config(variant, layer_norm_eps=1e-5)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model


@pytest.mark.parametrize("cls_name, variant", CASES)
def test_from_tf_gives_the_same_logits(tmp_path, cls_name, variant):
    model = make(cls_name, variant)
    model.save_pretrained(tmp_path / "pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf_model = getattr(transformers, "TF" + cls_name).from_pretrained(tmp_path / "pt", from_pt=True)
    tf_model.save_pretrained(tmp_path / "tf")
    assert sorted(os.listdir(tmp_path / "tf")) == ["config.json", "tf_model.h5"]
    loaded = getattr(mobilebert_pt, cls_name).from_pretrained(tmp_path / "tf", from_tf=True)
    x = {k: torch.from_numpy(v) for k, v in random_inputs(model.config).items()}
    with torch.no_grad():
        assert_close(loaded(**x)[0].numpy(), model(**x)[0].numpy(), 1e-6)
    # The weights file may also be given directly.
    direct = getattr(mobilebert_pt, cls_name).from_pretrained(tmp_path / "tf" / "tf_model.h5")
    with torch.no_grad():
        assert_close(direct(**x)[0].numpy(), model(**x)[0].numpy(), 1e-6)


def test_tf_only_directory_needs_from_tf(tmp_path):
    model = make("MobileBertForMaskedLM", "default")
    model.save_pretrained(tmp_path / "pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers.TFMobileBertForMaskedLM.from_pretrained(tmp_path / "pt", from_pt=True).save_pretrained(tmp_path / "tf")
    with pytest.raises(FileNotFoundError, match="pass from_tf=True"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path / "tf")
    (tmp_path / "tf" / "tf_model.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match="tf_model.h5"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path / "tf", from_tf=True)


def test_from_tf_into_another_head(tmp_path):
    """A masked-LM tf_model.h5 into a classifier: backbone from the file, classifier new, one warning."""
    model = make("MobileBertForMaskedLM", "default")
    model.save_pretrained(tmp_path / "pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers.TFMobileBertForMaskedLM.from_pretrained(tmp_path / "pt", from_pt=True).save_pretrained(tmp_path / "tf")
    with pytest.warns(UserWarning, match="newly initialised.*classifier.weight") as caught:
        classifier = mobilebert_pt.MobileBertForSequenceClassification.from_pretrained(tmp_path / "tf", from_tf=True)
    assert len([w for w in caught if "newly initialised" in str(w.message)]) == 1
    x = {k: torch.from_numpy(v) for k, v in random_inputs(model.config).items()}
    with torch.no_grad():
        expected = model.mobilebert(**x).last_hidden_state
        actual = classifier.mobilebert(**x).last_hidden_state
    assert_close(actual.numpy(), expected.numpy(), 1e-6)
