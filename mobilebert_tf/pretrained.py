"""TFPreTrainedModel: the generic base of the Keras models (naming, building, loading and saving).

It knows no MobileBERT class. A model family derives from it (modeling.TFMobileBertPreTrainedModel)
and supplies:

    config_class, base_model_prefix      the config type; the backbone's attribute and h5 group ("mobilebert")
    architecture_name                    per public class: the hub's name ("MobileBertForMaskedLM")
    call_input_names, label_names        the call's input and label arguments
    keras_model_name()                   the Keras model name the hub's h5 files use
    dummy_inputs, head_layers()          small inputs that build every variable; the head's layers
    tied_copies(every_head)              {h5 name of a stored copy: h5 name of the tensor it copies}
    is_backbone(name)                    backbone weights must load; head weights may be new
    _init_weights(name, shape)           the value of a weight a checkpoint lacks
    _validate_model_inputs, _check_labels  the checks of one call

and gets:

    Cls(config)                           # the Keras model named as the hub's h5 (tf_mobile_bert_for_masked_lm)
    Cls.from_pretrained(dir_or_repo_id, from_pt=False, config=None, ignore_mismatched_sizes=False,
                        revision=, cache_dir=, token=, local_files_only=, force_download=, **config_overrides)
    model.save_pretrained(dir)            # tf_model.h5 + config.json in the hub's layout; returns the paths
    model.validate_inputs(inputs)         # the call's input and label checks, e.g. before an XLA function
    model.get_config() / Cls.from_config  # Keras' own saving: model.save("m.keras"), load_model
    serving.py: serving_function, export_saved_model, export; training.py: compile + fit on the model's loss

Weights are matched by name: a variable's name relative to the model (without the Keras model name,
e.g. "tf_mobile_bert_for_masked_lm/") is the hub's tf_model.h5 name, e.g.
"mobilebert/encoder/layer_._0/ffn.0/output/LayerNorm/weight:0". The model builds its variables under
its own name as an absolute name scope, so an outer ``tf.name_scope`` does not change them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Dict, Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras

from mobilebert_common.config import CONFIG_NAME
from mobilebert_common.hub import resolve_file
from mobilebert_common.loading import LoadReport, apply_policy, compare, resolve_pretrained
from conversion import convert, formats
from mobilebert_tf.checkpoints import TF_WEIGHTS_NAME, _read_h5, _read_pt_weights, _resolve_tf_weights
from mobilebert_tf.inputs import Checks, unpack_inputs, warn_if_unchecked_xla
from mobilebert_tf.serving import ServingMixin
from mobilebert_tf.training import TrainingMixin


def build_in_scope(layer: keras.layers.Layer, input_shape) -> None:
    """Build ``layer`` now under its own name, so its variables get the hub's name path (a layer with
    ``names_its_own_scopes``, as the pre-training heads, opens the hub's scopes itself)."""
    if getattr(layer, "names_its_own_scopes", False):
        layer.build(input_shape)
        return
    with tf.name_scope(layer.name):
        layer.build(input_shape)


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


