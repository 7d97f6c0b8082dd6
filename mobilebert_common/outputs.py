"""Output classes shared by the PyTorch and Keras models.

They hold whatever tensors the framework gives (torch.Tensor, tf.Tensor, numpy) and behave as
MobileBERT users know them: attribute access, ``out[0]``, ``out["logits"]``, ``keys()`` and
``to_tuple()``, where fields that are None are skipped (so ``out[0]`` is the loss when labels
were given and the logits otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Optional, Tuple


class ModelOutput:
    """Base of the output dataclasses: an ordered view over the fields that are not None."""

    def keys(self) -> list:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def values(self) -> list:
        return [getattr(self, k) for k in self.keys()]

    def items(self) -> list:
        return [(k, getattr(self, k)) for k in self.keys()]

    def to_tuple(self) -> Tuple[Any, ...]:
        return tuple(self.values())

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(f"{key!r} is not set in this {type(self).__name__}; set fields: {self.keys()}")
            return getattr(self, key)
        return self.to_tuple()[key]

    def __contains__(self, key) -> bool:
        return key in self.keys()

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def get(self, key, default=None):
        return getattr(self, key) if key in self.keys() else default

    # TensorFlow's nest protocol, duck-typed (nothing imported): tf.function, tf.nest and Keras
    # can return and traverse an output like a structure of tensors, e.g. tf.function(model)(ids).
    def __tf_flatten__(self):
        return tuple(self.keys()), tuple(self.values())

    @classmethod
    def __tf_unflatten__(cls, metadata, components):
        return cls(**dict(zip(metadata, components)))


@dataclass(repr=False)
class _Repr(ModelOutput):
    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={_describe(v)}" for k, v in self.items())
        return f"{type(self).__name__}({shapes})"


def _describe(value) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"<{type(value).__name__} shape={tuple(shape)}>"
    if isinstance(value, tuple):
        return f"<tuple of {len(value)}>"
    return repr(value)


@dataclass(repr=False)
class BaseModelOutputWithPooling(_Repr):
    last_hidden_state: Any = None  # (batch, seq, hidden_size)
    pooler_output: Optional[Any] = None  # (batch, hidden_size); None without a pooler
    hidden_states: Optional[Tuple[Any, ...]] = None  # embeddings + each layer: num_layers + 1 of (batch, seq, hidden)
    attentions: Optional[Tuple[Any, ...]] = None  # each layer: (batch, heads, seq, seq)


@dataclass(repr=False)
class MobileBertForPreTrainingOutput(_Repr):
    loss: Optional[Any] = None  # masked-LM loss + next-sentence loss
    prediction_logits: Any = None  # (batch, seq, vocab_size)
    seq_relationship_logits: Any = None  # (batch, 2)
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@dataclass(repr=False)
class MaskedLMOutput(_Repr):
    loss: Optional[Any] = None
    logits: Any = None  # (batch, seq, vocab_size)
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@dataclass(repr=False)
class NextSentencePredictorOutput(_Repr):
    loss: Optional[Any] = None
    logits: Any = None  # (batch, 2): index 0 = "B follows A"
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@dataclass(repr=False)
class SequenceClassifierOutput(_Repr):
    loss: Optional[Any] = None
    logits: Any = None  # (batch, num_labels)
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@dataclass(repr=False)
class MultipleChoiceModelOutput(_Repr):
    loss: Optional[Any] = None
    logits: Any = None  # (batch, num_choices)
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@dataclass(repr=False)
class TokenClassifierOutput(_Repr):
    loss: Optional[Any] = None
    logits: Any = None  # (batch, seq, num_labels)
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@dataclass(repr=False)
class QuestionAnsweringModelOutput(_Repr):
    loss: Optional[Any] = None  # mean of start and end cross-entropies
    start_logits: Any = None  # (batch, seq)
    end_logits: Any = None  # (batch, seq)
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None
