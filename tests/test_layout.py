"""The shape both model packages share, checked once for each (the `framework` fixture): modeling.py
reads top to bottom in the same sections with the same classes, and validate_inputs returns a dict of
the checked inputs. What only one package has stays in test_pt_layout.py / test_tf_layout.py.
"""

from __future__ import annotations

import ast

import numpy as np
import pytest

from tests.harness.models import tiny_config

# modeling.py's sections and their classes, in reading order (PyTorch names; Keras adds the TF prefix).
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
# Keras only: the main layer that every model holds as "mobilebert", after the pre-trained base.
KERAS_ONLY = {"the backbone": ["TFMobileBertPreTrainedModel", "TFMobileBertMainLayer", "TFMobileBertModel"]}


def sections(framework) -> dict:
    if framework.name == "pt":
        return SECTIONS
    return {section: KERAS_ONLY.get(section, ["TF" + name for name in names]) for section, names in SECTIONS.items()}


def test_modeling_reads_top_to_bottom(framework):
    modeling, prefix, expected = framework.module("modeling"), framework.prefix, sections(framework)
    source = open(modeling.__file__, encoding="utf-8").read()
    classes = [node.name for node in ast.parse(source).body if isinstance(node, ast.ClassDef)]
    assert classes == [name for names in expected.values() for name in names]
    # Each section comment comes before its classes and after the previous section's.
    lines = source.splitlines()
    where = {}
    for i, line in enumerate(lines):
        text = line.strip("# -").strip()
        if line.startswith("# ---") and text in expected:
            where[text] = i
    assert list(where) == list(expected)
    defined = {name: i for i, line in enumerate(lines) for name in classes if line.startswith(f"class {name}(")}
    bounds = list(where.values()) + [len(lines)]
    for (section, names), start, end in zip(expected.items(), bounds, bounds[1:]):
        assert all(start < defined[name] < end for name in names), section
    assert "ACT2FN" in source[: source.index(f"class {prefix}NoNorm")]
    assert "def make_norm" in source[: source.index(f"class {prefix}MobileBertEmbeddings")]


def test_validate_inputs_returns_the_checked_inputs_as_a_dict(framework):
    inputs = framework.module("inputs")
    INPUT_NAMES, validate_inputs = inputs.INPUT_NAMES, inputs.validate_inputs
    config = tiny_config()
    ids = framework.tensor([[5, 6, 7]])
    mask = framework.tensor(np.ones((1, 3), np.float32))
    checked = validate_inputs(config, {"input_ids": ids, "attention_mask": mask})
    assert list(checked) == list(INPUT_NAMES)
    assert checked["input_ids"] is ids and checked["attention_mask"] is mask
    assert all(checked[name] is None for name in INPUT_NAMES if name not in ("input_ids", "attention_mask"))
    with pytest.raises(ValueError, match=r"unknown input\(s\) \['labels'\]; allowed: input_ids, attention_mask"):
        validate_inputs(config, {"input_ids": ids, "labels": ids})
    with pytest.raises(ValueError, match=r"input_ids must hold ids in \[0, 99\)"):
        validate_inputs(config, {"input_ids": framework.tensor([[99]])})
