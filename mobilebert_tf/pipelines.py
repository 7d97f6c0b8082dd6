"""pipeline(): the Keras half of the task pipelines.

All pre- and post-processing and the branch on the task's head live in mobilebert_common/pipeline_*.py,
shared with the PyTorch pipelines; this file only loads the Keras model, makes the few framework
calls a forward pass is made of (on the chosen device) and brings numpy back.

    pipe = pipeline("fill-mask", model="google/mobilebert-uncased")
    pipe("The capital of France is [MASK].")
"""

from __future__ import annotations

import os
from typing import Dict

import numpy as np
import tensorflow as tf
import tf_keras as keras

from mobilebert_common.devices import dtype_name, parse_device
from mobilebert_common.pipelines.sentence_tasks import mask_grid
from mobilebert_common.pipelines.driver import PipelineBase, check_head, describe_device, load_tokenizer
from mobilebert_common.pipelines.registry import HEAD_CLASSES, normalize_task
from mobilebert_tf import modeling

# dtype name -> Keras mixed-precision policy (variables stay float32, computation in the named dtype).
POLICIES = {"float32": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def resolve_tf_device(device, cli: bool = False) -> str:
    """None / -1 / "cpu" -> "/CPU:0"; N, "gpu:N" or "cuda:N" (parsed by mobilebert_common.devices) -> "/GPU:N",
    checked to exist. Errors name the argument the user wrote: device=... (or --device ... from the CLI)."""
    said, cpu = describe_device(device, cli)
    kind, index = parse_device(device, said)
    if kind == "cpu":
        return "/CPU:0"
    gpus = tf.config.list_physical_devices("GPU")
    if index >= len(gpus):
        raise ValueError(f"{said} asks for GPU {index}, but TensorFlow sees {len(gpus)} GPU(s). Use {cpu}, or install a GPU build of TensorFlow.")
    return f"/GPU:{index}"


def policy_dtype(dtype) -> str:
    """None -> "float32"; a dtype's name in any spelling (mobilebert_common.devices), a tf.DType or a torch dtype."""
    if dtype is None:
        return "float32"
    if isinstance(dtype, str) and dtype == "float16-mixed":
        raise ValueError(
            "dtype='float16-mixed' is offered by the PyTorch pipeline only (it reroutes torch's linear layers); "
            "for Keras use 'bfloat16' (float32's range) or 'float32'"
        )
    name = dtype_name(dtype)
    if name is None:
        raise ValueError(f"dtype={dtype!r} is not supported; allowed: None, 'float32', 'bfloat16', 'float16'")
    return name


def logits_at(model, batch: Dict[str, tf.Tensor], grid: tf.Tensor, at: tf.Tensor) -> tf.Tensor:
    """(N, V) vocabulary logits: the masked-LM head run at grid (B, P) (mask_positions), then the
    N entries at (N, 2) places (row, slot) of that grid. Eager or inside a tf.function."""
    out = model(**batch, mask_positions=grid, return_dict=True, training=False)
    # (B, P, V); TFMobileBertForPreTraining (which fill-mask also takes) calls them prediction_logits
    logits = out["prediction_logits"] if "prediction_logits" in out else out["logits"]
    return tf.gather_nd(logits, at)  # (N, V)


def grid_and_places(positions: np.ndarray, batch_size: int):
    """Positions (N, 2) of (row, column) -> the head's mask_positions grid (B, P) and the (N, 2) int64
    places (row, slot) of the masks in it (mobilebert_common.pipelines.sentence_tasks.mask_grid)."""
    grid, slots = mask_grid(positions, batch_size)
    return grid, np.stack([positions[:, 0], slots], axis=1).astype(np.int64)


def gathered_masked_logits(model, batch: Dict[str, tf.Tensor], positions: np.ndarray) -> tf.Tensor:
    """Vocabulary logits at the masked positions only: (N, V) for positions (N, 2) of (row, column).

    The model's masked-LM head runs at the masks only (mask_positions), so the (H x V) projection
    costs about N rows instead of B*T. Same numbers as tf.gather_nd(model(**batch).logits, positions).
    """
    grid, places = grid_and_places(positions, int(batch["attention_mask"].shape[0]))
    return logits_at(model, batch, tf.constant(grid), places)


def padded_inputs(model, batch: Dict[str, np.ndarray]) -> Dict[str, tf.Tensor]:
    """Model inputs for a right-padded batch (numpy arrays or tensors), with the padding's word
    embeddings set to zero: the trigram embedding mixes neighbours, so this makes a batched row
    exactly the row run alone, whatever the checkpoint's [PAD] embedding holds (see mobilebert_pt/pipelines.py)."""
    table = model.mobilebert.embeddings.word_embeddings  # (V, E)
    mask = tf.convert_to_tensor(batch["attention_mask"])
    embeds = tf.gather(table, tf.convert_to_tensor(batch["input_ids"]))  # (B, T, E)
    embeds = embeds * tf.cast(mask, embeds.dtype)[..., None]
    return {"inputs_embeds": embeds, "attention_mask": mask, "token_type_ids": tf.convert_to_tensor(batch["token_type_ids"])}


BATCH_NAMES = ("input_ids", "attention_mask", "token_type_ids")
ROWS = tf.TensorSpec([None, None], tf.int64)  # (B, T) of the padded batch (driver.pad), or the mask grid (B, P)


def forward_function(model, head: str):
    """A pipeline's forward pass for a task head (driver.PipelineBase._forward) as one tf.function of
    the padded int64 batch (input_ids, attention_mask, token_type_ids, each (B, T)) and, for
    masked_lm, the mask grid (B, P) and the (N, 2) places of the masks in it.

    Every dimension is None in the signature, so it traces once: batches of any size, length and
    number of masks run the same graph. Eagerly, each of the thousands of ops of a released-size
    forward (12,000 in the graph) is a Python call: fill-mask on 128 sentences at batch 8 ran at 8
    sentences/s eagerly, 27-33 in this function (2-core CPU, interleaved: 3.5-6x). The model's input
    checks run as graph assertions (KerasPipeline._run raises them as ValueErrors again).
    """
    def inputs(ids, mask, types):
        return padded_inputs(model, dict(zip(BATCH_NAMES, (ids, mask, types))))

    if head == "masked_lm":
        def forward(ids, mask, types, grid, at):
            return logits_at(model, inputs(ids, mask, types), grid, at)  # (N, V)

        return tf.function(forward, input_signature=[ROWS] * 4 + [tf.TensorSpec([None, 2], tf.int64)])
    if head == "features":
        def forward(ids, mask, types):
            backbone = getattr(model, "mobilebert", model)
            return backbone(input_ids=None, **inputs(ids, mask, types), return_dict=True, training=False).last_hidden_state
    else:
        def forward(ids, mask, types):
            return model(**inputs(ids, mask, types), return_dict=True, training=False)
    return tf.function(forward, input_signature=[ROWS] * 3)


def assertion_message(err: tf.errors.InvalidArgumentError) -> str:
    """The reason a failed graph assertion gives, without TensorFlow's trace around it: err.message is
    "Graph execution error:\n\nDetected at node ...\n\n<reason>\n\t [[{{node ...}}]] [Op:...]"."""
    reason = err.message.split("\n\t [[")[0].rsplit("\n\n", 1)[-1]
    return reason.removeprefix("assertion failed: ")


class KerasPipeline(PipelineBase):
    framework = "tf"

    def __init__(self, task, model, tokenizer, *, device: str, **kwargs):
        self.device = device
        super().__init__(task, model, tokenizer, model.config, **kwargs)
        self._function, self._traced_table = None, None  # see forward

    @property
    def dtype_name(self) -> str:
        return self.model.compute_dtype

    @property
    def forward(self):
        """The tf.function every batch runs (forward_function). Built again only when the model's
        word-embedding table is a new variable (set_input_embeddings, resize_token_embeddings): a
        traced graph keeps the variables it was traced with."""
        table = self.model.mobilebert.embeddings.weight
        if self._function is None or self._traced_table is not table:
            self._function, self._traced_table = forward_function(self.model, self.task.head), table
        return self._function

    def _run(self, *args):
        try:
            return self.forward(*args)
        except tf.errors.InvalidArgumentError as err:
            # The model's checks are assertions in a graph (float16 overflow, ...): the ValueError an eager call raises.
            raise ValueError(assertion_message(err)) from None

    def _to_tensor(self, array: np.ndarray):
        return tf.convert_to_tensor(array)

    def _running(self):
        return tf.device(self.device)

    def _model_inputs(self, batch):
        return [tf.convert_to_tensor(batch[name]) for name in BATCH_NAMES]

    def _masked_logits(self, inputs, positions):
        return self._run(*inputs, *grid_and_places(positions, int(inputs[0].shape[0])))

    def _hidden_states(self, inputs):
        return self._run(*inputs)

    def _call_model(self, inputs):
        return self._run(*inputs)

    def _numpy(self, value) -> np.ndarray:
        return tf.cast(value, tf.float32).numpy()


def head_class(task: str):
    """The class a task loads (modeling.py), by the name in mobilebert_common.pipelines.registry.HEAD_CLASSES."""
    return getattr(modeling, "TF" + HEAD_CLASSES[task])


def check_model_dtype(model, wanted) -> None:
    """A model object keeps its dtype (as in the PyTorch pipeline): dtype may only confirm it."""
    if wanted is None:
        return
    name = policy_dtype(wanted)
    if name != model.compute_dtype:
        raise ValueError(
            f"dtype={wanted!r} but the model object computes in {model.compute_dtype}: the pipeline does not change the "
            "dtype of a model you pass. Build it under keras.mixed_precision.set_global_policy(...) yourself, or pass "
            "a directory / repo id with dtype"
        )


def pipeline(task: str, model=None, tokenizer=None, device=None, torch_dtype=None, batch_size: int = 1,
             progress: bool = False, dtype=None, model_kwargs: dict = None, **kwargs) -> KerasPipeline:
    """A pipeline for ``task`` on a Keras MobileBERT; the same tasks, parameters and results as
    mobilebert_pt.pipeline.

    model:     a directory / hub repo id (tf_model.h5, or model.safetensors converted with from_pt), or
               a model object of the task's TF class
    device:    None, -1 or "cpu"; N, "gpu:N" or "cuda:N" for a GPU
    dtype:     None / "float32", "bfloat16", "float16" (a Keras mixed-precision policy while loading);
               torch_dtype= is accepted as a synonym so the two pipelines take the same arguments.
               ("float16-mixed" is PyTorch-only: Keras' mixed_float16 policy computes everything,
               residual adds included, in float16.)

    A MODEL OBJECT is used as it is (as in mobilebert_pt.pipeline): its dtype is never changed, so
    dtype must be None or the dtype it computes in, else ValueError.
    """
    name = normalize_task(task)
    if model is None:
        raise ValueError(f"pipeline({name!r}) needs model=: a directory, a hub repo id or a model object")
    if dtype is not None and torch_dtype is not None:
        raise ValueError("pass dtype or torch_dtype, not both")
    wanted = dtype if dtype is not None else torch_dtype
    dev = resolve_tf_device(device)
    source = None
    if isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        cls = head_class(name)
        model_kwargs = dict(model_kwargs or {})
        if not os.path.isfile(os.path.join(source, "tf_model.h5")) and os.path.isfile(os.path.join(source, "model.safetensors")):
            model_kwargs.setdefault("from_pt", True)  # a PyTorch-only directory: convert on load
        policy = POLICIES[policy_dtype(wanted)]
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(policy)
        try:
            with tf.device(dev):
                model = cls.from_pretrained(source, **model_kwargs)
        finally:
            keras.mixed_precision.set_global_policy(previous)
    elif isinstance(model, keras.Model):
        check_head(name, model, "TF")
        if model_kwargs:
            raise ValueError("model_kwargs applies only when model is a directory or repo id")
        check_model_dtype(model, wanted)
        with tf.device(dev):
            model.build_with_dummies()  # a model never called yet has no variables for the pipeline to read
    else:
        raise ValueError(f"model must be a directory, a hub repo id or a Keras MobileBERT model, got {type(model).__name__}")
    tokenizer = load_tokenizer(tokenizer, source)
    return KerasPipeline(name, model, tokenizer, device=dev, batch_size=batch_size, progress=progress, **kwargs)
