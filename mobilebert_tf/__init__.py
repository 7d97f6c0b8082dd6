"""MobileBERT in Keras (tf-keras): the backbone, the eight task models, from_pretrained / save_pretrained."""

from mobilebert_common.config import MobileBertConfig
from mobilebert_tf.heads import (
    TFMobileBertForMaskedLM,
    TFMobileBertForMultipleChoice,
    TFMobileBertForNextSentencePrediction,
    TFMobileBertForPreTraining,
    TFMobileBertForQuestionAnswering,
    TFMobileBertForSequenceClassification,
    TFMobileBertForTokenClassification,
)
from mobilebert_tf.backbone import TFMobileBertMainLayer, TFMobileBertModel
from mobilebert_tf.pretrained import TFMobileBertPreTrainedModel, weights_by_name

__all__ = [
    "MobileBertConfig",
    "TFMobileBertPreTrainedModel",
    "TFMobileBertMainLayer",
    "TFMobileBertModel",
    "TFMobileBertForPreTraining",
    "TFMobileBertForMaskedLM",
    "TFMobileBertForNextSentencePrediction",
    "TFMobileBertForSequenceClassification",
    "TFMobileBertForMultipleChoice",
    "TFMobileBertForTokenClassification",
    "TFMobileBertForQuestionAnswering",
    "weights_by_name",
    "pipeline",
]


def __getattr__(name):
    # pipelines.py pulls in the tokenizers; load it only when asked for.
    if name == "pipeline":
        from mobilebert_tf.pipelines import pipeline

        return pipeline
    raise AttributeError(f"module 'mobilebert_tf' has no attribute {name!r}")
