"""MobileBertConfig: the hyper-parameters of MobileBERT, read from and written to config.json.

Field names and defaults are those of google/mobilebert-uncased's config.json, so a user's
existing file loads as is and what we write loads in the tools they already have. The options that
every transformers PretrainedConfig takes are accepted too, with transformers 4.57.6's defaults and
meaning, and config.json holds what transformers' ``save_pretrained`` writes: every MobileBERT key,
and the PretrainedConfig keys that differ from their defaults.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Optional

from mobilebert_common.devices import DTYPES, dtype_name

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


# transformers' PretrainedConfig options that no MobileBERT computation reads, with their defaults: carried in
# `extra` (where given and not at the default), read as attributes, written to config.json like unknown keys.
CARRIED = {
    "dtype": None, "chunk_size_feed_forward": 0, "finetuning_task": None, "task_specific_params": None,
    "tokenizer_class": None, "prefix": None, "bos_token_id": None, "eos_token_id": None, "sep_token_id": None,
    "decoder_start_token_id": None, "transformers_version": None, "tf_legacy_loss": False, "use_bfloat16": False,
    # encoder-decoder options: only their defaults are allowed (see _check_encoder_only)
    "is_decoder": False, "add_cross_attention": False, "is_encoder_decoder": False, "tie_encoder_decoder": False,
    "cross_attention_hidden_size": None,
}
ENCODER_DECODER_OPTIONS = ("is_decoder", "add_cross_attention", "is_encoder_decoder", "tie_encoder_decoder",
                           "cross_attention_hidden_size")
# PretrainedConfig fields left out of config.json at these values (the defaults), as transformers' use_diff does.
_DIFF_DEFAULTS = {
    "output_hidden_states": False, "output_attentions": False, "return_dict": True, "torchscript": False,
    "tie_word_embeddings": True, "pruned_heads": {}, "architectures": None, "problem_type": None,
    "id2label": {0: "LABEL_0", 1: "LABEL_1"}, "label2id": {"LABEL_0": 0, "LABEL_1": 1},
}
# Other spellings of a key, as transformers reads them: torch_dtype is the old name of dtype; JSON names the path _name_or_path.
_ALIASES = {"torch_dtype": "dtype", "_name_or_path": "name_or_path"}
# Accepted and dropped, as transformers does: a choice of attention kernel, not part of the model.
_DROPPED = ("attn_implementation", "_attn_implementation", "_commit_hash", "true_hidden_size")


@dataclass
class _ConfigFields:
    """The fields of MobileBertConfig, declared once (MobileBertConfig adds the constructor that takes any key)."""

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
    # transformers' PretrainedConfig options the models act on (transformers' defaults):
    output_hidden_states: bool = False  # models' default for output_hidden_states=None
    output_attentions: bool = False  # models' default for output_attentions=None
    return_dict: bool = True  # models' default for return_dict=None: output objects, else tuples
    torchscript: bool = False  # True: tuples whatever return_dict says (use_return_dict), as in transformers
    tie_word_embeddings: bool = True  # masked-LM decoder shares the word embeddings
    pruned_heads: dict = field(default_factory=dict)  # {layer: [heads]}; only {} (no pruning) is supported
    name_or_path: str = ""  # where the model was loaded from; not written to config.json
    # Keys of a config.json that this class does not know, and the CARRIED options given: kept and written back.
    extra: dict = field(default_factory=dict, repr=False)


class MobileBertConfig(_ConfigFields):
    """MobileBERT's hyper-parameters. Takes every field by keyword (or position, in field order) and, as
    transformers' configs do, any other keyword: those are kept in ``extra``, read back as attributes
    (``config.my_key``) and written to config.json."""

    def __init__(self, *args, extra: Optional[dict] = None, **kwargs):
        if extra is not None and not isinstance(extra, dict):
            raise ValueError(f"extra (the config keys this class does not know) must be a dict, got {type(extra).__name__}")
        values = _resolve_aliases({**(extra or {}), **kwargs})
        fields = {k: v for k, v in values.items() if k in _FIELD_NAMES}
        super().__init__(*args, extra={k: v for k, v in values.items() if k not in _FIELD_NAMES}, **fields)
        self._settle_extra()
        self._settle_labels()
        self.validate()
        self.__dict__["_ready"] = True  # from here on, attribute writes follow transformers' setters

    # ------------------------------------------------------------------ transformers' attribute behaviour
    def __getattr__(self, name):
        """Keys kept in ``extra`` and the CARRIED options read as attributes (only reached when normal lookup fails)."""
        extra = self.__dict__.get("extra")
        if extra is not None and not name.startswith("__"):
            if name in extra:
                return extra[name]
            if name in CARRIED:
                return CARRIED[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        if not self.__dict__.get("_ready") or name.startswith("_"):
            return super().__setattr__(name, value)
        name = _ALIASES.get(name, name)
        if name == "num_labels":
            # as transformers: a new count replaces the labels with LABEL_0..LABEL_{n-1}
            _check_int("num_labels", value)
            if value != self.num_labels:
                if value > MAX_LABELS:
                    raise ValueError(f"num_labels must be at most {MAX_LABELS} (one named class each), got {value}")
                self.__dict__["id2label"] = {i: f"LABEL_{i}" for i in range(value)}
                self.__dict__["label2id"] = {f"LABEL_{i}": i for i in range(value)}
            return super().__setattr__(name, value)
        if name == "id2label":
            value = _int_keyed_labels(value)
            super().__setattr__("num_labels", len(value))  # num_labels follows id2label, as transformers' property does
            return super().__setattr__(name, value)
        if name in _FIELD_NAMES or isinstance(getattr(type(self), name, None), property):
            return super().__setattr__(name, value)
        # any other name is a config key, as in transformers: kept in extra and written to config.json
        self.extra[name] = _checked_carried(name, value)
        if name in CARRIED and self.extra[name] == CARRIED[name]:
            del self.extra[name]

    @property
    def torch_dtype(self):
        """transformers' older name of ``dtype`` (a name: "float32", "float16", "bfloat16", or None)."""
        return self.dtype

    @property
    def use_return_dict(self) -> bool:
        """Whether models return output objects: return_dict, unless torchscript asks for tuples (as transformers)."""
        return self.return_dict and not self.torchscript

    def _settle_extra(self):
        """Dropped keys removed, CARRIED options checked and left out at their defaults."""
        extra = self.extra
        for key in _DROPPED:
            extra.pop(key, None)
        self.name_or_path = "" if self.name_or_path is None else os.fspath(self.name_or_path)
        for key in list(extra):
            extra[key] = _checked_carried(key, extra[key])
            if key in CARRIED and extra[key] == CARRIED[key]:
                del extra[key]

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
        if self.true_hidden_size % self.num_attention_heads:
            # Attention runs at true_hidden_size: the bottleneck width with use_bottleneck, else hidden_size.
            # (hidden_size itself need not divide when the bottleneck is on: no projection splits it into heads.)
            name = "intra_bottleneck_size" if self.use_bottleneck else "hidden_size"
            raise ValueError(
                f"{name} ({self.true_hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads}): "
                f"attention runs at {name}{' (use_bottleneck=True)' if self.use_bottleneck else ''}, split into heads"
            )
        if self.embedding_size > self.hidden_size:
            raise ValueError(
                f"embedding_size ({self.embedding_size}) must not exceed hidden_size ({self.hidden_size}): the masked-LM "
                "decoder is [word embeddings (embedding_size) ; extra dense (hidden_size - embedding_size)]"
            )
        if self.model_type != MODEL_TYPE:
            raise ValueError(f"model_type must be {MODEL_TYPE!r}, got {self.model_type!r}")
        for name in ("output_hidden_states", "output_attentions", "return_dict", "torchscript", "tie_word_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        self.pruned_heads = _checked_pruned_heads(self.pruned_heads)
        if not isinstance(self.name_or_path, str):
            raise ValueError(f"name_or_path must be a str, got {self.name_or_path!r}")

    # ------------------------------------------------------------------ dict / JSON
    @classmethod
    def from_dict(cls, values: dict, return_unused_kwargs: bool = False, **overrides):
        """A config from config.json's keys; ``overrides`` replace keys. Keys this class does not know,
        whatever their names, go to ``extra`` and are written back unchanged.

        With ``return_unused_kwargs=True`` (as transformers): (config, the overrides that name no config
        attribute), and those are not applied."""
        values, overrides = _resolve_aliases(values), _resolve_aliases(overrides)
        unused = {}
        if return_unused_kwargs:
            known = _FIELD_NAMES | set(CARRIED) | set(_ALIASES) | set(values)
            unused = {k: overrides.pop(k) for k in list(overrides) if k not in known}
        if "num_labels" in overrides and "id2label" not in overrides and "label2id" not in overrides:
            # A new label count replaces the saved labels (a checkpoint fine-tuned anew), as users'
            # tools do when num_labels is passed to from_pretrained.
            saved = values.get("id2label")
            if not isinstance(saved, dict) or len(saved) != overrides["num_labels"]:
                values.pop("id2label", None)
                values.pop("label2id", None)
        values.update(overrides)
        fields = {k: v for k, v in values.items() if k in _FIELD_NAMES}
        config = cls(**fields, extra={k: v for k, v in values.items() if k not in _FIELD_NAMES})
        return (config, unused) if return_unused_kwargs else config

    def to_dict(self) -> dict:
        """Every setting, as transformers' to_dict gives it: the fields, the CARRIED options (defaults included),
        the keys in extra, the derived true_hidden_size; JSON's string keys for id2label."""
        out = {**CARRIED, **{name: getattr(self, name) for name in _FIELD_NAMES if name not in ("num_labels", "name_or_path")}}
        out["_name_or_path"] = self.name_or_path
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["true_hidden_size"] = self.true_hidden_size
        out.update(self.extra)
        return copy.deepcopy(dict(sorted(out.items())))

    def to_diff_dict(self) -> dict:
        """What config.json holds, as transformers' save_pretrained writes it: every MobileBERT key, the
        PretrainedConfig options that differ from their defaults, the keys in extra; not name_or_path."""
        out = self.to_dict()
        del out["_name_or_path"]
        for key in CARRIED:
            if key not in self.extra:
                del out[key]
        for key, default in _DIFF_DEFAULTS.items():
            if getattr(self, key) == default:
                del out[key]
        if "id2label" in out and "label2id" not in out:
            out["label2id"] = dict(self.label2id)  # the labels are written together, so a contradiction round-trips
        return out

    def to_json_string(self, use_diff: bool = True) -> str:
        """config.json's text: to_diff_dict (use_diff=True, what save_pretrained writes) or to_dict."""
        return json.dumps(self.to_diff_dict() if use_diff else self.to_dict(), indent=2, sort_keys=True) + "\n"

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

    def to_json_file(self, path: str | os.PathLike, use_diff: bool = True) -> None:
        from mobilebert_common.files import atomic_write_text

        atomic_write_text(os.fspath(path), self.to_json_string(use_diff))

    # ------------------------------------------------------------------ hub / directories
    @classmethod
    def from_pretrained(cls, dir_or_repo_id: str | os.PathLike, **kwargs):
        """Read config.json from a local directory (or file) or a hub repo id.

        Hub keywords (revision, cache_dir, token, local_files_only, force_download) go to the resolver; any
        other keyword overrides a config key, e.g. ``num_labels=3`` or ``output_attentions=True``. With
        ``return_unused_kwargs=True``: (config, the keywords that name no config attribute), as transformers.
        """
        from mobilebert_common.hub import HUB_KWARGS, resolve_file

        hub_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in HUB_KWARGS}
        for key in ("_from_auto", "_from_pipeline"):  # transformers' telemetry flags
            kwargs.pop(key, None)
        source = os.fspath(dir_or_repo_id)
        path = source if os.path.isfile(source) else resolve_file(source, CONFIG_NAME, **hub_kwargs)
        config = cls.from_json_file(path)
        if not kwargs:
            return config
        return cls.from_dict(config.to_dict(), **kwargs)

    def save_pretrained(self, save_directory: str | os.PathLike) -> str:
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(os.fspath(save_directory), CONFIG_NAME)
        self.to_json_file(path)
        return path

    def copy(self, **changes) -> "MobileBertConfig":
        return self.from_dict(self.to_dict(), **changes)


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(_ConfigFields)) - {"extra"}
# help() and IDEs show the fields, as the dataclass constructor names them, and that any other key is taken.
MobileBertConfig.__init__.__signature__ = inspect.signature(_ConfigFields.__init__).replace(
    parameters=[*inspect.signature(_ConfigFields.__init__).parameters.values(),
                inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)]
)


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


