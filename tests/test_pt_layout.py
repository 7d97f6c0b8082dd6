"""The PyTorch package's shape: a generic loading base that knows no MobileBERT class, widths read
from the config's derived facts, and save_pretrained returning the paths written. What both packages
share (modeling.py read top to bottom, validate_inputs returning a dict) is in test_layout.py.
"""

from __future__ import annotations

import importlib
import os

import pytest

import mobilebert_pt
from mobilebert_pt import modeling, pretrained
from tests.harness.models import VARIANTS, tiny_config
from tests.harness.imports import import_graph

def test_the_loading_base_knows_no_model_class():
    graph = import_graph()
    assert not any(m.startswith("mobilebert_pt.modeling") for m in graph["mobilebert_pt.pretrained"])
    assert not any("MobileBert" in name for name in vars(pretrained))
    assert issubclass(modeling.MobileBertPreTrainedModel, pretrained.PreTrainedModel)
    assert mobilebert_pt.MobileBertForMaskedLM is modeling.MobileBertForMaskedLM


@pytest.mark.parametrize("old", ["backbone", "heads", "initialization", "saving"])
def test_merged_modules_are_gone_and_nothing_redirects(old):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"mobilebert_pt.{old}")
    assert not hasattr(modeling, "__getattr__") and not hasattr(modeling, "_MOVED")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_widths_come_from_the_config(variant):
    config = tiny_config(variant)
    model = modeling.MobileBertForPreTraining(config)
    embeddings, layer = model.mobilebert.embeddings, model.mobilebert.encoder.layer[0]
    assert embeddings.embedding_transformation.in_features == config.embedding_input_size
    assert embeddings.transforms_input == config.transforms_input
    attention = layer.attention.self
    assert attention.query.in_features == attention.key.in_features == config.query_key_input_size
    assert attention.value.in_features == config.value_input_size
    assert model.cls.predictions.dense.weight.shape == (config.mlm_dense_size, config.vocab_size)
    if config.use_bottleneck:
        assert layer.bottleneck.uses_shared_bottleneck == config.uses_shared_bottleneck
        ran = []
        if hasattr(layer.bottleneck, "attention"):
            layer.bottleneck.attention.register_forward_hook(lambda *args: ran.append(1))
        model.mobilebert(input_ids=[[1, 2, 3]])
        assert bool(ran) == config.uses_shared_bottleneck


def test_save_pretrained_returns_the_paths_it_wrote(tmp_path):
    model = modeling.MobileBertForMaskedLM(tiny_config())
    single = model.save_pretrained(tmp_path / "single")
    assert single == [str(tmp_path / "single" / "model.safetensors"), str(tmp_path / "single" / "config.json")]
    pickled = model.save_pretrained(tmp_path / "bin", safe_serialization=False)
    assert [os.path.basename(p) for p in pickled] == ["pytorch_model.bin", "config.json"]
    sharded = model.save_pretrained(tmp_path / "sharded", max_shard_size=20_000)
    names = [os.path.basename(p) for p in sharded]
    assert names[-2:] == ["model.safetensors.index.json", "config.json"] and len(names) > 4
    assert sorted(names) == sorted(os.listdir(tmp_path / "sharded"))  # every file written, and only those
    assert all(os.path.isfile(p) for p in single + pickled + sharded)
