"""Input checks of the Keras models: readable errors eagerly, in graphs (tf.function, SavedModel) and,
as far as possible, around XLA; and the 16-bit numerics: check_finite (no silent float16 overflow
in an output) and wide_dtype (softmax and losses in float32).

Eagerly every check is a ValueError with the same wording as PyTorch (mobilebert_common.checks).
In a graph, what the static shapes already show is a ValueError at trace time; the rest becomes
tf.debugging assertions that every input depends on, so they run before any kernel (TF's gather
returns zeros for out-of-range ids on GPU instead of failing).

XLA: TensorFlow drops tf.debugging assertions inside an XLA-compiled function (jit_compile=True)
and an XLA program cannot raise. So (a) where this package compiles (Keras fit/evaluate/predict
after ``compile(jit_compile=True)``, ``serving_function(jit_compile=True)``) the inputs are
validated by ``validate_inputs`` in the calling graph, before XLA; (b) a model traced inside
someone else's XLA function warns once (XLA_CHECKS_SKIPPED) saying how to validate; (c) there,
out-of-range ids and labels give NaN (never plausible numbers: XLA's gather would clamp them).
What remains: inside such a function nothing can raise, so a bad input is a NaN there, and a
float16 overflow too. Auto-clustering (tf.config.optimizer.set_jit) is not affected: TensorFlow
registers Assert for must-compile XLA only, so the assertions stay outside its clusters and run.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from typing import Optional

import numpy as np
import tensorflow as tf

from mobilebert_common import checks
from mobilebert_common.config import MobileBertConfig

try:  # TF's own test for "inside an XLA-compiled function" (the graph or one of its outer graphs)
    from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext as _graph_in_xla
except ImportError:  # pragma: no cover - tests/test_tf_keras.py fails loudly if this ever disappears
    _graph_in_xla = None

FLAGS = ("output_attentions", "output_hidden_states", "return_dict")
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask", "inputs_embeds") + FLAGS
LABEL_KEYS = ("labels", "next_sentence_label", "start_positions", "end_positions")

XLA_CHECKS_SKIPPED = (
    "MobileBERT is being traced inside an XLA-compiled function (jit_compile=True). TensorFlow drops "
    "tf.debugging assertions inside XLA, so the model's input checks (ids within the vocabulary, at most "
    "max_position_embeddings tokens, matching shapes, labels in range, no float16 overflow) cannot run there: "
    "out-of-range ids or labels give NaN outputs or a NaN loss instead of an error. Validate outside the compiled function, e.g. "
    "`inputs = model.validate_inputs(inputs)` in the calling (non-XLA) code, or run the model once without XLA. "
    "Keras fit/evaluate/predict after compile(jit_compile=True) and model.serving_function(jit_compile=True) "
    "already validate before entering XLA."
)

_state = threading.local()
_warned_xla = False


def in_xla_context() -> bool:
    """True while tracing inside an XLA-compiled function (checked at trace time)."""
    if tf.executing_eagerly() or _graph_in_xla is None:
        return False
    return bool(_graph_in_xla(tf.compat.v1.get_default_graph()))


@contextlib.contextmanager
def validated_before_xla():
    """Marks the tracing of an XLA function whose inputs were validated in the calling graph: no warning."""
    previous = getattr(_state, "validated", False)
    _state.validated = True
    try:
        yield
    finally:
        _state.validated = previous


def warn_if_unchecked_xla() -> bool:
    """In an XLA context: warn once per process (unless validated before XLA). Returns whether in XLA."""
    global _warned_xla
    if not in_xla_context():
        return False
    if not getattr(_state, "validated", False) and not _warned_xla:
        _warned_xla = True
        warnings.warn(XLA_CHECKS_SKIPPED, UserWarning, stacklevel=3)
    return True


# The tensors a list or tuple first argument gives, in this order (transformers' TF positional inputs).
POSITIONAL_NAMES = INPUT_NAMES[:6]


def _is_positional(value) -> bool:
    """A list/tuple of tensors or arrays: the inputs in order. A (nested) list of Python ints stays input_ids."""
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(v, (tf.Tensor, tf.Variable, np.ndarray)) or v is None for v in value)


def unpack_inputs(input_ids, kwargs: dict, allowed: tuple) -> dict:
    """The call's arguments as one dict: a dict first argument (as model.fit passes it) is spread out; a list or
    tuple of tensors/arrays is read as (input_ids, attention_mask, token_type_ids, position_ids, head_mask,
    inputs_embeds), in that order, as ``model([input_ids, attention_mask])`` in transformers."""
    if _is_positional(input_ids):
        if len(input_ids) > len(POSITIONAL_NAMES):
            raise ValueError(f"got {len(input_ids)} positional inputs in a list; at most {len(POSITIONAL_NAMES)} "
                             f"({', '.join(POSITIONAL_NAMES)}, in that order): pass the others by name, or a dict")
        input_ids = {name: value for name, value in zip(POSITIONAL_NAMES, input_ids) if value is not None}
    if isinstance(input_ids, dict):
        given = dict(input_ids)
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            raise ValueError(f"unexpected input names {unknown}; allowed: {', '.join(allowed)}")
        clash = sorted(k for k in given if kwargs.get(k) is not None)
        if clash:
            raise ValueError(f"{clash} given both in the input dict and as arguments; give each once")
        # input_ids stays a key (None with inputs_embeds): Keras requires a layer's first argument.
        kwargs = {**kwargs, "input_ids": None, **{k: v for k, v in given.items() if v is not None}}
    else:
        kwargs = {**kwargs, "input_ids": input_ids}
    # Tensor-valued inputs may come as numpy arrays or lists; flags stay Python values.
    return {k: (_as_tensor(k, v) if v is not None and k not in FLAGS else v) for k, v in kwargs.items()}


def _as_tensor(name: str, value) -> tf.Tensor:
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return tf.convert_to_tensor(value)
    if isinstance(value, (str, bytes)):  # text, not ids: say so (as PyTorch), not a rank error on a string scalar
        raise checks.not_a_tensor(name, "tf.Tensor", type(value).__name__)
    try:
        return tf.convert_to_tensor(np.asarray(value) if isinstance(value, (list, tuple)) else value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} could not be made a tensor ({err}); pass a tensor, a numpy array or a rectangular "
                         "list of lists (pad every sequence to one length, e.g. tokenizer(..., padding=True))") from None


# ---------------------------------------------------------------------------------------- graph-mode helpers


class Checks:
    """Collects the run-time assertions of one call (none eagerly: there every check raises at once, and
    none inside XLA, which would drop them). ``attach`` makes tensors depend on all of them."""

    def __init__(self):
        self.dynamic = not tf.executing_eagerly() and not in_xla_context()
        self.asserts = []

    def require(self, condition, message: str, *data) -> None:
        """condition: scalar bool tensor; message (and data tensors) make the InvalidArgumentError's text."""
        if self.dynamic:
            self.asserts.append(tf.debugging.Assert(condition, [message, *data], name="mobilebert_input_check"))

    def gate(self, t: tf.Tensor, condition, message: str) -> tf.Tensor:
        """require(condition), and t made to wait for it: for checks that guard the very next op on t
        (a reshape that would otherwise fail first with TF's own message)."""
        self.require(condition, message)
        if not self.asserts:
            return t
        with tf.control_dependencies(self.asserts[-1:]):
            return tf.identity(t)

    def attach(self, tensors: dict) -> dict:
        if not self.asserts:
            return tensors
        with tf.control_dependencies(self.asserts):
            return {k: (tf.identity(v) if isinstance(v, tf.Tensor) else v) for k, v in tensors.items()}


