"""Serving the Keras models: tf.function signatures, XLA, SavedModel export (a mixin of pretrained.TFPreTrainedModel).

    model.serving_spec(dtype)                  # {input_ids, attention_mask, token_type_ids: TensorSpec (None, None)}
    model.serving_function(dtype, jit_compile) # concrete function -> {output name: tensor}
    model.export_saved_model(dir) / export     # SavedModel: serving_default (int64) and serving_int32

Signatures: a SavedModel signature is one concrete function with fixed input dtypes, so no single
signature takes both int32 and int64 (TF Serving and the C++ loader look a signature up by name and
feed it exactly its dtypes). serving_default takes int64, what TF Serving clients, tf.train.Example
parsing and TF Text tokenizers produce; serving_int32 takes int32 (what this package's tokenizers
return with return_tensors="tf"). In Python, the restored ``loaded.serving(...)`` takes either dtype.
``tf.saved_model.save(model, dir)`` and ``model.save(dir, save_format="tf")`` get the int64
serving_default too (the model's save spec). All three inputs are required (a signature has no
optional inputs): pass attention_mask ones and token_type_ids zeros for plain single sentences.
"""

from __future__ import annotations

import os

import tensorflow as tf

from mobilebert_tf.inputs import check_finite, validated_before_xla

SERVING_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class ServingMixin:
    def serving_spec(self, dtype=tf.int64) -> dict:
        """TensorSpecs of the serving inputs: (batch, seq), or (batch, choices, seq) for multiple choice; None dims."""
        rank = self.dummy_inputs[self.main_input_name].shape.rank  # the rank the model's class takes
        return {name: tf.TensorSpec([None] * rank, tf.as_dtype(dtype), name=name) for name in SERVING_INPUTS}

    def serving_function(self, dtype=tf.int64, jit_compile: bool = False) -> tf.types.experimental.ConcreteFunction:
        """A concrete function over input_ids, attention_mask, token_type_ids of ``dtype`` (any batch, any
        length) returning the output's tensors as a dict.

        jit_compile=True runs the model under XLA, after validating the inputs in the calling graph
        (TensorFlow drops assertions inside XLA): bad ids still fail with a readable message.
        """

        def outputs(input_ids, attention_mask, token_type_ids):
            out = self(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                       training=False, return_dict=True)
            return {k: v for k, v in out.items() if isinstance(v, tf.Tensor)}

        compiled = tf.function(outputs, jit_compile=True)

        def checked_then_xla(input_ids, attention_mask, token_type_ids):
            checked = self.validate_inputs(input_ids=input_ids, attention_mask=attention_mask,
                                           token_type_ids=token_type_ids)
            with validated_before_xla():
                out = compiled(*(checked[name] for name in SERVING_INPUTS))
            return {k: check_finite(v) for k, v in out.items()}  # float16 overflow: checked after XLA

        self.build_with_dummies()
        serving = checked_then_xla if jit_compile else outputs
        return tf.function(serving).get_concrete_function(**self.serving_spec(dtype))

    def export_saved_model(self, export_dir: str | os.PathLike) -> str:
        """A SavedModel with signatures serving_default (int64 inputs) and serving_int32, and a ``serving``
        function that takes either dtype; loadable with tf.saved_model.load without this package."""
        self.build_with_dummies()
        int64, int32 = self.serving_function(tf.int64), self.serving_function(tf.int32)
        module = tf.Module()
        # Track the variables only (not the Keras object): the SavedModel then holds plain functions.
        module.model_variables = list(self.weights)

        @tf.function
        def serving(input_ids, attention_mask, token_type_ids):
            fn = int64 if input_ids.dtype == tf.int64 else int32
            return fn(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)

        for dtype in (tf.int64, tf.int32):
            serving.get_concrete_function(**self.serving_spec(dtype))
        module.serving = serving
        export_dir = os.fspath(export_dir)
        tf.saved_model.save(module, export_dir, signatures={"serving_default": int64, "serving_int32": int32})
        return export_dir

    def export(self, filepath, **kwargs):
        """Keras' ``model.export``: the SavedModel of ``export_saved_model`` (Keras' own export traces the
        model's call with its Keras arguments; this one has the serving signatures above)."""
        if kwargs:
            raise ValueError(f"export takes only a path here; got {sorted(kwargs)}")
        return self.export_saved_model(filepath)
