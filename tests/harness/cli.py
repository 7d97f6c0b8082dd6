"""Shared pieces of the `mobilebert` CLI tests: the subprocess environment, tiny checkpoints, in-process runs."""

from __future__ import annotations

import json
import os

import pytest

from tests.harness import ROOT
from tests.harness.pipelines import VOCAB, config, have_own_tokenizer, write_vocab

needs_tokenizer = pytest.mark.skipif(not have_own_tokenizer(), reason="needs mobilebert_common.tokenization_fast")

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def write_cli_dirs(tmp_path_factory) -> dict:
    """{mlm, qa, ner, cls, nsp, base: directory}: tiny PyTorch checkpoints with the tiny vocabulary."""
    import torch

    from mobilebert_pt import (MobileBertForMaskedLM, MobileBertForNextSentencePrediction, MobileBertForQuestionAnswering,
                               MobileBertForSequenceClassification, MobileBertForTokenClassification, MobileBertModel)

    torch.manual_seed(0)
    mlm = MobileBertForMaskedLM(config()).eval()
    with torch.no_grad():
        mlm.cls.predictions.bias[VOCAB.index("paris")] = 30.0
    qa = MobileBertForQuestionAnswering(config()).eval()
    ner = MobileBertForTokenClassification(config(id2label={0: "O", 1: "B-LOC", 2: "I-LOC"})).eval()
    cls = MobileBertForSequenceClassification(config(id2label={0: "neg", 1: "pos"})).eval()
    nsp = MobileBertForNextSentencePrediction(config()).eval()
    base = MobileBertModel(config()).eval()
    out = {}
    for name, model in (("mlm", mlm), ("qa", qa), ("ner", ner), ("cls", cls), ("nsp", nsp), ("base", base)):
        directory = tmp_path_factory.mktemp(name)
        model.save_pretrained(str(directory))
        write_vocab(directory)
        out[name] = str(directory)
    return out


def in_process(task, directory, inputs, framework="pt", **params):
    """What the pipeline gives in this process, through JSON as the CLI writes it."""
    if framework == "pt":
        from mobilebert_pt import pipeline
    else:
        from mobilebert_tf import pipeline
    return [json.loads(json.dumps(r)) for r in pipeline(task, model=directory, **params)(inputs)]