def shape_is(t: tf.Tensor, allowed) -> tf.Tensor:
    """Scalar bool: t's run-time shape is one of ``allowed`` (lists of ints or scalar tensors). Works for any rank."""
    shape = tf.shape(t, out_type=tf.int64)
    width = 5
    padded = tf.concat([shape, tf.fill([width], tf.constant(-1, tf.int64))], 0)[:width]
    matches = []
    for option in allowed:
        dims = [tf.cast(d, tf.int64) for d in option] + [tf.constant(-1, tf.int64)] * (width - len(option))
        matches.append(tf.logical_and(tf.size(shape) == len(option), tf.reduce_all(tf.equal(padded, tf.stack(dims)))))
    return tf.reduce_any(tf.stack(matches))


def with_rank(name: str, t: tf.Tensor, rank: int, layout: str, found: Checks) -> tf.Tensor:
    """A ValueError for a known wrong rank; an unknown rank (graph) is checked at run time and then set."""
    if t.shape.rank is not None:
        checks.check_rank(name, t.shape.as_list(), rank, layout)
        return t
    t = found.gate(t, tf.equal(tf.rank(t), rank), f"{name} must have {rank} dimensions {layout}")
    t.set_shape([None] * rank)  # the assertion above guards this
    return t


def _static(shape: tf.TensorShape) -> Optional[tuple]:
    return tuple(shape.as_list()) if shape.rank is not None and shape.is_fully_defined() else None


