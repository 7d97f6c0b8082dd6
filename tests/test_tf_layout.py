"""The Keras package's shape, as the PyTorch one's (test_pt_layout.py): one model file that reads top to
bottom, a generic loading base that knows no MobileBERT class (serving and training, its Keras-only
mixins, neither), widths read from the config's derived facts, and the return kinds shared with PyTorch
(validate_inputs: a dict of the checked inputs; save_pretrained: the paths written).
"""

from __future__ import annotations

import ast
import importlib
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import mobilebert_tf  # noqa: E402
from mobilebert_tf import modeling, pretrained  # noqa: E402
from mobilebert_tf.inputs import INPUT_NAMES, validate_inputs  # noqa: E402
from tests.helpers import VARIANTS, tiny_config  # noqa: E402
from tests.test_import_graph import import_graph  # noqa: E402

# modeling.py's sections and their classes, in reading order (test_pt_layout.py's, with the TF prefix,
# and the Keras main layer that every model holds as "mobilebert").
SECTIONS = {
    "activations and norms": ["TFNoNorm"],
    "embeddings": ["TFMobileBertEmbeddings"],
    "attention": ["TFMobileBertSelfAttention", "TFMobileBertSelfOutput", "TFMobileBertAttention"],
    "bottleneck": ["TFBottleneckLayer", "TFBottleneck", "TFOutputBottleneck"],
    "feed-forward networks": ["TFMobileBertIntermediate", "TFFFNOutput", "TFFFNLayer", "TFMobileBertOutput"],
    "layer and encoder": ["TFMobileBertLayer", "TFMobileBertEncoder", "TFMobileBertPooler"],
    "the backbone": ["TFMobileBertPreTrainedModel", "TFMobileBertMainLayer", "TFMobileBertModel"],
    "heads": ["TFMobileBertPredictionHeadTransform", "TFMobileBertLMPredictionHead", "TFMobileBertOnlyMLMHead",
              "TFMobileBertPreTrainingHeads", "TFMobileBertOnlyNSPHead"],
    "task models": ["TFMobileBertForPreTraining", "TFMobileBertForMaskedLM", "TFMobileBertForNextSentencePrediction",
                    "TFMobileBertForSequenceClassification", "TFMobileBertForMultipleChoice",
                    "TFMobileBertForTokenClassification", "TFMobileBertForQuestionAnswering"],
}


def test_modeling_reads_top_to_bottom():
    source = open(modeling.__file__, encoding="utf-8").read()
    classes = [node.name for node in ast.parse(source).body if isinstance(node, ast.ClassDef)]
    assert classes == [name for names in SECTIONS.values() for name in names]
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
    assert "ACT2FN" in source[: source.index("class TFNoNorm")] and "def make_norm" in source[: source.index("class TFMobileBertEmbeddings")]


def test_the_loading_base_and_the_keras_mixins_know_no_model_class():
    graph = import_graph()
    for module in ("mobilebert_tf.pretrained", "mobilebert_tf.serving", "mobilebert_tf.training",
                   "mobilebert_tf.checkpoints", "mobilebert_tf.inputs", "mobilebert_tf.losses"):
        assert "mobilebert_tf.modeling" not in graph[module], module
    assert not any("MobileBert" in name for name in vars(pretrained))
    assert issubclass(modeling.TFMobileBertPreTrainedModel, pretrained.TFPreTrainedModel)
    assert mobilebert_tf.TFMobileBertForMaskedLM is modeling.TFMobileBertForMaskedLM


@pytest.mark.parametrize("old", ["backbone", "heads"])
def test_merged_modules_are_gone_and_nothing_redirects(old):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"mobilebert_tf.{old}")
    assert not hasattr(modeling, "__getattr__")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_widths_come_from_the_config(variant):
    config = tiny_config(variant)
    model = modeling.TFMobileBertForPreTraining(config)
    model.build_with_dummies()
    embeddings, layer = model.mobilebert.embeddings, model.mobilebert.encoder.layer[0]
    assert embeddings.embedding_transformation.kernel.shape[0] == config.embedding_input_size
    attention = layer.attention.self
    assert attention.query.kernel.shape[0] == attention.key.kernel.shape[0] == config.query_key_input_size
    assert attention.value.kernel.shape[0] == config.value_input_size
    assert tuple(model.cls.predictions.dense.shape) == (config.mlm_dense_size, config.vocab_size)
    if config.use_bottleneck:
        assert layer.bottleneck.uses_shared_bottleneck == config.uses_shared_bottleneck
    if config.key_query_shared_bottleneck:
        # The shared bottleneck changes the output exactly when config.uses_shared_bottleneck says it runs.
        ids = np.array([[1, 2, 3, 4]])
        before = model.mobilebert(input_ids=ids).last_hidden_state.numpy()
        kernel = layer.bottleneck.attention.dense.kernel
        kernel.assign(kernel + 1.0)
        after = model.mobilebert(input_ids=ids).last_hidden_state.numpy()
        assert (not np.array_equal(before, after)) == config.uses_shared_bottleneck
    ids = np.array([[1, 2, 3, 4]])
    transformation = embeddings.embedding_transformation.kernel
    before = model.mobilebert(input_ids=ids).last_hidden_state.numpy()
    transformation.assign(transformation + 1.0)
    after = model.mobilebert(input_ids=ids).last_hidden_state.numpy()
    assert (not np.array_equal(before, after)) == config.transforms_input


def test_validate_inputs_returns_the_checked_inputs_as_a_dict():
    config = tiny_config()
    ids = tf.constant([[5, 6, 7]])
    mask = tf.ones([1, 3])
    checked = validate_inputs(config, {"input_ids": ids, "attention_mask": mask})
    assert list(checked) == list(INPUT_NAMES)
    assert checked["input_ids"] is ids and checked["attention_mask"] is mask
    assert all(checked[name] is None for name in INPUT_NAMES if name not in ("input_ids", "attention_mask"))
    with pytest.raises(ValueError, match=r"unknown input\(s\) \['labels'\]; allowed: input_ids, attention_mask"):
        validate_inputs(config, {"input_ids": ids, "labels": ids})
    with pytest.raises(ValueError, match=r"input_ids must hold ids in \[0, 99\)"):
        validate_inputs(config, {"input_ids": tf.constant([[99]])})


def test_save_pretrained_returns_the_paths_it_wrote(tmp_path):
    model = modeling.TFMobileBertForMaskedLM(tiny_config())
    paths = model.save_pretrained(tmp_path)
    assert paths == [str(tmp_path / "tf_model.h5"), str(tmp_path / "config.json")]  # config.json last, as in PyTorch
    assert sorted(os.path.basename(p) for p in paths) == sorted(os.listdir(tmp_path))