def _resolve_aliases(values: dict) -> dict:
    """torch_dtype -> dtype, _name_or_path -> name_or_path (a copy). Where both are given the key itself wins
    unless it is empty, as transformers reads them."""
    values = dict(values)
    for alias, key in _ALIASES.items():
        if alias in values:
            value = values.pop(alias)
            if values.get(key) in (None, ""):
                values[key] = value
    return values


def _checked_pruned_heads(pruned_heads) -> dict:
    """{} only: the models keep every head. transformers' MobileBERT prunes the heads named here at build time."""
    if not isinstance(pruned_heads, dict):
        raise ValueError(f"pruned_heads must be a dict {{layer: [heads]}}, got {pruned_heads!r}")
    if pruned_heads:
        raise ValueError(
            f"pruned_heads={pruned_heads!r} is not supported: this suite's models keep every attention head "
            "(transformers' MobileBERT removes the named heads' weights); use pruned_heads={} and a checkpoint with all heads"
        )
    return {}


def _checked_carried(key: str, value):
    """A CARRIED option's value checked (dtype names made canonical); any other key's value as it is."""
    if key == "is_decoder" and value is not False:
        raise ValueError(
            f"is_decoder={value!r} is not supported: transformers' MobileBERT reads is_decoder=True as a causal attention "
            "mask (each token attends to itself and earlier tokens; the trigram embedding still mixes in the next one), "
            "which this suite's models do not implement: MobileBERT is trained as a bidirectional encoder. "
            "Leave is_decoder at False"
        )
    if key in ENCODER_DECODER_OPTIONS and value != CARRIED[key]:
        raise ValueError(
            f"{key}={value!r} is not supported: MobileBERT is an encoder (no cross-attention, no decoder); "
            f"transformers' MobileBERT accepts {key} and ignores it, this suite refuses it rather than silently "
            f"build an encoder. Leave {key} at {CARRIED[key]!r}"
        )
    if key == "dtype" and value is not None:
        name = dtype_name(value)
        if name is None:
            raise ValueError(f"dtype (torch_dtype) must be None or one of {', '.join(DTYPES)}, got {value!r}")
        return name
    if key == "chunk_size_feed_forward":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"chunk_size_feed_forward must be an integer >= 0 (0: no chunking), got {value!r}")
    if key in ("bos_token_id", "eos_token_id", "sep_token_id", "decoder_start_token_id") and value is not None:
        ids = value if key == "eos_token_id" and isinstance(value, list) else [value]
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
            raise ValueError(f"{key} must be None or a token id (an integer >= 0), got {value!r}")
    if key in ("finetuning_task", "tokenizer_class", "prefix", "transformers_version") and not isinstance(value, (str, type(None))):
        raise ValueError(f"{key} must be a str or None, got {value!r}")
    if key == "task_specific_params" and not isinstance(value, (dict, type(None))):
        raise ValueError(f"task_specific_params must be a dict or None, got {value!r}")
    if key in ("tf_legacy_loss", "use_bfloat16") and not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}")
    return value
