"""TFMobileBertPreTrainedModel: the base of the eight Keras classes (loading, saving, Keras training).

Every TF class subclasses it and gets:

    Cls.from_pretrained(dir_or_repo_id, from_pt=False, config=None, ignore_mismatched_sizes=False,
                        revision=, cache_dir=, token=, local_files_only=, force_download=, **config_overrides)
    model.save_pretrained(dir)            # config.json + tf_model.h5 in the hub's layout
    model.dummy_inputs / model.build_with_dummies()
    model.serving_function(dtype)         # tf.function over input_ids, attention_mask, token_type_ids
    model.export_saved_model(dir)         # SavedModel: serving_default (int32) and serving_int64
    model.compile(optimizer) + model.fit(dataset)   # trains with the model's own loss (labels in the inputs)

Weights are matched by name: a variable's name without its first component (the Keras model
name, e.g. "tf_mobile_bert_for_masked_lm") is the hub's tf_model.h5 name, e.g.
"mobilebert/encoder/layer_._0/ffn.0/output/LayerNorm/weight:0". Keras' own save_weights /
load_weights (h5 and TF checkpoint formats) work unchanged.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras

from mobilebert_common.config import CONFIG_NAME, MobileBertConfig
from mobilebert_common.hub import resolve_file
from mobilebert_common.loading import LoadReport, apply_policy, compare
from mobilebert_tf.checkpoints import (  # noqa: F401  (the names are part of this module's API)
    BIN_WEIGHTS_NAME, SAFE_INDEX_NAME, SAFE_WEIGHTS_NAME, TF_WEIGHTS_NAME, _conversion, _read_h5, _read_pt_weights,
    _resolve_tf_weights,
)


BACKBONE_PREFIX = "mobilebert/"
# The pooler belongs to the heads that use it: a masked-LM checkpoint has none, and loading it
# into a classifier initialises a new pooler (as transformers does) instead of failing.
POOLER_PREFIX = "mobilebert/pooler/"
WORD_EMBEDDINGS = "mobilebert/embeddings/word_embeddings/weight:0"
# The TF masked-LM head computes with the word-embedding variable (tied, as in PyTorch), but the
# hub's h5 stores a copy under this name; we write it and check it on load.
DECODER = "predictions___cls/predictions/decoder/weight:0"
PREDICTIONS_PREFIX = "predictions___cls/"

_ARCHITECTURES = (
    "MobileBertModel", "MobileBertForPreTraining", "MobileBertForMaskedLM", "MobileBertForNextSentencePrediction",
    "MobileBertForSequenceClassification", "MobileBertForMultipleChoice", "MobileBertForTokenClassification",
    "MobileBertForQuestionAnswering",
)
# Keys of the input dict that carry labels (model.fit puts them there, or we move y there).
LABEL_KEYS = ("labels", "next_sentence_label", "start_positions", "end_positions")
SERVING_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def weights_by_name(model: keras.Model) -> Dict[str, tf.Variable]:
    """{hub h5 name: variable}: each variable's name without the model-name component."""
    out = {}
    for var in model.weights:
        name = var.name.split("/", 1)[1] if "/" in var.name else var.name
        if name in out and out[name] is not var:
            raise ValueError(f"two variables of {model.name} share the name {name!r}; weights could not be matched by name")
        out[name] = var
    return out


def _is_backbone(name: str) -> bool:
    return name.startswith(BACKBONE_PREFIX) and not name.startswith(POOLER_PREFIX)


def _internal_loss(y_true, y_pred):
    # compile() routes the model's own loss through Keras' loss container as y_pred, so Keras keeps
    # its usual "loss" metric, regularisation losses and loss scaling.
    return tf.reduce_mean(y_pred)