def _same_shape(name: str, t: tf.Tensor, reference: tf.Tensor, found: Checks, of: str = "input_ids") -> None:
    """t must have reference's shape (reference's rank is known): static differences raise now, the rest at run time."""
    if t.shape.rank is not None:
        dims, ref = t.shape.as_list(), reference.shape.as_list()
        if len(dims) != len(ref) or any(a is not None and b is not None and a != b for a, b in zip(dims, ref)):
            checks.check_same_shape(name, dims, ref, of=of)
        if None not in dims and None not in ref:
            return
    found.require(shape_is(t, [tf.unstack(tf.shape(reference, out_type=tf.int64))]),
                  f"{name} must have the same shape as {of}")


def _require_integer(name: str, t: tf.Tensor) -> None:
    checks.check_integer_ids(name, t.dtype.is_integer, t.dtype.name)


def _check_finite(name: str, t: tf.Tensor, found: Checks) -> None:
    """A float input with NaN/inf would make every logit NaN: one reduction to say so (integers are always finite)."""
    if not t.dtype.is_floating:
        return
    if tf.executing_eagerly():
        checks.check_finite_input(name, bool(tf.reduce_all(tf.math.is_finite(t))))
    else:
        found.require(tf.reduce_all(tf.math.is_finite(t)), checks.non_finite_message(name))


def check_ids(name: str, ids: tf.Tensor, limit: int, field: str, found: Checks) -> tf.Tensor:
    """Ids must be in [0, limit). Returns ids as int32/int64 (gather's index dtypes; uint8, int16 ... are widened)."""
    _require_integer(name, ids)
    if ids.dtype not in (tf.int32, tf.int64):
        ids = tf.cast(ids, tf.int64)
    if tf.executing_eagerly():
        if tf.size(ids) > 0:
            checks.check_id_range(name, int(tf.reduce_min(ids)), int(tf.reduce_max(ids)), limit, field)
        return ids
    in_range = tf.reduce_all((ids >= 0) & (ids < tf.cast(limit, ids.dtype)))
    found.require(in_range, checks.range_message(name, limit, field) + "; got min/max", tf.reduce_min(ids), tf.reduce_max(ids))
    return ids


# ---------------------------------------------------------------------------------------- the backbone's inputs


