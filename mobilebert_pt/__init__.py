"""MobileBERT in PyTorch: the backbone, the eight task models, from_pretrained / save_pretrained."""

from mobilebert_common.config import MobileBertConfig
from mobilebert_pt.modeling import (
    MobileBertForMaskedLM,
    MobileBertForMultipleChoice,
    MobileBertForNextSentencePrediction,
    MobileBertForPreTraining,
    MobileBertForQuestionAnswering,
    MobileBertForSequenceClassification,
    MobileBertForTokenClassification,
    MobileBertModel,
    MobileBertPreTrainedModel,
)
from mobilebert_pt.quantization import quantize_dynamic

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
    "train",
    "export_onnx",
    "quantize_dynamic",
]


def __getattr__(name):
    # pipelines.py and finetune.py pull in the tokenizers; load them only when asked for.
    if name == "train":
        from mobilebert_pt.finetune import train

        return train
    if name == "pipeline":
        from mobilebert_pt.pipelines import pipeline

        return pipeline
    if name == "export_onnx":  # export.py pulls in the exporter's tools only when asked for
        from mobilebert_pt.export import export_onnx

        return export_onnx
    raise AttributeError(f"module 'mobilebert_pt' has no attribute {name!r}")
