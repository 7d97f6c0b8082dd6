"""TensorFlow Lite (LiteRT) export of the Keras models, checked in the LiteRT interpreter:
``export_tflite`` and `mobilebert export --format tflite`.

    from mobilebert_tf import export_tflite
    export_tflite("google/mobilebert-uncased", "fill-mask", "mobilebert.tflite", seq_len=128)

The framework-free flow (arguments, probe batch, parity, report, all-or-nothing write) is
mobilebert_common.export; this module loads the Keras model, converts it and runs the file.

Conversion: tf.lite.TFLiteConverter from the concrete function of a tf.function over int32
input_ids, attention_mask, token_type_ids of shape (None, seq_len) (multiple choice: (None,
None, seq_len)), so any batch size; (None, None) with dynamic=True. The model's input checks
are tf.debugging assertions in a graph; the converter drops Assert ops (LiteRT has none) and the
ops that only fed them, so the model converts to builtin ops, and the checks are the caller's to
run on the host. Where builtin ops cannot express an op (TensorFlow's strided slices that add
axes, on a sequence length unknown at conversion), the conversion is redone with SELECT_TF_OPS
and says so: such a file needs the Flex delegate in the app, which the Python LiteRT interpreter
lacks, so its parity cannot be checked here and nothing is written.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras

from mobilebert_common.export import (
    INPUT_NAMES,
    ExportPlan,
    ExportResult,
    check_head_weights,
    load_options,
    plan_export,
    quiet_loading,
    require,
    run_export,
)
from mobilebert_common.quantization import DYNAMIC_INT8, FLOAT16, NONE
from mobilebert_tf import modeling  # the task classes; not through the package, whose export_tflite is this module's

SIGNATURE = "serving_default"
_NOT_BUILTIN = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")


def export_tflite(model, task: str, out, *, seq_len: Optional[int] = None, dynamic: bool = False, quantize: str = NONE,
                  force: bool = False, log: Callable[[str], None] = print, hub_kwargs: Optional[dict] = None) -> ExportResult:
    """Export the ``task`` head of checkpoint ``model`` (a directory or hub repo id) to the TFLite file ``out``.

    Signature "serving_default": int32 inputs input_ids, attention_mask, token_type_ids ((batch,
    seq), multiple-choice (batch, choices, seq)), outputs under the model's names (logits,
    start_logits / end_logits, ...). Any batch size; sequence length ``seq_len`` (default 128, at
    most max_position_embeddings) or any with ``dynamic=True``. ``quantize``: see
    mobilebert_common.quantization. The file is written only when it runs in the LiteRT
    interpreter and, in float32, reproduces the Keras model within relative 1e-4 on a probe batch
    (printed through ``log``); an existing ``out`` needs ``force=True``.
    """
    plan = plan_export("tflite", model, task, out, seq_len=seq_len, dynamic=dynamic, quantize=quantize, force=force,
                       hub_kwargs=hub_kwargs)
    interpreter_class(log)  # before any work: which runtime checks the file (or which package is missing)
    return run_export(plan, TFLiteBackend(hub_kwargs), log=log, hub_kwargs=hub_kwargs)


def interpreter_class(log: Optional[Callable[[str], None]] = None):
    """LiteRT's Interpreter (pip install ai-edge-litert), else TensorFlow's own tf.lite.Interpreter."""
    try:
        return require("ai_edge_litert.interpreter", "ai-edge-litert", "LiteRT").Interpreter
    except ImportError:
        if not hasattr(tf.lite, "Interpreter"):
            raise
    if log is not None:
        log("tflite: ai-edge-litert is not installed; checking the export in tf.lite.Interpreter "
            "(pip install ai-edge-litert for the LiteRT runtime)")
    return _tf_interpreter


def _tf_interpreter(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*tf.lite.Interpreter is deprecated.*")  # said once, above
        return tf.lite.Interpreter(*args, **kwargs)


def signature_runner(path: str, num_threads: Optional[int] = None):
    """The export's serving_default signature in the interpreter: call it with int32 arrays by input name."""
    interpreter = interpreter_class()(model_path=path, num_threads=num_threads)
    return interpreter.get_signature_runner(SIGNATURE)


