"""The pipeline tasks, shared by the PyTorch and Keras pipelines: names, aliases, lookup.

Pre- and post-processing of each task work on numpy arrays and live in
sentence_tasks.py (fill-mask, text-classification, next-sentence-prediction, feature-extraction),
token_classification.py (token-classification) and question_answering.py (question-answering).
"""

from __future__ import annotations

from mobilebert_common.pipelines.task import Task
from mobilebert_common.pipelines.token_classification import TokenClassification
from mobilebert_common.pipelines.question_answering import QuestionAnswering
from mobilebert_common.pipelines.sentence_tasks import FeatureExtraction, FillMask, NextSentencePrediction, TextClassification

TASKS = {
    t.name: t
    for t in (FillMask, TextClassification, TokenClassification, QuestionAnswering, NextSentencePrediction, FeatureExtraction)
}
ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}

# The head class each task loads, by framework (the TF names carry a "TF" prefix).
HEAD_CLASSES = {
    "fill-mask": "MobileBertForMaskedLM",
    "text-classification": "MobileBertForSequenceClassification",
    "token-classification": "MobileBertForTokenClassification",
    "question-answering": "MobileBertForQuestionAnswering",
    "next-sentence-prediction": "MobileBertForNextSentencePrediction",
    "feature-extraction": "MobileBertModel",
}

# Model classes a task accepts as a model object: its own head, or one that carries the same output.
ACCEPTED_CLASSES = {
    "fill-mask": ("MobileBertForMaskedLM", "MobileBertForPreTraining"),
    "text-classification": ("MobileBertForSequenceClassification",),
    "token-classification": ("MobileBertForTokenClassification",),
    "question-answering": ("MobileBertForQuestionAnswering",),
    "next-sentence-prediction": ("MobileBertForNextSentencePrediction", "MobileBertForPreTraining"),
    # Any model: the backbone's last hidden state.
    "feature-extraction": ("MobileBertModel", "MobileBertPreTrainedModel"),
}


def task_names() -> list:
    return sorted(TASKS) + sorted(ALIASES)


def normalize_task(name) -> str:
    if not isinstance(name, str):
        raise ValueError(f"task must be a string, one of: {', '.join(task_names())}; got {name!r}")
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")
    return key


def get_task(name) -> Task:
    return TASKS[normalize_task(name)]()
