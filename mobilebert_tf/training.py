"""Keras training of the MobileBERT models (a mixin of pretrained.TFPreTrainedModel).

    model.compile(optimizer=..., metrics=[...])   # loss="auto" (default): the model's own loss
    model.fit(dataset)                            # labels in the input dict (labels, start_positions, ...) or as y
    model.fit(model.prepare_tf_dataset(rows, batch_size=8, tokenizer=tok))  # rows: a list of dicts, or any
                                                  # sequence of dicts (a Hugging Face datasets.Dataset too)

XLA: with ``compile(jit_compile=True)`` Keras would compile the whole train/test/predict step with
XLA, where TensorFlow drops the input assertions. Here each step validates its inputs and labels
first (model.validate_inputs, in the step's ordinary graph) and compiles the rest with XLA, so bad
ids and labels still fail with a readable message. ``model.jit_compile`` reads as set.

sample_weight / class_weight cannot weight the built-in loss: it is one number per batch, averaged
over the labelled targets as PyTorch's is. They raise a ValueError saying what to do instead
(IGNORE_INDEX -100 in the labels, or a Keras loss, which applies them).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from mobilebert_tf.inputs import LABEL_KEYS, in_xla_context, validated_before_xla

SAMPLE_WEIGHT_REFUSED = (
    "sample_weight (or class_weight) cannot weight {cls}'s built-in loss: it is one number per batch, averaged "
    "over the labelled targets as in PyTorch. Give ignored targets the label -100 instead, or compile with a "
    "Keras loss on the logits (compile(loss=...)), which applies sample_weight."
)


def _internal_loss(y_true, y_pred):
    # compile() routes the model's own loss through Keras' loss container as y_pred, so Keras keeps
    # its usual "loss" metric, regularisation losses and loss scaling.
    return tf.reduce_mean(y_pred)


def _without_keras_xla(model, step_runner):
    """step_runner (Keras' train/test/predict function) traced while Keras sees jit_compile False:
    our steps compile their own XLA part after validating (see the module docstring)."""
    if getattr(step_runner, "_mobilebert_validates_before_xla", False):
        return step_runner

    def run(*args, **kwargs):
        model._hide_jit_from_keras = True
        try:
            return step_runner(*args, **kwargs)
        finally:
            model._hide_jit_from_keras = False

    run._mobilebert_validates_before_xla = True
    return run


class TrainingMixin:
    def compile(self, optimizer="rmsprop", loss="auto", metrics=None, **kwargs):
        """loss="auto" (the default) or None: train on the model's own loss; labels go in the input dict
        (``labels``, or ``next_sentence_label`` / ``start_positions`` / ``end_positions``), or as y.
        Any other ``loss`` is a Keras loss applied to the logits."""
        self._uses_internal_loss = loss is None or (isinstance(loss, str) and loss == "auto")
        super().compile(optimizer=optimizer, loss=_internal_loss if self._uses_internal_loss else loss,
                        metrics=metrics, **kwargs)

    # ------------------------------------------------------------------ XLA around the steps
    @property
    def jit_compile(self):
        if getattr(self, "_hide_jit_from_keras", False):
            return False  # read by Keras' step wrappers while our own steps are traced
        return self._jit_compile

    @jit_compile.setter
    def jit_compile(self, value):
        keras.Model.jit_compile.fset(self, value)

    def make_train_function(self, force=False):
        return _without_keras_xla(self, super().make_train_function(force))

    def make_test_function(self, force=False):
        return _without_keras_xla(self, super().make_test_function(force))

    def make_predict_function(self, force=False):
        return _without_keras_xla(self, super().make_predict_function(force))

    def _run_step(self, step, x, *rest):
        """step(x, *rest), under XLA after validating x when compiled with jit_compile=True."""
        if not self._jit_compile or in_xla_context():
            return step(x, *rest)
        x = self.validate_inputs(x) if isinstance(x, dict) else self.validate_inputs(input_ids=x)
        with validated_before_xla():
            return tf.function(step, jit_compile=True, reduce_retracing=True)(x, *rest)

    # ------------------------------------------------------------------ the steps
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

    def _refuse_sample_weight(self, sample_weight) -> None:
        if sample_weight is not None and self._uses_internal_loss:
            raise ValueError(SAMPLE_WEIGHT_REFUSED.format(cls=type(self).__name__))

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
        self._refuse_sample_weight(sample_weight)
        x, y = self._with_labels(x, y)

        def step(x, y, sample_weight):
            with tf.GradientTape() as tape:
                loss, out = self._loss_and_logits(x, y, sample_weight, training=True)
            self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
            return self._metric_results(x, y, out, sample_weight)

        return self._run_step(step, x, y, sample_weight)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        self._refuse_sample_weight(sample_weight)
        x, y = self._with_labels(x, y)

        def step(x, y, sample_weight):
            _, out = self._loss_and_logits(x, y, sample_weight, training=False)
            return self._metric_results(x, y, out, sample_weight)

        return self._run_step(step, x, y, sample_weight)

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, dict):
            x = {k: v for k, v in x.items() if k not in LABEL_KEYS}

        def step(x):
            out = self(x, training=False, return_dict=True)
            return {k: v for k, v in out.items() if isinstance(v, tf.Tensor)}

        return self._run_step(step, x)

    # ------------------------------------------------------------------ datasets (transformers' prepare_tf_dataset)
    def prepare_tf_dataset(self, dataset, batch_size: int = 8, shuffle: bool = True, tokenizer=None, collate_fn=None,
                           collate_fn_args=None, drop_remainder=None, prefetch: bool = True, seed=None) -> tf.data.Dataset:
        """A tf.data.Dataset of dict batches for fit / evaluate / predict, as transformers' method gives.

        ``dataset``: a sequence of row dicts: a list of dicts, or any object with ``__len__`` and
        ``__getitem__(i)`` returning a dict, as a Hugging Face ``datasets.Dataset`` is (the ``datasets``
        package is not needed). Only the columns the model takes are kept ("label" / "label_ids" become
        "labels", as transformers' collators rename them). Rows are joined by ``collate_fn(rows,
        **collate_fn_args)`` -> dict of arrays; by default ``tokenizer.pad(rows, return_tensors="np")``
        with a tokenizer, else stacked (rows must then have one length). drop_remainder defaults to shuffle.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__") or isinstance(dataset, (str, dict)):
            raise ValueError(f"dataset must be a sequence of row dicts (a list of dicts, or an object with __len__ and "
                             f"__getitem__ such as a datasets.Dataset), got {type(dataset).__name__}")
        if len(dataset) == 0:
            raise ValueError("dataset is empty: there is nothing to batch")
        wanted = set(self.call_input_names) | set(self.label_names)
        renamed = {"label": "labels", "label_ids": "labels"}

        def row(i: int) -> dict:
            item = dataset[i]
            if not isinstance(item, dict):
                raise ValueError(f"dataset[{i}] is a {type(item).__name__}; each row must be a dict of columns")
            item = {renamed.get(k, k): v for k, v in item.items()}
            return {k: v for k, v in item.items() if k in wanted}

        if collate_fn is None:
            collate_fn = _pad_with(tokenizer) if tokenizer is not None else _stack_rows
        collate_args = dict(collate_fn_args or {})
        drop = shuffle if drop_remainder is None else drop_remainder
        if drop and len(dataset) < batch_size:
            raise ValueError(f"the dataset has {len(dataset)} rows, fewer than batch_size={batch_size}, and "
                             "drop_remainder drops them all; use a smaller batch_size or drop_remainder=False")
        order = np.random.default_rng(seed)

        def batches():
            ids = order.permutation(len(dataset)) if shuffle else np.arange(len(dataset))
            stop = len(ids) - len(ids) % batch_size if drop else len(ids)
            for start in range(0, stop, batch_size):
                batch = collate_fn([row(int(i)) for i in ids[start:start + batch_size]], **collate_args)
                yield {k: np.asarray(v) for k, v in batch.items() if k in wanted}

        first = next(batches())
        signature = {k: tf.TensorSpec([None] * v.ndim, tf.as_dtype(v.dtype), name=k) for k, v in first.items()}
        data = tf.data.Dataset.from_generator(batches, output_signature=signature)
        return data.prefetch(tf.data.AUTOTUNE) if prefetch else data


def _pad_with(tokenizer):
    def collate(rows):
        return dict(tokenizer.pad(rows, padding=True, return_tensors="np"))
    return collate


def _stack_rows(rows: list) -> dict:
    """The default collate without a tokenizer: each column stacked (rows of one length)."""
    out = {}
    for key in rows[0]:
        values = [np.asarray(r[key]) for r in rows]
        if len({v.shape for v in values}) != 1:
            raise ValueError(f"column {key!r} has rows of different lengths {sorted({v.shape for v in values})}; pass "
                             "tokenizer= (rows padded per batch) or pad when tokenizing (padding='max_length')")
        out[key] = np.stack(values)
    return out