class TFMobileBertPreTrainedModel(keras.Model):
    """Base of the TF MobileBERT classes: holds ``config``; the hub's loading and saving; Keras training."""

    config_class = MobileBertConfig
    base_model_prefix = "mobilebert"
    main_input_name = "input_ids"

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(*inputs, **kwargs)
        if not isinstance(config, MobileBertConfig):
            raise ValueError(f"config must be a MobileBertConfig, got {type(config).__name__}")
        self.config = config
        self._uses_internal_loss = False

    # ------------------------------------------------------------------ names, building
    @classmethod
    def architecture(cls) -> str:
        """The hub's architecture name ("MobileBertForMaskedLM"), as transformers writes it in config.json."""
        for klass in cls.__mro__:
            if klass.__name__.startswith("TF") and klass.__name__[2:] in _ARCHITECTURES:
                return klass.__name__[2:]
        raise ValueError(f"{cls.__name__} is not one of the TF MobileBERT classes ({', '.join('TF' + a for a in _ARCHITECTURES)})")

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
        decoder = weights.pop(DECODER, None)
        if decoder is not None:
            embeddings = weights.get(WORD_EMBEDDINGS)
            if embeddings is not None and (decoder.shape != embeddings.shape or not np.array_equal(decoder, embeddings)):
                raise ValueError(
                    f"{source}: {DECODER} differs from {WORD_EMBEDDINGS}; MobileBERT ties the masked-LM decoder to the "
                    "word embeddings (as the PyTorch model does), so an untied decoder cannot be loaded"
                )
            if not any(name.startswith(PREDICTIONS_PREFIX) for name in variables):
                weights[DECODER] = decoder  # another head's weight: reported as unused below
        report = compare({k: tuple(v.shape) for k, v in variables.items()}, {k: tuple(v.shape) for k, v in weights.items()})
        reinit = apply_policy(report, source=source, model_class=type(self).__name__,
                              is_backbone=_is_backbone,
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
        if any(name.startswith(PREDICTIONS_PREFIX) for name in weights):
            weights[DECODER] = weights[WORD_EMBEDDINGS].copy()
        weights_path = os.path.join(save_directory, TF_WEIGHTS_NAME)
        write_tf_h5(weights_path, weights, model_name=_keras_model_name(self.architecture()))  # atomic (temp + rename)
        # config.json last: a directory with a config is complete. transformers' TF classes write the
        # architecture without the "TF" prefix too, so either framework's loader recognises it.
        config_path = self.config.copy(architectures=[self.architecture()]).save_pretrained(save_directory)
        return [config_path, weights_path]

    # ------------------------------------------------------------------ serving / SavedModel
    def serving_function(self, dtype=tf.int32, jit_compile: bool = False) -> tf.types.experimental.ConcreteFunction:
        """A concrete function over (batch, seq) input_ids, attention_mask, token_type_ids of ``dtype``
        (None dims: any batch, any length; (batch, choices, seq) for multiple choice), returning the
        output's tensors as a dict."""
        rank = 3 if self.architecture() == "MobileBertForMultipleChoice" else 2
        spec = {name: tf.TensorSpec([None] * rank, dtype, name=name) for name in SERVING_INPUTS}

        def serving(input_ids, attention_mask, token_type_ids):
            out = self(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                       training=False, return_dict=True)
            return {k: v for k, v in out.items() if isinstance(v, tf.Tensor)}

        self.build_with_dummies()
        fn = tf.function(serving, jit_compile=jit_compile)
        return fn.get_concrete_function(**spec)

    def export_saved_model(self, export_dir: str | os.PathLike) -> str:
        """A SavedModel with signatures serving_default (int32 ids) and serving_int64, and a ``serving``
        function that takes either dtype; loadable with tf.saved_model.load without this package."""
        self.build_with_dummies()
        int32, int64 = self.serving_function(tf.int32), self.serving_function(tf.int64)
        module = tf.Module()
        # Track the variables only (not the Keras object): the SavedModel then holds plain functions.
        module.model_variables = list(self.weights)
        rank = 3 if self.architecture() == "MobileBertForMultipleChoice" else 2

        @tf.function
        def serving(input_ids, attention_mask, token_type_ids):
            fn = int64 if input_ids.dtype == tf.int64 else int32
            return fn(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)

        for dtype in (tf.int32, tf.int64):
            serving.get_concrete_function(**{n: tf.TensorSpec([None] * rank, dtype, name=n) for n in SERVING_INPUTS})
        module.serving = serving
        export_dir = os.fspath(export_dir)
        tf.saved_model.save(module, export_dir, signatures={"serving_default": int32, "serving_int64": int64})
        return export_dir

    def export(self, filepath, **kwargs):
        """Keras' ``model.export``: the SavedModel of ``export_saved_model`` (Keras' own export cannot
        trace a model whose outputs are MobileBERT output classes)."""
        if kwargs:
            raise ValueError(f"export takes only a path here; got {sorted(kwargs)}")
        return self.export_saved_model(filepath)

    # ------------------------------------------------------------------ Keras training
    def compile(self, optimizer="rmsprop", loss="auto", metrics=None, **kwargs):
        """loss="auto" (the default) or None: train on the model's own loss; labels go in the input dict
        (``labels``, or ``next_sentence_label`` / ``start_positions`` / ``end_positions``), or as y.
        Any other ``loss`` is a Keras loss applied to the logits."""
        self._uses_internal_loss = loss is None or (isinstance(loss, str) and loss == "auto")
        super().compile(optimizer=optimizer, loss=_internal_loss if self._uses_internal_loss else loss,
                        metrics=metrics, **kwargs)

    def _with_labels(self, x, y):
        """Move y into the input dict where the model's loss finds it."""
        if y is None or not self._uses_internal_loss:
            return x, y
        if not isinstance(x, dict):
            x = {"input_ids": x}
        x = dict(x)
        if isinstance(y, dict):
            x.update({k: v for k, v in y.items() if k in LABEL_KEYS})
        else:
            x["labels"] = y
        return x, y

    @staticmethod
    def _logits(out):
        for key in ("logits", "prediction_logits", "start_logits"):
            if key in out:
                return out[key]
        return out[0]

    def _loss_and_logits(self, x, y, sample_weight, training):
        out = self(x, training=training, return_dict=True)
        if self._uses_internal_loss:
            model_loss = out.get("loss")
            if model_loss is None:
                raise ValueError(
                    f"{type(self).__name__} was compiled with its own loss but got no labels: put them in the input "
                    f"dict ({', '.join(LABEL_KEYS)}) or pass them as y, or compile with a Keras loss"
                )
            model_loss = tf.reshape(model_loss, [1])  # Keras' loss container wants a batch dimension
            loss = self.compiled_loss(model_loss, model_loss, regularization_losses=self.losses)
        else:
            loss = self.compiled_loss(y, self._logits(out), sample_weight, regularization_losses=self.losses)
        return loss, out

    def _metric_results(self, x, y, out, sample_weight):
        if y is None and isinstance(x, dict):
            y = x.get("labels")
        if y is not None and not isinstance(y, dict):
            self.compiled_metrics.update_state(y, self._logits(out), sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y = self._with_labels(x, y)
        with tf.GradientTape() as tape:
            loss, out = self._loss_and_logits(x, y, sample_weight, training=True)
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        return self._metric_results(x, y, out, sample_weight)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y = self._with_labels(x, y)
        _, out = self._loss_and_logits(x, y, sample_weight, training=False)
        return self._metric_results(x, y, out, sample_weight)

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, dict):
            x = {k: v for k, v in x.items() if k not in LABEL_KEYS}
        out = self(x, training=False, return_dict=True)
        return {k: v for k, v in out.items() if isinstance(v, tf.Tensor)}


def _keras_model_name(architecture: str) -> str:
    # "MobileBertForMaskedLM" -> "tf_mobile_bert_for_masked_lm", the model-name component of the hub's h5 names.
    return _conversion("weight_map").tf_model_name(architecture)