def _check_length(reference: tf.Tensor, config: MobileBertConfig, name: str, found: Checks, given: tf.Tensor) -> None:
    """(B, T) reference: at least one sequence of 1..max_position_embeddings tokens. given: the input as passed
    (input_ids, or inputs_embeds (B, T, E)), whose whole shape an error shows."""
    batch, seq = reference.shape.as_list()
    checks.check_not_empty(name, given.shape.as_list())
    if seq is not None:
        checks.check_sequence_length(seq, config)
    limit = config.max_position_embeddings
    shape = tf.shape(reference)
    if seq is None:
        found.require(shape[1] <= limit, f"input has more than {limit} tokens; this model takes at most {limit} "
                                         "(config.max_position_embeddings). Truncate the input (tokenizer(..., truncation=True))")
        found.require(shape[1] >= 1, "input has 0 tokens; pass at least one token per sequence")
    if batch is None:
        found.require(shape[0] >= 1, f"{name} has an empty batch; pass at least one sequence")


def _check_position_ids(position_ids: tf.Tensor, reference: tf.Tensor, found: Checks) -> None:
    """position_ids: (B, T), or (1, T) / (T,) shared by every row."""
    ref = tuple(reference.shape.as_list())
    static = _static(position_ids.shape)
    message = "position_ids must have shape (batch, seq), or (1, seq) / (seq,) shared by every row"
    if static is not None and None not in ref:
        allowed = (ref, (1, ref[1]), (ref[1],))
        if static not in allowed:
            raise ValueError(f"position_ids has shape {static}; allowed: {ref} (batch, seq), "
                             f"or {(1, ref[1])} / {(ref[1],)} shared by every row")
        return
    if position_ids.shape.rank is not None and position_ids.shape.rank not in (1, 2):
        raise ValueError(f"{message}; got shape {tuple(position_ids.shape.as_list())}")
    b, t = tf.unstack(tf.shape(reference, out_type=tf.int64))
    found.require(shape_is(position_ids, [[b, t], [1, t], [t]]), message)


def _check_head_mask(head_mask: tf.Tensor, config: MobileBertConfig, found: Checks) -> tf.Tensor:
    """(N,) or (L, N); returned as (L, N) (known shape, None dims allowed in a graph)."""
    layers, heads = config.num_hidden_layers, config.num_attention_heads
    shape = head_mask.shape
    if shape.rank is not None:
        dims = shape.as_list()
        allowed = ((heads,), (layers, heads))
        if not any(len(dims) == len(a) and all(d is None or d == e for d, e in zip(dims, a)) for a in allowed):
            checks.check_head_mask(tuple(dims), config)
    if _static(shape) is None:
        head_mask = found.gate(head_mask, shape_is(head_mask, [[heads], [layers, heads]]),
                               f"head_mask must have shape ({heads},) or ({layers}, {heads}) (layers, heads)")
    # (N,) -> (1, N) -> (L, N); (L, N) stays.
    return tf.broadcast_to(tf.reshape(head_mask, [-1, heads]), [layers, heads])


