"""The PyTorch package's shape: one model file that reads top to bottom, a generic loading base that
knows no MobileBERT class, widths read from the config's derived facts, and the return kinds shared
with Keras (validate_inputs: a dict of the checked inputs; save_pretrained: the paths written).
"""

from __future__ import annotations

import ast
import importlib
import os

import pytest
import torch

import mobilebert_pt
from mobilebert_pt import modeling, pretrained
from mobilebert_pt.inputs import INPUT_NAMES, validate_inputs
from tests.helpers import VARIANTS, tiny_config
from tests.test_import_graph import import_graph

# modeling.py's sections and their classes, in reading order.
SECTIONS = {
    "activations and norms": ["NoNorm"],
    "embeddings": ["MobileBertEmbeddings"],
    "attention": ["MobileBertSelfAttention", "MobileBertSelfOutput", "MobileBertAttention"],
    "bottleneck": ["BottleneckLayer", "Bottleneck", "OutputBottleneck"],
    "feed-forward networks": ["MobileBertIntermediate", "FFNOutput", "FFNLayer", "MobileBertOutput"],
    "layer and encoder": ["MobileBertLayer", "MobileBertEncoder", "MobileBertPooler"],
    "the backbone": ["MobileBertPreTrainedModel", "MobileBertModel"],
    "heads": ["MobileBertPredictionHeadTransform", "MobileBertLMPredictionHead", "MobileBertOnlyMLMHead",
              "MobileBertPreTrainingHeads", "MobileBertOnlyNSPHead"],
    "task models": ["MobileBertForPreTraining", "MobileBertForMaskedLM", "MobileBertForNextSentencePrediction",
                    "MobileBertForSequenceClassification", "MobileBertForMultipleChoice",
                    "MobileBertForTokenClassification", "MobileBertForQuestionAnswering"],
}


def test_modeling_reads_top_to_bottom():
    source = open(modeling.__file__, encoding="utf-8").read()
    classes = [node.name for node in ast.parse(source).body if isinstance(node, ast.ClassDef)]
    assert classes == [name for names in SECTIONS.values() for name in names]
    # Each section comment comes before its classes and after the previous section's.
    lines = source.splitlines()
    where = {}
    for i, line in enumerate(lines):
        text = line.strip("# -").strip()
        if line.startswith("# ---") and text in SECTIONS:
            where[text] = i
    assert list(where) == list(SECTIONS)
    defined = {name: i for i, line in enumerate(lines) for name in classes if line.startswith(f"class {name}(")}
    bounds = list(where.values()) + [len(lines)]
    for (section, names), start, end in zip(SECTIONS.items(), bounds, bounds[1:]):
        assert all(start < defined[name] < end for name in names), section
    assert "ACT2FN" in source[: source.index("class NoNorm")] and "def make_norm" in source[: source.index("class MobileBertEmbeddings")]


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


def test_validate_inputs_returns_the_checked_inputs_as_a_dict():
    config = tiny_config()
    ids = torch.tensor([[5, 6, 7]])
    mask = torch.ones(1, 3)
    checked = validate_inputs(config, {"input_ids": ids, "attention_mask": mask})
    assert list(checked) == list(INPUT_NAMES)
    assert checked["input_ids"] is ids and checked["attention_mask"] is mask
    assert all(checked[name] is None for name in INPUT_NAMES if name not in ("input_ids", "attention_mask"))
    with pytest.raises(ValueError, match=r"unknown input\(s\) \['labels'\]; allowed: input_ids, attention_mask"):
        validate_inputs(config, {"input_ids": ids, "labels": ids})
    with pytest.raises(ValueError, match=r"input_ids must hold ids in \[0, 99\)"):
        validate_inputs(config, {"input_ids": torch.tensor([[99]])})


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