@contextlib.contextmanager
def float32_policy():
    """The source model in float32 whatever Keras' global mixed-precision policy is."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


class TFLiteBackend:
    def __init__(self, hub_kwargs: Optional[dict] = None):
        self.hub_kwargs = dict(hub_kwargs or {})

    def load(self, plan: ExportPlan) -> keras.Model:
        cls = getattr(modeling, "TF" + plan.class_name)
        with quiet_loading(), float32_policy():
            model, info = cls.from_pretrained(plan.source, output_loading_info=True,
                                              **load_options(plan.source, "tf", self.hub_kwargs), **self.hub_kwargs)
        check_head_weights(plan, info["missing_keys"])
        return model

    def run_source(self, model, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        out = model({k: tf.constant(v) for k, v in inputs.items()}, training=False, return_dict=True)
        return {name: np.asarray(value) for name, value in out.items() if isinstance(value, tf.Tensor)}

    def convert(self, model, plan: ExportPlan, path: str, log: Callable[[str], None]) -> None:
        data = tflite_model(model, plan, log)
        with open(path, "wb") as f:
            f.write(data)

    def run_exported(self, path: str, plan: ExportPlan, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        try:
            runner = signature_runner(path)
            out = runner(**{name: inputs[name].astype(np.int32) for name in INPUT_NAMES})
        except (RuntimeError, ValueError) as err:
            if "Select TensorFlow op" not in str(err):
                raise
            raise ValueError(
                "the export needs TensorFlow ops through SELECT_TF_OPS (the Flex delegate), which this LiteRT "
                "interpreter does not have, so its parity cannot be checked; nothing written. Export with a fixed "
                "sequence length (--seq-len N, any batch size) for builtin ops only"
            ) from None
        return {name: out[name] for name in plan.output_names}


def serving_function(model: keras.Model, plan: ExportPlan):
    """The concrete function the converter reads: int32 inputs, (None, [None,] seq_len) or all None when dynamic."""
    shape = [None] * (len(plan.input_layout) - 1) + [plan.seq_len]
    spec = {name: tf.TensorSpec(shape, tf.int32, name=name) for name in INPUT_NAMES}

    @tf.function(autograph=False)  # the model's Python branches are on Python values; autograph would double the tracing
    def serve(input_ids, attention_mask, token_type_ids):
        out = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                    training=False, return_dict=True)
        return {name: out[name] for name in plan.output_names}

    return serve.get_concrete_function(**spec)


def tflite_model(model: keras.Model, plan: ExportPlan, log: Callable[[str], None]) -> bytes:
    function = serving_function(model, plan)
    # The converter saves its trackable object as a SavedModel first: a plain module holding the
    # variables takes a second, where the Keras model itself (every layer traced anew) takes ten.
    holder = tf.Module()
    holder.model_variables = list(model.weights)

    def converter(select_tf_ops: bool) -> tf.lite.TFLiteConverter:
        c = tf.lite.TFLiteConverter.from_concrete_functions([function], holder)
        if plan.quantize in (DYNAMIC_INT8, FLOAT16):
            c.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative dataset: dynamic range (int8 weights)
        if plan.quantize == FLOAT16:
            c.target_spec.supported_types = [tf.float16]
        if select_tf_ops:
            c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        return c

    try:
        data = converter(select_tf_ops=False).convert()
    except Exception as err:  # the converter's ConverterError is not public API; recognised by its message
        ops = sorted(set(_NOT_BUILTIN.findall(str(err))))
        if not ops:
            raise
        log(f"tflite: builtin ops cannot express tf.{', tf.'.join(ops)} in this graph: converting with SELECT_TF_OPS "
            "(the app must link the Flex delegate)")
        data = converter(select_tf_ops=True).convert()
    else:
        log("tflite: builtin ops only (the model's tf.debugging input assertions were dropped by the converter: "
            "LiteRT has no Assert op)")
    return data
