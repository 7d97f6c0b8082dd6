"""MobileBertConfig: the hyper-parameters of MobileBERT, read from and written to config.json.

Field names and defaults are those of google/mobilebert-uncased's config.json, so a user's
existing file loads as is and what we write loads in the tools they already have.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Optional

CONFIG_NAME = "config.json"
MODEL_TYPE = "mobilebert"

# Activations both frameworks implement; "gelu" is the exact (erf) form, "gelu_new" the tanh one.
ACTIVATIONS = ("relu", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "silu", "swish", "tanh")
NORMALIZATION_TYPES = ("no_norm", "layer_norm")
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")
MAX_LABELS = 1_000_000  # num_labels alone names every class (LABEL_i): a bound keeps a bad file from exhausting memory

_POSITIVE_INTS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "max_position_embeddings", "type_vocab_size", "embedding_size", "intra_bottleneck_size",
    "num_feedforward_networks",
)
_PROBABILITIES = ("hidden_dropout_prob", "attention_probs_dropout_prob")
_BOOLS = (
    "trigram_input", "use_bottleneck", "use_bottleneck_attention", "key_query_shared_bottleneck",
    "classifier_activation",
)


@dataclass
class MobileBertConfig:
    vocab_size: int = 30522  # WordPiece vocabulary (vocab.txt lines)
    hidden_size: int = 512  # width of the residual stream between layers ("inter-block" size)
    num_hidden_layers: int = 24  # transformer layers
    num_attention_heads: int = 4  # heads per attention, each true_hidden_size // heads wide
    intermediate_size: int = 512  # inner width of every feed-forward network
    hidden_act: str = "relu"  # activation of the FFNs and of the masked-LM transform
    hidden_dropout_prob: float = 0.0  # dropout on residual branches (training only)
    attention_probs_dropout_prob: float = 0.1  # dropout on attention probabilities (training only)
    max_position_embeddings: int = 512  # longest sequence; absolute positions
    type_vocab_size: int = 2  # segment ids (sentence A / B)
    initializer_range: float = 0.02  # std of the truncated-normal initialisation of new weights
    layer_norm_eps: float = 1e-12  # epsilon of every real LayerNorm, in both frameworks
    pad_token_id: int = 0  # id of [PAD]
    embedding_size: int = 128  # width of the word embeddings before embedding_transformation
    trigram_input: bool = True  # concatenate next/current/previous embeddings (3 * embedding_size)
    use_bottleneck: bool = True  # squeeze each layer to intra_bottleneck_size and back
    intra_bottleneck_size: int = 128  # width inside a layer when use_bottleneck
    use_bottleneck_attention: bool = False  # query, key and value all from the input bottleneck
    key_query_shared_bottleneck: bool = True  # query and key from one extra shared bottleneck
    num_feedforward_networks: int = 4  # stacked FFNs per layer (the paper's 4)
    normalization_type: str = "no_norm"  # "no_norm" (x * w + b, the paper's NoNorm) or "layer_norm"
    classifier_activation: bool = True  # pooler = tanh(dense([CLS])) when true, [CLS] itself when false
    classifier_dropout: Optional[float] = None  # dropout before task classifiers; None: hidden_dropout_prob
    num_labels: Optional[int] = None  # classes of a classification head; None: len(id2label) or 2
    id2label: Optional[dict] = None  # {int: label}; string keys in JSON
    label2id: Optional[dict] = None  # {label: int}
    problem_type: Optional[str] = None  # regression / single_label_classification / multi_label_classification
    architectures: Optional[list] = None  # class names the weights were saved from
    model_type: str = MODEL_TYPE
    # Keys of a config.json that this class does not know: kept and written back unchanged.
    extra: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self._settle_labels()
        self.validate()

    # ------------------------------------------------------------------ derived values
    @property
    def true_hidden_size(self) -> int:
        """Width inside a layer: attention and FFNs run at this size."""
        return self.intra_bottleneck_size if self.use_bottleneck else self.hidden_size

    @property
    def head_dim(self) -> int:
        return self.true_hidden_size // self.num_attention_heads

    @property
    def transforms_input(self) -> bool:
        """Whether embedding_transformation runs: with trigram input (3E wide) or when E != H.
        With neither, the word embeddings enter as they are (the layer is still built: the hub's files hold it)."""
        return self.trigram_input or self.embedding_size != self.hidden_size

    @property
    def embedding_input_size(self) -> int:
        """Width that embedding_transformation reads: 3E with the trigram convolution, else E."""
        return self.embedding_size * (3 if self.trigram_input else 1)

    @property
    def query_key_input_size(self) -> int:
        """Width that the query and key projections read.

        The bottlenecked input (true_hidden_size) with a shared q/k bottleneck, with bottleneck attention
        or without a bottleneck; with a bottleneck but neither, the layer input itself (hidden_size).
        (The reference implementation sizes them true_hidden_size there too, and then fails.)
        """
        reads_inner = self.use_bottleneck_attention or self.key_query_shared_bottleneck or not self.use_bottleneck
        return self.true_hidden_size if reads_inner else self.hidden_size

    @property
    def value_input_size(self) -> int:
        """Width that the value projection reads: the input bottleneck with bottleneck attention, else the layer input."""
        return self.true_hidden_size if self.use_bottleneck_attention else self.hidden_size

    @property
    def uses_shared_bottleneck(self) -> bool:
        """Whether the shared query/key bottleneck runs. Built whenever key_query_shared_bottleneck (the hub's
        files hold it), but bottleneck attention feeds query and key from the input bottleneck instead."""
        return self.use_bottleneck and self.key_query_shared_bottleneck and not self.use_bottleneck_attention

    @property
    def mlm_dense_size(self) -> int:
        """Rows of the masked-LM head's extra output matrix: the head projects H = E + (H - E) onto the vocabulary."""
        return self.hidden_size - self.embedding_size

    @property
    def classifier_dropout_prob(self) -> float:
        return self.hidden_dropout_prob if self.classifier_dropout is None else self.classifier_dropout

    def _settle_labels(self):
        """num_labels / id2label / label2id made consistent, as MobileBERT users' tools read them:
        id2label, when given, decides the labels (num_labels follows it); label2id alone gives id2label
        by inversion; num_labels alone gives LABEL_0..LABEL_{n-1}."""
        if self.num_labels is not None:
            _check_int("num_labels", self.num_labels)
        if self.id2label is not None:
            self.id2label = _int_keyed_labels(self.id2label)
        if self.label2id is not None:
            self.label2id = _checked_label2id(self.label2id)
            if self.id2label is None:
                self.id2label = _int_keyed_labels({i: label for label, i in self.label2id.items()}, "label2id values")
        if self.id2label is not None:
            if self.num_labels is not None and self.num_labels != len(self.id2label):
                warnings.warn(
                    f"num_labels={self.num_labels} contradicts id2label, which names {len(self.id2label)} labels; "
                    f"keeping id2label, so num_labels={len(self.id2label)}",
                    UserWarning,
                    stacklevel=4,
                )
            self.num_labels = len(self.id2label)
        else:
            self.num_labels = 2 if self.num_labels is None else self.num_labels
            if self.num_labels > MAX_LABELS:
                raise ValueError(f"num_labels must be at most {MAX_LABELS} (one named class each), got {self.num_labels}")
            self.id2label = {i: f"LABEL_{i}" for i in range(self.num_labels)}
        inverse = {label: i for i, label in self.id2label.items()}
        if self.label2id is None:
            self.label2id = inverse
        elif self.label2id != inverse:
            # Hub configs where only id2label was edited are common: loading them must not fail.
            # Kept as given (it round-trips); predictions are named through id2label.
            warnings.warn(
                f"label2id {self.label2id} contradicts id2label {self.id2label}; predictions use id2label. "
                "Fix label2id (or leave it out to be derived) to silence this.",
                UserWarning,
                stacklevel=4,
            )

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ValueError naming the field and what is allowed."""
        for name in _POSITIVE_INTS + ("num_labels",):
            _check_int(name, getattr(self, name))
        if isinstance(self.pad_token_id, bool) or not isinstance(self.pad_token_id, int):
            raise ValueError(f"pad_token_id must be an integer, got {self.pad_token_id!r}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id must be in [0, vocab_size={self.vocab_size}), got {self.pad_token_id}")
        for name in _PROBABILITIES + ("classifier_dropout",):
            value = getattr(self, name)
            if value is None and name == "classifier_dropout":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r} ({type(value).__name__})")
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        for name in ("initializer_range", "layer_norm_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
            if not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        for name in _BOOLS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported; allowed: {', '.join(ACTIVATIONS)}")
        if self.normalization_type not in NORMALIZATION_TYPES:
            raise ValueError(
                f"normalization_type {self.normalization_type!r} is not supported; allowed: {', '.join(NORMALIZATION_TYPES)}"
            )
        if self.problem_type is not None:
            check_problem_type(self.problem_type)
        if self.architectures is not None and (
            not isinstance(self.architectures, list) or not all(isinstance(a, str) for a in self.architectures)
        ):
            raise ValueError(
                f"architectures must be a list of class names, e.g. [\"MobileBertForMaskedLM\"], got {self.architectures!r}"
            )
        if not isinstance(self.extra, dict):
            raise ValueError(f"extra (the config keys this class does not know) must be a dict, got {type(self.extra).__name__}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})"
            )
        if self.use_bottleneck and self.intra_bottleneck_size % self.num_attention_heads:
            raise ValueError(
                f"intra_bottleneck_size ({self.intra_bottleneck_size}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.embedding_size > self.hidden_size:
            raise ValueError(
                f"embedding_size ({self.embedding_size}) must not exceed hidden_size ({self.hidden_size}): the masked-LM "
                "decoder is [word embeddings (embedding_size) ; extra dense (hidden_size - embedding_size)]"
            )
        if self.model_type != MODEL_TYPE:
            raise ValueError(f"model_type must be {MODEL_TYPE!r}, got {self.model_type!r}")

    # ------------------------------------------------------------------ dict / JSON
    @classmethod
    def from_dict(cls, values: dict, **overrides) -> "MobileBertConfig":
        """A config from config.json's keys; ``overrides`` replace keys. Keys this class does not know,
        whatever their names, go to ``extra`` and are written back unchanged by to_dict."""
        values = dict(values)
        if "num_labels" in overrides and "id2label" not in overrides and "label2id" not in overrides:
            # A new label count replaces the saved labels (a checkpoint fine-tuned anew), as users'
            # tools do when num_labels is passed to from_pretrained.
            saved = values.get("id2label")
            if not isinstance(saved, dict) or len(saved) != overrides["num_labels"]:
                values.pop("id2label", None)
                values.pop("label2id", None)
        values.update(overrides)
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in values.items() if k in known}
        extra = {k: v for k, v in values.items() if k not in known and k != "true_hidden_size"}  # derived, recomputed
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["true_hidden_size"] = self.true_hidden_size
        for key in ("architectures", "problem_type"):
            if out[key] is None:
                del out[key]
        out.update(self.extra)
        return dict(sorted(out.items()))

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "MobileBertConfig":
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no config file at {path}")
        try:
            with open(path, encoding="utf-8") as f:
                values = json.load(f)
        except (ValueError, RecursionError) as err:  # JSON syntax, UTF-8, an integer too long, nesting too deep
            raise ValueError(f"{path} is not a valid JSON config file: {err}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(values).__name__}")
        try:
            return cls.from_dict(values)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: {err}") from None

    def to_json_file(self, path: str | os.PathLike) -> None:
        from mobilebert_common.files import atomic_write_text

        atomic_write_text(os.fspath(path), self.to_json_string())

    # ------------------------------------------------------------------ hub / directories
    @classmethod
    def from_pretrained(cls, dir_or_repo_id: str | os.PathLike, **kwargs) -> "MobileBertConfig":
        """Read config.json from a local directory (or file) or a hub repo id.

        Hub keywords (revision, cache_dir, token, local_files_only) go to the resolver; any other
        keyword overrides a config field, e.g. ``num_labels=3``.
        """
        from mobilebert_common.hub import HUB_KWARGS, resolve_file

        hub_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in HUB_KWARGS}
        source = os.fspath(dir_or_repo_id)
        path = source if os.path.isfile(source) else resolve_file(source, CONFIG_NAME, **hub_kwargs)
        config = cls.from_json_file(path)
        return cls.from_dict(config.to_dict(), **kwargs) if kwargs else config

    def save_pretrained(self, save_directory: str | os.PathLike) -> str:
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(os.fspath(save_directory), CONFIG_NAME)
        self.to_json_file(path)
        return path

    def copy(self, **changes) -> "MobileBertConfig":
        return self.from_dict(self.to_dict(), **changes)


def check_problem_type(problem_type) -> str:
    """The one place that says which problem types exist (config validation and the heads' losses)."""
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"problem_type {problem_type!r} is not supported; allowed: None, {', '.join(PROBLEM_TYPES)}")
    return problem_type


def _check_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < 1:
        what = "at least 1" if name == "num_feedforward_networks" else "a positive integer"
        raise ValueError(f"{name} must be {what}, got {value}")


def _int_keyed_labels(id2label, what: str = "id2label keys") -> dict:
    """{0: label, 1: ...} from int or numeric-string keys (JSON has only string keys); ids 0..n-1."""
    if not isinstance(id2label, dict):
        raise ValueError(f"id2label must be a dict of int -> label, got {type(id2label).__name__}")
    try:
        if any(isinstance(k, (bool, float)) for k in id2label):
            raise TypeError
        labels = {int(k): v for k, v in id2label.items()}
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be integers (or their strings), got {list(id2label)}") from None
    if sorted(labels) != list(range(len(id2label))):
        raise ValueError(f"{what} must be the class ids 0..{len(id2label) - 1}, each once, got {list(id2label)}")
    return dict(sorted(labels.items()))


def _checked_label2id(label2id) -> dict:
    if not isinstance(label2id, dict):
        raise ValueError(f"label2id must be a dict of label -> int, got {type(label2id).__name__}")
    bad = {k: v for k, v in label2id.items() if isinstance(v, bool) or not isinstance(v, int)}
    if bad:
        raise ValueError(f"label2id values must be integer class ids, got {bad}")
    return dict(label2id)
