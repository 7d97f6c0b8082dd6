"""TFMobileBertPreTrainedModel: the base of the Keras classes (naming, building, loading and saving).

Every TF class subclasses it and gets:

    Cls(config)                           # the Keras model named as the hub's h5 (tf_mobile_bert_for_masked_lm)
    Cls.from_pretrained(dir_or_repo_id, from_pt=False, config=None, ignore_mismatched_sizes=False,
                        revision=, cache_dir=, token=, local_files_only=, force_download=, **config_overrides)
    model.save_pretrained(dir)            # config.json + tf_model.h5 in the hub's layout
    model.validate_inputs(inputs)         # the call's input and label checks, e.g. before an XLA function
    model.get_config() / Cls.from_config  # Keras' own saving: model.save("m.keras"), load_model
    serving.py: serving_function, export_saved_model, export; training.py: compile + fit on the model's loss

Weights are matched by name: a variable's name relative to the model (without the Keras model name,
e.g. "tf_mobile_bert_for_masked_lm/") is the hub's tf_model.h5 name, e.g.
"mobilebert/encoder/layer_._0/ffn.0/output/LayerNorm/weight:0". The model builds its variables under
its own name as an absolute name scope, so an outer ``tf.name_scope`` does not change them. Which
tensors exist, and which are tied copies (the masked-LM decoder), comes from conversion.weight_map.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras

from conversion import weight_map
from mobilebert_common.config import CONFIG_NAME, MobileBertConfig
from mobilebert_common.hub import resolve_file
from mobilebert_common.loading import LoadReport, apply_policy, compare
from mobilebert_tf.checkpoints import (  # noqa: F401  (the names are part of this module's API)
    BIN_WEIGHTS_NAME, SAFE_INDEX_NAME, SAFE_WEIGHTS_NAME, TF_WEIGHTS_NAME, _conversion, _read_h5, _read_pt_weights,
    _resolve_tf_weights,
)
from mobilebert_tf.inputs import INPUT_NAMES, Checks, unpack_inputs, validate_inputs, warn_if_unchecked_xla
from mobilebert_tf.modeling import build_in_scope
from mobilebert_tf.serving import ServingMixin
from mobilebert_tf.training import TrainingMixin

BACKBONE_PREFIX = "mobilebert/"
# The pooler belongs to the heads that use it: a masked-LM checkpoint has none, and loading it
# into a classifier initialises a new pooler (as transformers does) instead of failing.
POOLER_PREFIX = "mobilebert/pooler/"


def weights_by_name(model: keras.Model) -> Dict[str, tf.Variable]:
    """{hub h5 name: variable}: each variable's name relative to the model (after "<model.name>/")."""
    prefix = model.name + "/"
    out = {}
    for var in model.weights:
        if var.name.startswith(prefix):
            name = var.name[len(prefix):]
        elif "/" + prefix in var.name:  # created under an outer name scope by other code
            name = var.name.split("/" + prefix, 1)[1]
        else:
            raise ValueError(f"variable {var.name!r} of {model.name} is not named under the model's name, so it "
                             "cannot be matched to a checkpoint name; build the model with build_with_dummies()")
        if name in out and out[name] is not var:
            raise ValueError(f"two variables of {model.name} share the name {name!r}; weights could not be matched by name")
        out[name] = var
    return out


def is_backbone(name: str) -> bool:
    return name.startswith(BACKBONE_PREFIX) and not name.startswith(POOLER_PREFIX)


def tied_copies(config: MobileBertConfig, architectures=None) -> Dict[str, str]:
    """{TF name of a tied copy: TF name of the tensor it copies}, from weight_map's "tie" entries (the
    masked-LM decoder, stored in tf_model.h5 as a copy of the word embeddings)."""
    out = {}
    for arch in architectures or weight_map.ARCHITECTURES:
        table = weight_map.entries(config, arch)
        by_pt = {e.pt_name: e for e in table}
        out.update({e.tf_name: by_pt[e.tied_to].tf_name for e in table if e.transform == "tie"})
    return out


