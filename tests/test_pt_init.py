"""PyTorch initialisation: the truncated normal, each module initialised once, and from_pretrained drawing
nothing for the weights a checkpoint provides (only what the file lacks gets the paper's init)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import mobilebert_pt
from mobilebert_pt.modeling import MobileBertPreTrainedModel
from mobilebert_pt.pretrained import truncated_normal_
from tests.harness.models import tiny_config


def test_truncated_normal_statistics():
    torch.manual_seed(0)
    x = truncated_normal_(torch.empty(200_000), std=0.02)
    assert float(x.abs().max()) <= 0.04  # cut at 2 std
    # Normal(0, 1) cut at +-2: std sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)) = 0.8796
    phi2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
    expected_std = 0.02 * math.sqrt(1 - 4 * phi2 / math.erf(2 / math.sqrt(2)))
    assert abs(float(x.std()) - expected_std) < 2e-4 and abs(float(x.mean())) < 2e-4
    assert float((x.abs() > 0.03).float().mean()) > 0.05  # not squeezed into the middle
    assert truncated_normal_(torch.empty(0, 5), 0.02).shape == (0, 5)  # empty: nothing, no warning


def test_each_module_is_initialised_once(monkeypatch):
    """A head builds its backbone (which initialises itself) and then initialises what is new: the head."""
    calls = []
    original = MobileBertPreTrainedModel._init_weights
    monkeypatch.setattr(MobileBertPreTrainedModel, "_init_weights", lambda self, module: (calls.append(module), original(self, module)))
    model = mobilebert_pt.MobileBertForSequenceClassification(tiny_config())
    ids = [id(m) for m in calls]
    assert len(ids) == len(set(ids)) == len(list(model.modules()))
    with torch.no_grad():
        assert float(model.classifier.weight.std()) > 0.005 and float(model.classifier.bias.abs().max()) == 0.0


def test_from_pretrained_initialises_only_what_the_file_lacks(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = mobilebert_pt.MobileBertForMaskedLM(tiny_config())
    model.save_pretrained(tmp_path)
    calls = []
    original = MobileBertPreTrainedModel._init_weights
    monkeypatch.setattr(MobileBertPreTrainedModel, "_init_weights", lambda self, module: (calls.append(module), original(self, module)))
    loaded = mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path)
    assert calls == []  # the file holds every weight: nothing drawn that would be overwritten
    for (name, p), q in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(p, q), name
    assert loaded.cls.predictions.decoder.weight is loaded.mobilebert.embeddings.word_embeddings.weight
    assert all(p.requires_grad for p in loaded.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classifier = mobilebert_pt.MobileBertForSequenceClassification.from_pretrained(tmp_path)
    assert calls == [classifier.classifier, classifier.mobilebert.pooler.dense]  # the weights the file lacks


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_weights_missing_from_the_file_are_initialised_not_left_empty(tmp_path, dtype):
    """What the file lacks gets the paper's init (not torch's default init of the freshly built modules)."""
    torch.manual_seed(0)
    config = tiny_config(initializer_range=0.5)
    mobilebert_pt.MobileBertModel(config).save_pretrained(tmp_path)  # no masked-LM head in the file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlm = mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, torch_dtype=dtype)
    head = mlm.cls.predictions
    assert head.bias.dtype == dtype and float(head.bias.abs().max()) == 0.0
    assert float((head.transform.LayerNorm.weight - 1).abs().max()) == 0.0
    assert float(head.transform.LayerNorm.bias.abs().max()) == 0.0
    for weight in (head.dense.weight, head.transform.dense.weight):
        assert float(weight.abs().max()) <= 1.0 and 0.3 < float(weight.float().std()) < 0.6
    assert float(head.transform.dense.bias.abs().max()) == 0.0
    assert all(bool(torch.isfinite(p).all()) for p in mlm.parameters())


def test_ignore_mismatched_sizes_reinitialises_only_the_mismatched_weights(tmp_path):
    torch.manual_seed(0)
    source = mobilebert_pt.MobileBertForTokenClassification(tiny_config(num_labels=3, initializer_range=0.5))
    with torch.no_grad():
        source.classifier.bias.fill_(7.0)
    source.save_pretrained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mobilebert_pt.MobileBertForTokenClassification.from_pretrained(
            tmp_path, num_labels=5, ignore_mismatched_sizes=True)
    assert model.classifier.weight.shape == (5, 32) and float(model.classifier.bias.abs().max()) == 0.0
    assert 0.3 < float(model.classifier.weight.std()) < 0.6
    assert torch.equal(model.mobilebert.embeddings.word_embeddings.weight, source.mobilebert.embeddings.word_embeddings.weight)
