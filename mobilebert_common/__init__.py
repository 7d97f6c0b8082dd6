"""Framework-free core of the MobileBERT suite: config, tokenizers, outputs, file resolution.

Imports neither torch nor tensorflow.
"""

from mobilebert_common.config import MobileBertConfig
from mobilebert_common.outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    MobileBertForPreTrainingOutput,
    ModelOutput,
    MultipleChoiceModelOutput,
    NextSentencePredictorOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

__all__ = [
    "MobileBertConfig",
    "MobileBertTokenizer",
    "MobileBertTokenizerFast",
    "ModelOutput",
    "BaseModelOutputWithPooling",
    "MobileBertForPreTrainingOutput",
    "MaskedLMOutput",
    "NextSentencePredictorOutput",
    "SequenceClassifierOutput",
    "MultipleChoiceModelOutput",
    "TokenClassifierOutput",
    "QuestionAnsweringModelOutput",
]


def __getattr__(name):
    # The tokenizers load lazily: the fast one needs the `tokenizers` library.
    if name == "MobileBertTokenizer":
        from mobilebert_common.tokenization import MobileBertTokenizer

        return MobileBertTokenizer
    if name == "MobileBertTokenizerFast":
        from mobilebert_common.tokenization_fast import MobileBertTokenizerFast

        return MobileBertTokenizerFast
    raise AttributeError(f"module 'mobilebert_common' has no attribute {name!r}")