def validate_inputs(config: MobileBertConfig, inputs: dict, found: Optional[Checks] = None) -> dict:
    """Check the backbone's inputs (ValueError now, or assertions in a graph). ``inputs``: values by the
    names of INPUT_NAMES (absent or None: not given). Returns the checked inputs, {name: tensor or None}
    for every name of INPUT_NAMES (as the PyTorch validate_inputs does), with the checks attached, ids
    as int32/int64 and head_mask as (layers, heads). Pass ``found`` to attach later."""
    unknown = sorted(set(inputs) - set(INPUT_NAMES))
    if unknown:
        raise ValueError(f"validate_inputs got unknown input(s) {unknown}; allowed: {', '.join(INPUT_NAMES)}")
    own = found is None
    found = found or Checks()
    out = {name: inputs.get(name) for name in INPUT_NAMES}
    input_ids, inputs_embeds = out["input_ids"], out["inputs_embeds"]
    checks.check_inputs_choice(input_ids is not None, inputs_embeds is not None)
    if input_ids is not None:
        reference = input_ids = with_rank("input_ids", input_ids, 2, "(batch, seq)", found)
        _require_integer("input_ids", input_ids)
        name = "input_ids"
    else:
        inputs_embeds = with_rank("inputs_embeds", inputs_embeds, 3, "(batch, seq, embedding_size)", found)
        if inputs_embeds.shape[-1] is not None:
            checks.check_embeds_width(inputs_embeds.shape[-1], config)
        if not inputs_embeds.dtype.is_floating:
            raise ValueError(f"inputs_embeds must be floating point, got dtype {inputs_embeds.dtype.name}")
        _check_finite("inputs_embeds", inputs_embeds, found)
        out["inputs_embeds"] = inputs_embeds
        reference, name = inputs_embeds[:, :, 0], "inputs_embeds"
    _check_length(reference, config, name, found, input_ids if input_ids is not None else inputs_embeds)
    of = name if input_ids is not None else "inputs_embeds[:, :, 0] (batch, seq)"
    if input_ids is not None:
        out["input_ids"] = check_ids("input_ids", input_ids, config.vocab_size, "vocab_size", found)
    if inputs.get("attention_mask") is not None:
        _same_shape("attention_mask", inputs["attention_mask"], reference, found, of=of)
        _check_finite("attention_mask", inputs["attention_mask"], found)
    if inputs.get("token_type_ids") is not None:
        _same_shape("token_type_ids", inputs["token_type_ids"], reference, found, of=of)
        out["token_type_ids"] = check_ids("token_type_ids", inputs["token_type_ids"], config.type_vocab_size,
                                          "type_vocab_size", found)
    if inputs.get("position_ids") is not None:
        _check_position_ids(inputs["position_ids"], reference, found)
        out["position_ids"] = check_ids("position_ids", inputs["position_ids"], config.max_position_embeddings,
                                        "max_position_embeddings", found)
    if inputs.get("head_mask") is not None:
        _check_finite("head_mask", inputs["head_mask"], found)
        out["head_mask"] = _check_head_mask(inputs["head_mask"], config, found)
    return found.attach(out) if own else out


def flatten_choices(inputs: dict, found: Checks):
    """Multiple-choice inputs (B, C, T[, E]) -> (B*C, T[, E]) for the backbone, after checking they line up.

    Returns (num_choices: int, or a scalar tensor when only known at run time; the flattened inputs).
    position_ids may also be (T,), (1, T) or (1, 1, T): one set for every choice (passed on as (1, T)).
    """
    ids, embeds = inputs.get("input_ids"), inputs.get("inputs_embeds")
    checks.check_inputs_choice(ids is not None, embeds is not None)
    if ids is not None:
        reference = ids = with_rank("input_ids", ids, 3, "(batch, num_choices, seq)", found)
    else:
        embeds = with_rank("inputs_embeds", embeds, 4, "(batch, num_choices, seq, embedding_size)", found)
        reference = embeds[..., 0]
    static = reference.shape.as_list()
    if 0 in static[:2]:
        raise ValueError(f"multiple-choice input has shape {tuple(static)} (batch, num_choices, seq); "
                         "pass at least one example with at least one choice")
    dims = tf.shape(reference)  # (B, C, T)
    of = "the choices input (batch, num_choices, seq)"
    for name in ("attention_mask", "token_type_ids"):
        if inputs.get(name) is not None:
            _same_shape(name, inputs[name], reference, found, of=of)
    if inputs.get("position_ids") is not None:
        _check_choice_positions(inputs["position_ids"], reference, found)
    # The reshapes below wait for the checks: a misaligned input fails with our message, not reshape's.
    flat = found.attach({**inputs, "input_ids": ids, "inputs_embeds": embeds})
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        if flat.get(name) is not None:
            flat[name] = tf.reshape(flat[name], [-1, dims[2]])  # (B*C, T)
    if flat.get("position_ids") is not None:
        flat["position_ids"] = tf.reshape(flat["position_ids"], [-1, dims[2]])  # (B*C, T), or (1, T) shared
    embeds = flat.get("inputs_embeds")
    if embeds is not None:
        flat["inputs_embeds"] = tf.reshape(embeds, [-1, dims[2], tf.shape(embeds)[3]])
    num_choices = static[1] if static[1] is not None else dims[1]
    return num_choices, flat