class TFPreTrainedModel(ServingMixin, TrainingMixin, keras.Model):
    """Holds ``config``; names, builds, loads and saves as the hub does (see the module docstring)."""

    config_class: type = None
    base_model_prefix: str = ""
    main_input_name = "input_ids"
    architecture_name: Optional[str] = None  # set by each public class
    call_input_names: tuple = ()
    label_names: tuple = ()

    def __init__(self, config, *inputs, **kwargs):
        if not isinstance(config, self.config_class):
            raise ValueError(f"config must be a {self.config_class.__name__}, got {type(config).__name__}")
        kwargs.setdefault("name", self.keras_model_name())
        super().__init__(*inputs, **kwargs)
        self.config = config
        self._uses_internal_loss = False

    # ------------------------------------------------------------------ what a model family supplies
    @classmethod
    def keras_model_name(cls) -> str:
        raise NotImplementedError(f"{cls.__name__} does not say which Keras model name its h5 files use")

    @property
    def dummy_inputs(self) -> Dict[str, tf.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has no dummy inputs to build its variables with")

    def head_layers(self) -> list:
        """[(layer, input shape)] of the head, built after the backbone."""
        return []

    def tied_copies(self, every_head: bool = False) -> Dict[str, str]:
        """{h5 name of a stored copy: h5 name of the tensor it copies}; every_head: those of every class of the family."""
        return {}

    def is_backbone(self, name: str) -> bool:
        """Backbone weights must all load (problems raise); head weights may be new (one warning)."""
        return name.startswith(self.base_model_prefix + "/")

    def _init_weights(self, name: str, shape: tuple) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not say how to initialise {name}")

    def _validate_model_inputs(self, inputs: dict, found: Checks) -> None:
        """The input checks of one call (ValueError now, or assertions collected in ``found``)."""

    def _check_labels(self, args: dict, found: Checks) -> None:
        """The label checks of one call (the class-id ranges that the loss needs)."""

    # ------------------------------------------------------------------ names, Keras config
    @classmethod
    def architecture(cls) -> str:
        """The hub's architecture name ("MobileBertForMaskedLM"), as transformers writes it in config.json."""
        if cls.architecture_name is None:
            raise ValueError(f"{cls.__name__} is a base class with no architecture_name; build one of its model classes")
        return cls.architecture_name

    def get_config(self) -> dict:
        """Keras' config: the model config as a dict (model.save("m.keras") / load_model rebuild from it)."""
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None, **kwargs):
        """A new model from a model config (``TFMobileBertModel.from_config(config)``, as transformers), or from
        Keras' dict (get_config's, when load_model rebuilds a saved model)."""
        if isinstance(config, cls.config_class):
            return cls(config, **kwargs)
        if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
            raise ValueError(f"from_config takes a {cls.config_class.__name__} or the dict of get_config(), "
                             f"got {type(config).__name__}")
        return cls(cls.config_class.from_dict(config["config"]), name=config.get("name"))

    # ------------------------------------------------------------------ building, calling
    def build_with_dummies(self) -> None:
        """Create every variable (with its hub name) by one call on dummy inputs."""
        if not self.built:
            self(self.dummy_inputs, training=False)

    def build(self, input_shape=None):
        # The model's name as an ABSOLUTE name scope (trailing "/"): variables are named
        # "<model name>/mobilebert/..." whatever name scopes the caller has open.
        with tf.name_scope(self.name + "/"):
            build_in_scope(getattr(self, self.base_model_prefix), None)
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
        args = unpack_inputs(input_ids, kwargs, self.call_input_names + self.label_names)
        warn_if_unchecked_xla()
        labels = {k: args.get(k) for k in self.label_names}
        return {k: v for k, v in args.items() if k not in self.label_names}, labels

    def validate_inputs(self, inputs=None, **kwargs) -> dict:
        """The checks a call makes on its inputs and labels, as a dict {name: tensor or None} with the checks attached.

        Eagerly a ValueError; in a graph, assertions the returned tensors depend on. Use it in the
        calling (non-XLA) code before an XLA-compiled function, where TensorFlow drops assertions:
        ``logits = xla_fn(model.validate_inputs(batch))``. Takes a dict (as model.fit passes) or keywords.
        """
        if inputs is None:
            inputs = kwargs.pop("input_ids", None)
        args = unpack_inputs(inputs, kwargs, self.call_input_names + self.label_names)
        found = Checks()
        self._validate_model_inputs({k: v for k, v in args.items() if k in self.call_input_names}, found)
        self._check_labels(args, found)
        return found.attach(args)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        dir_or_repo_id: str | os.PathLike,
        *model_args,
        from_pt: bool = False,
        config=None,
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
        hub = dict(revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only,
                   force_download=force_download)
        # The checkpoint's own config (before overrides) tells the converter the file's architecture and shapes.
        resolved = resolve_pretrained(cls.config_class, dir_or_repo_id, config, config_overrides, hub,
                                      read_file_config=from_pt, find_file=resolve_file)
        source, weights_file, config, file_config = (resolved.source, resolved.weights_file, resolved.config,
                                                     resolved.file_config)
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
        if not any(self.is_backbone(n) for n in variables):
            raise ValueError(f"{type(self).__name__}'s variables are not named as the hub's (e.g. {next(iter(variables))!r}); "
                             "they cannot be matched to a checkpoint")
        if weights and not any(n in weights for n in variables if self.is_backbone(n)):
            raise ValueError(f"{source}: none of {type(self).__name__}'s backbone weights is in it (its names look like "
                             f"{sorted(weights)[:3]}; expected names like {sorted(n for n in variables if self.is_backbone(n))[:1]}). "
                             f"Is it a tf_model.h5 of {type(self).__name__}'s family?")
        own_ties = self.tied_copies()
        for copy, original in self.tied_copies(every_head=True).items():
            if copy in weights and original in weights:
                try:
                    convert._require_tied(copy, weights[copy], original, weights[original])
                except ValueError as err:
                    raise ValueError(f"{source}: {err}") from None
            if copy in own_ties:
                weights.pop(copy, None)  # computed from the original (tied, as in PyTorch); another head's copy stays: unused
        report = compare({k: tuple(v.shape) for k, v in variables.items()}, {k: tuple(v.shape) for k, v in weights.items()})
        reinit = apply_policy(report, source=source, model_class=type(self).__name__, is_backbone=self.is_backbone,
                              ignore_mismatched_sizes=ignore_mismatched_sizes)
        new = set(reinit)
        pairs = []
        for name, var in variables.items():
            if name in new:
                pairs.append((var, self._init_weights(name, tuple(var.shape))))
            else:
                pairs.append((var, np.asarray(weights[name]).astype(var.dtype.as_numpy_dtype)))
        keras.backend.batch_set_value(pairs)
        return report

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, save_directory: str | os.PathLike, saved_model: bool = False, version: int = 1) -> list:
        """Write tf_model.h5 and config.json (the hub's layout, readable by the TF loaders users have).
        Returns the written paths in the order written, config.json last (as in PyTorch).

        saved_model=True also writes a SavedModel (export_saved_model's serving signatures) under
        save_directory/saved_model/<version>, as transformers does; it appears complete or not at all."""
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_pretrained needs a directory; {save_directory} is a file")
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise ValueError(f"version (the SavedModel's subdirectory) must be a non-negative integer, got {version!r}")
        os.makedirs(save_directory, exist_ok=True)
        self.build_with_dummies()
        written = [self._write_saved_model(os.path.join(save_directory, "saved_model", str(version)))] if saved_model else []
        weights = {name: var.numpy() for name, var in weights_by_name(self).items()}
        for copy, original in self.tied_copies().items():
            weights[copy] = weights[original].copy()  # the hub's h5 stores the tied copy
        weights_path = os.path.join(save_directory, TF_WEIGHTS_NAME)
        formats.write_tf_h5(weights_path, weights, model_name=self.keras_model_name())  # atomic (temp + rename)
        # config.json last: a directory with a config is complete. transformers' TF classes write the
        # architecture without the "TF" prefix too, so either framework's loader recognises it.
        config_path = self.config.copy(architectures=[self.architecture()]).save_pretrained(save_directory)
        return written + [weights_path, config_path]

    def _write_saved_model(self, target: str) -> str:
        """export_saved_model into a temporary sibling, then renamed to ``target`` (replacing an older one)."""
        parent = os.path.dirname(target)
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
        try:
            self.export_saved_model(staging)
            if os.path.isdir(target):
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            if os.path.isdir(staging):
                shutil.rmtree(staging, ignore_errors=True)
        return target
