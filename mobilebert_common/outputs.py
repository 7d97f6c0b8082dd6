"""Output classes shared by the PyTorch and Keras models.

They hold whatever tensors the framework gives (torch.Tensor, tf.Tensor, numpy) and behave as
MobileBERT users know them: attribute access, ``out[0]``, ``out["logits"]``, ``keys()`` and
``to_tuple()``, where fields that are None are skipped (so ``out[0]`` is the loss when labels
were given and the logits otherwise).

Every output is a ``collections.abc.MutableMapping`` over its set fields (nothing of TensorFlow is
imported): TensorFlow's nest (tf.function, Keras, tf.data) flattens and rebuilds it as a mapping
(``type(out)()`` then ``out[key] = value``), and a SavedModel encodes it as a dict, so
``tf.saved_model.save(model)`` and ``model.save(..., save_format="tf")`` can store the signature.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, fields
from typing import Any, Optional, Tuple


class ModelOutput(MutableMapping):
    """Base of the output dataclasses: an ordered mapping over the fields that are not None.

    Integer keys and slices index ``to_tuple()`` (``out[0]``); string keys name fields.
    """

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

    def __setitem__(self, key, value) -> None:
        # TF's nest rebuilds a mapping as type(out)() and then out[key] = value for each key.
        if key not in {f.name for f in fields(self)}:
            raise KeyError(f"{type(self).__name__} has no field {key!r}; fields: {[f.name for f in fields(self)]}")
        setattr(self, key, value)

    def __delitem__(self, key) -> None:
        self[key]  # KeyError when not set
        setattr(self, key, None)

    def __contains__(self, key) -> bool:
        return key in self.keys()

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def get(self, key, default=None):
        return getattr(self, key) if key in self.keys() else default

    # dataclass(eq=True) compares the fields; a mapping of tensors is not hashable (as a dict is not).
    __hash__ = None


def _as_pairs(value):
    """dict(value) when ``value`` is what a dict constructor takes (a mapping, a generator or a list of
    (field name, value) pairs), else None. TensorFlow rebuilds mappings as ``type(out)(pairs)``."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (types.GeneratorType, list)):
        items = list(value)
        if all(isinstance(i, tuple) and len(i) == 2 and isinstance(i[0], str) for i in items):
            return dict(items)
    return None


def _output_class(cls):
    """@dataclass(repr=False), plus a constructor that also takes one mapping / iterable of (name, value)
    pairs, as ``dict(...)`` does: ``MaskedLMOutput(loss, logits)``, ``MaskedLMOutput(logits=x)`` and
    ``MaskedLMOutput([("logits", x)])`` build the same output."""
    cls = dataclass(repr=False)(cls)
    fields_init = cls.__init__

    def __init__(self, *args, **kwargs):
        pairs = _as_pairs(args[0]) if len(args) == 1 and not kwargs else None
        if pairs is not None:
            fields_init(self, **pairs)
        else:
            fields_init(self, *args, **kwargs)

    __init__.__doc__ = fields_init.__doc__
    cls.__init__ = __init__
    return cls


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


@_output_class
class BaseModelOutputWithPooling(_Repr):
    last_hidden_state: Any = None  # (batch, seq, hidden_size)
    pooler_output: Optional[Any] = None  # (batch, hidden_size); None without a pooler
    hidden_states: Optional[Tuple[Any, ...]] = None  # embeddings + each layer: num_layers + 1 of (batch, seq, hidden)
    attentions: Optional[Tuple[Any, ...]] = None  # each layer: (batch, heads, seq, seq)


@_output_class
class MobileBertForPreTrainingOutput(_Repr):
    loss: Optional[Any] = None  # masked-LM loss + next-sentence loss
    prediction_logits: Any = None  # (batch, seq, vocab_size)
    seq_relationship_logits: Any = None  # (batch, 2)
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@_output_class
class MaskedLMOutput(_Repr):
    loss: Optional[Any] = None
    logits: Any = None  # (batch, seq, vocab_size)
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@_output_class
class NextSentencePredictorOutput(_Repr):
    loss: Optional[Any] = None
    logits: Any = None  # (batch, 2): index 0 = "B follows A"
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@_output_class
class SequenceClassifierOutput(_Repr):
    loss: Optional[Any] = None
    logits: Any = None  # (batch, num_labels)
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@_output_class
class MultipleChoiceModelOutput(_Repr):
    loss: Optional[Any] = None
    logits: Any = None  # (batch, num_choices)
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@_output_class
class TokenClassifierOutput(_Repr):
    loss: Optional[Any] = None
    logits: Any = None  # (batch, seq, num_labels)
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@_output_class
class QuestionAnsweringModelOutput(_Repr):
    loss: Optional[Any] = None  # mean of start and end cross-entropies
    start_logits: Any = None  # (batch, seq)
    end_logits: Any = None  # (batch, seq)
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None
