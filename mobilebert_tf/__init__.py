"""MobileBERT in Keras (tf-keras): the backbone, the eight task models, from_pretrained / save_pretrained."""

from mobilebert_common.config import MobileBertConfig
from mobilebert_tf.modeling import (
    TFMobileBertForMaskedLM,
    TFMobileBertForMultipleChoice,
    TFMobileBertForNextSentencePrediction,
    TFMobileBertForPreTraining,
    TFMobileBertForQuestionAnswering,
    TFMobileBertForSequenceClassification,
    TFMobileBertForTokenClassification,
    TFMobileBertMainLayer,
    TFMobileBertModel,
    TFMobileBertPreTrainedModel,
)
from mobilebert_tf.pretrained import weights_by_name

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
    "train",
    "export_tflite",
]


def __getattr__(name):
    # pipelines.py and finetune.py pull in the tokenizers; load them only when asked for.
    if name == "train":
        from mobilebert_tf.finetune import train

        return train
    if name == "pipeline":
        from mobilebert_tf.pipelines import pipeline

        return pipeline
    if name == "export_tflite":  # export.py pulls in the exporter's tools only when asked for
        from mobilebert_tf.export import export_tflite

        return export_tflite
    raise AttributeError(f"module 'mobilebert_tf' has no attribute {name!r}")