class TFMobileBertPreTrainedModel(ServingMixin, TrainingMixin, keras.Model):
    """Base of the TF MobileBERT classes: holds ``config``; names, builds, loads and saves as the hub does."""

    config_class = MobileBertConfig
    base_model_prefix = "mobilebert"
    main_input_name = "input_ids"
    architecture_name: Optional[str] = None  # set by each public class: "MobileBertForMaskedLM", ...
    label_names: tuple = ()  # the call's label arguments

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.architecture_name is not None:
            weight_map.normalize_architecture(cls.architecture_name)  # one of weight_map.ARCHITECTURES

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        if not isinstance(config, MobileBertConfig):
            raise ValueError(f"config must be a MobileBertConfig, got {type(config).__name__}")
        kwargs.setdefault("name", weight_map.tf_model_name(self.architecture()))
        super().__init__(*inputs, **kwargs)
        self.config = config
        self._uses_internal_loss = False

    # ------------------------------------------------------------------ names, Keras config
    @classmethod
    def architecture(cls) -> str:
        """The hub's architecture name ("MobileBertForMaskedLM"), as transformers writes it in config.json."""
        if cls.architecture_name is None:
            raise ValueError(f"{cls.__name__} is not one of the TF MobileBERT classes "
                             f"({', '.join('TF' + a for a in weight_map.ARCHITECTURES)})")
        return cls.architecture_name

    def get_config(self) -> dict:
        """Keras' config: the MobileBertConfig as a dict (model.save("m.keras") / load_model rebuild from it)."""
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        return cls(MobileBertConfig.from_dict(config["config"]), name=config.get("name"))

    # ------------------------------------------------------------------ building, calling
    @property
    def dummy_inputs(self) -> Dict[str, tf.Tensor]:
        """Small inputs that build every weight: (3, 5) ids, or (3, 2, 5) for multiple choice."""
        ids = tf.constant([[7, 6, 0, 0, 1], [1, 2, 3, 0, 0], [0, 0, 0, 4, 5]], dtype=tf.int32) % self.config.vocab_size
        if self.architecture() == "MobileBertForMultipleChoice":
            ids = tf.stack([ids, ids], axis=1)  # (batch, choices, seq)
        return {"input_ids": ids}

    def build_with_dummies(self) -> None:
        """Create every variable (with its hub name) by one call on dummy inputs."""
        if not self.built:
            self(self.dummy_inputs, training=False)

    def head_layers(self) -> list:
        """[(layer, input shape)] of the head, built after the backbone."""
        return []

    def build(self, input_shape=None):
        # The model's name as an ABSOLUTE name scope (trailing "/"): variables are named
        # "<model name>/mobilebert/..." whatever name scopes the caller has open.
        with tf.name_scope(self.name + "/"):
            build_in_scope(self.mobilebert, None)
            for layer, shape in self.head_layers():
                build_in_scope(layer, shape)
        self.built = True

    def __call__(self, *args, **kwargs):
        # Keras wants call()'s first argument (input_ids) present; inputs_embeds alone must work too.
        if not args and "input_ids" not in kwargs:
            kwargs["input_ids"] = None
        if getattr(self, "_saved_model_inputs_spec", None) is None:
            # What tf.saved_model.save(model) and model.save(save_format="tf") trace as serving_default.
            self._set_save_spec(self.serving_spec(tf.int64))
        return super().__call__(*args, **kwargs)

    def _inputs(self, input_ids, kwargs: dict):
        """(model inputs, {label name: tensor or None})."""
        args = unpack_inputs(input_ids, kwargs, INPUT_NAMES + self.label_names)
        warn_if_unchecked_xla()
        labels = {k: args.get(k) for k in self.label_names}
        return {k: v for k, v in args.items() if k not in self.label_names}, labels

    def _backbone(self, args: dict, training):
        return self.mobilebert(**{k: v for k, v in args.items() if k != "return_dict"}, return_dict=True,
                               training=training)

    def validate_inputs(self, inputs=None, **kwargs) -> dict:
        """The checks a call makes on its inputs and labels, as a dict of tensors with the checks attached.

        Eagerly a ValueError; in a graph, assertions the returned tensors depend on. Use it in the
        calling (non-XLA) code before an XLA-compiled function, where TensorFlow drops assertions:
        ``logits = xla_fn(model.validate_inputs(batch))``. Takes a dict (as model.fit passes) or keywords.
        """
        if inputs is None:
            inputs = kwargs.pop("input_ids", None)
        args = unpack_inputs(inputs, kwargs, INPUT_NAMES + self.label_names)
        found = Checks()
        self._validate_model_inputs({k: v for k, v in args.items() if k in INPUT_NAMES}, found)
        self._check_labels(args, found)
        return found.attach(args)

    def _validate_model_inputs(self, inputs: dict, found: Checks) -> None:
        validate_inputs(self.config, inputs, found)

    def _check_labels(self, args: dict, found: Checks) -> None:
        """Each head checks its labels (the class-id ranges that its loss needs)."""

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        dir_or_repo_id: str | os.PathLike,
        *model_args,
        from_pt: bool = False,
        config: Optional[MobileBertConfig] = None,
        ignore_mismatched_sizes: bool = False,
        revision: Optional[str] = None,
        cache_dir: Optional[str] = None,
        token: Optional[str | bool] = None,
        local_files_only: bool = False,
        force_download: bool = False,
        output_loading_info: bool = False,
        **config_overrides,
    ):
        """A model built from config.json and the weights of a local directory, a weights file, or a hub repo id.

        Reads tf_model.h5 (the hub's layout), or with ``from_pt=True`` model.safetensors, a sharded
        model.safetensors.index.json or pytorch_model.bin, converted by ``conversion`` (torch is
        not needed for safetensors). A checkpoint of another head loads its backbone; head
        weights it lacks are initialised anew and listed in one warning. Keywords that are not hub
        keywords override config fields (``num_labels=3``). With ``output_loading_info=True``
        returns (model, {"missing_keys", "unexpected_keys", "mismatched_keys"}).
        """
        unknown = [k for k in config_overrides if k not in MobileBertConfig.__dataclass_fields__]
        if unknown:
            raise ValueError(f"from_pretrained got unknown keyword(s) {unknown}: neither loading options nor config fields")
        hub = dict(revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only,
                   force_download=force_download)
        source = os.fspath(dir_or_repo_id)
        weights_file = source if os.path.isfile(source) else None
        config_source = os.path.dirname(os.path.abspath(source)) if weights_file else source
        if weights_file and config is None and not os.path.isfile(os.path.join(config_source, CONFIG_NAME)):
            raise FileNotFoundError(f"{source} is a weights file without a config.json beside it; pass config=")

        # The checkpoint's own config (before overrides) tells the converter the file's architecture and shapes.
        file_config = None
        if config is None or from_pt:
            have_config = config is None or resolve_file(config_source, CONFIG_NAME, required=False, **hub) is not None
            if have_config:
                file_config = MobileBertConfig.from_pretrained(config_source, **hub)
        if config is None:
            config = file_config.copy(**config_overrides) if config_overrides else file_config
        else:
            if not isinstance(config, MobileBertConfig):
                raise ValueError(f"config must be a MobileBertConfig, got {type(config).__name__}")
            if config_overrides:
                config = config.copy(**config_overrides)

        model = cls(config, *model_args)
        model.build_with_dummies()
        if from_pt:
            path, weights = _read_pt_weights(weights_file or source, hub, file_config or config, cls.architecture(),
                                             is_file=weights_file is not None)
        else:
            path = weights_file or _resolve_tf_weights(source, hub)
            weights = _read_h5(path)
        report = model.load_weight_dict(weights, source=path, ignore_mismatched_sizes=ignore_mismatched_sizes)
        if output_loading_info:
            info = {"missing_keys": report.missing, "unexpected_keys": report.unexpected, "mismatched_keys": report.mismatched}
            return model, info
        return model

    def load_weight_dict(self, weights: Dict[str, np.ndarray], source: str = "the checkpoint",
                         ignore_mismatched_sizes: bool = False) -> LoadReport:
        """Assign {hub h5 name: array}; backbone problems raise, head differences warn once (new head
        weights get a fresh initialisation). Returns the comparison (missing, unexpected, mismatched)."""
        self.build_with_dummies()
        weights = dict(weights)
        variables = weights_by_name(self)
        if not any(is_backbone(n) for n in variables):
            raise ValueError(f"{type(self).__name__}'s variables are not named as the hub's (e.g. {next(iter(variables))!r}); "
                             "they cannot be matched to a checkpoint")
        if weights and not any(n in weights for n in variables if is_backbone(n)):
            raise ValueError(f"{source}: none of {type(self).__name__}'s backbone weights is in it (its names look like "
                             f"{sorted(weights)[:3]}; expected names like {sorted(n for n in variables if is_backbone(n))[:1]}). "
                             "Is it a MobileBERT tf_model.h5?")
        own_ties = tied_copies(self.config, [self.architecture()])
        for copy, original in tied_copies(self.config).items():
            if copy in weights and original in weights:
                try:
                    _conversion("convert")._require_tied(copy, weights[copy], original, weights[original])
                except ValueError as err:
                    raise ValueError(f"{source}: {err}") from None
            if copy in own_ties:
                weights.pop(copy, None)  # computed from the original (tied, as in PyTorch); another head's copy stays: unused
        report = compare({k: tuple(v.shape) for k, v in variables.items()}, {k: tuple(v.shape) for k, v in weights.items()})
        reinit = apply_policy(report, source=source, model_class=type(self).__name__,
                              is_backbone=is_backbone,
                              ignore_mismatched_sizes=ignore_mismatched_sizes)
        new = set(reinit)
        pairs = []
        for name, var in variables.items():
            if name in new:
                pairs.append((var, self._fresh_value(name, tuple(var.shape))))
            else:
                pairs.append((var, np.asarray(weights[name]).astype(var.dtype.as_numpy_dtype)))
        keras.backend.batch_set_value(pairs)
        return report

    def _fresh_value(self, name: str, shape: tuple) -> np.ndarray:
        """Initial value of a weight the checkpoint lacks: truncated normal(initializer_range) for matrices,
        ones for norm scales, zeros for biases."""
        leaf = name.rsplit("/", 1)[-1]
        if len(shape) >= 2:
            init = keras.initializers.TruncatedNormal(stddev=self.config.initializer_range)
            return init(shape).numpy()
        if leaf.startswith("gamma") or (leaf.startswith("weight") and "LayerNorm" in name):
            return np.ones(shape, np.float32)
        return np.zeros(shape, np.float32)

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, save_directory: str | os.PathLike) -> list:
        """Write config.json and tf_model.h5 (the hub's layout, readable by the TF loaders users have). Returns the paths."""
        write_tf_h5 = _conversion("formats").write_tf_h5
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_pretrained needs a directory; {save_directory} is a file")
        os.makedirs(save_directory, exist_ok=True)
        self.build_with_dummies()
        weights = {name: var.numpy() for name, var in weights_by_name(self).items()}
        for copy, original in tied_copies(self.config, [self.architecture()]).items():
            weights[copy] = weights[original].copy()  # the hub's h5 stores the tied decoder
        weights_path = os.path.join(save_directory, TF_WEIGHTS_NAME)
        write_tf_h5(weights_path, weights, model_name=weight_map.tf_model_name(self.architecture()))  # atomic (temp + rename)
        # config.json last: a directory with a config is complete. transformers' TF classes write the
        # architecture without the "TF" prefix too, so either framework's loader recognises it.
        config_path = self.config.copy(architectures=[self.architecture()]).save_pretrained(save_directory)
        return [config_path, weights_path]
