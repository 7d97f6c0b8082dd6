"""MobileBERT in PyTorch: the backbone, the eight task models, from_pretrained / save_pretrained."""

from mobilebert_common.config import MobileBertConfig
from mobilebert_pt.heads import (
    MobileBertForMaskedLM,
    MobileBertForMultipleChoice,
    MobileBertForNextSentencePrediction,
    MobileBertForPreTraining,
    MobileBertForQuestionAnswering,
    MobileBertForSequenceClassification,
    MobileBertForTokenClassification,
)
from mobilebert_pt.backbone import MobileBertModel
from mobilebert_pt.pretrained import MobileBertPreTrainedModel

__all__ = [
    "MobileBertConfig",
    "MobileBertPreTrainedModel",
    "MobileBertModel",
    "MobileBertForPreTraining",
    "MobileBertForMaskedLM",
    "MobileBertForNextSentencePrediction",
    "MobileBertForSequenceClassification",
    "MobileBertForMultipleChoice",
    "MobileBertForTokenClassification",
    "MobileBertForQuestionAnswering",
    "pipeline",
]


def __getattr__(name):
    # pipelines.py pulls in the tokenizers; load it only when asked for.
    if name == "pipeline":
        from mobilebert_pt.pipelines import pipeline

        return pipeline
    raise AttributeError(f"module 'mobilebert_pt' has no attribute {name!r}")