def _check_choice_positions(position_ids: tf.Tensor, reference: tf.Tensor, found: Checks) -> None:
    shape = tuple(reference.shape.as_list())
    seq = shape[2]
    static = _static(position_ids.shape)
    shared = ((seq,), (1, seq), (1, 1, seq))
    if static is not None and None not in shape:
        if static not in shared + (shape,):
            raise ValueError(f"position_ids has shape {static}; allowed: {shape} (batch, num_choices, seq), "
                             f"or one set for every choice: {', '.join(str(s) for s in shared)}")
    else:
        b, c, t = tf.unstack(tf.shape(reference, out_type=tf.int64))
        found.require(shape_is(position_ids, [[b, c, t], [t], [1, t], [1, 1, t]]),
                      "position_ids must have shape (batch, num_choices, seq), or (seq,) / (1, seq) / (1, 1, seq) "
                      "shared by every choice")


def check_mask_positions(mask_positions, sequence: tf.Tensor, found: Optional[Checks] = None) -> tf.Tensor:
    """The masked-LM head's positions: integer (B, P), each in [0, T) for a sequence (B, T, ...) (the
    input ids or embeddings, or the hidden states). Returned as int32/int64 (gather's index dtypes),
    with the checks attached unless ``found`` collects them. Inside XLA nothing can raise: the head
    makes an out-of-range position's logits NaN (modeling.lookup)."""
    own = found is None
    found = found or Checks()
    positions = tf.convert_to_tensor(mask_positions)
    _require_integer("mask_positions", positions)
    if positions.dtype not in (tf.int32, tf.int64):
        positions = tf.cast(positions, tf.int64)
    positions = with_rank("mask_positions", positions, 2, "(batch, num_positions)", found)
    rows, batch = positions.shape[0], sequence.shape[0]
    if rows is not None and batch is not None and rows != batch:
        raise ValueError(f"mask_positions has shape {tuple(positions.shape.as_list())} (batch, num_positions) but the "
                         f"input's batch is {batch}; pass one row of positions per sequence")
    seq = tf.shape(sequence, out_type=positions.dtype)[1]
    if tf.executing_eagerly():
        if tf.size(positions) > 0:
            low, high = int(tf.reduce_min(positions)), int(tf.reduce_max(positions))
            if low < 0 or high >= int(seq):
                raise ValueError(f"mask_positions must hold token positions in [0, {int(seq)}) (the input's sequence "
                                 f"length); got {low if low < 0 else high}")
        return positions
    if rows is None or batch is None:
        found.require(tf.shape(positions)[0] == tf.shape(sequence)[0],
                      "mask_positions must have one row of positions per sequence (batch, num_positions)")
    found.require(tf.reduce_all((positions >= 0) & (positions < seq)),
                  "mask_positions must hold token positions in [0, seq) (the input's sequence length); got min/max",
                  tf.reduce_min(positions), tf.reduce_max(positions))
    return found.attach({"mask_positions": positions})["mask_positions"] if own else positions


# ---------------------------------------------------------------------------------------- 16-bit dtypes


def wide_dtype(dtype) -> tf.DType:
    """The dtype of the attention softmax and of losses: float32 for 16-bit compute dtypes (mixed
    precision), else the dtype itself."""
    dtype = tf.as_dtype(dtype)
    return tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype


def check_finite(tensor: tf.Tensor) -> tf.Tensor:
    """float16 tops out at 65504 and released MobileBERT activations reach 1e7-1e8: never return inf/NaN silently."""
    if tensor.dtype != tf.float16:
        return tensor
    if tf.executing_eagerly():
        if not bool(tf.reduce_all(tf.math.is_finite(tensor))):
            raise ValueError(checks.FLOAT16_OVERFLOW)
        return tensor
    return tf.debugging.assert_all_finite(tensor, checks.FLOAT16_OVERFLOW)
