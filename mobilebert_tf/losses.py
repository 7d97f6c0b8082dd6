"""The losses of the Keras heads, with their label checks (rules and wording: mobilebert_common.labels).

Mirrors mobilebert_pt/losses.py. Losses are computed in float32 under mixed precision (float64 stays
float64). Labels are checked before the loss kernel: eagerly a ValueError, in a graph a
tf.debugging assertion the loss depends on (on GPU, TF's cross-entropy returns NaN for a bad label
instead of failing). Inside XLA, where assertions are dropped, a bad label makes the loss NaN on
every device (an explicit guard; XLA alone would give NaN or a plausible number depending on the device).

Losses that ignore targets (IGNORE_INDEX = -100; question-answering positions past the window)
average over the labelled targets only and return 0, not NaN, when a batch has none.
"""

from __future__ import annotations

import tensorflow as tf

from mobilebert_common import checks
from mobilebert_common import labels as rules
from mobilebert_common.labels import IGNORE_INDEX
from mobilebert_tf.inputs import Checks, in_xla_context, shape_is, wide_dtype


def _wide(logits: tf.Tensor) -> tf.Tensor:
    return tf.cast(logits, wide_dtype(logits.dtype))


def _check_shape(name: str, labels: tf.Tensor, logits: tf.Tensor, found: Checks) -> None:
    """labels must be logits.shape[:-1] (or that and a trailing 1): reshape(-1) alone would pair wrong targets."""
    expected = logits.shape.as_list()[:-1]
    if labels.shape.rank is not None and None not in labels.shape.as_list() and None not in expected:
        rules.check_label_shape(name, tuple(labels.shape.as_list()), tuple(expected))
        return
    if labels.shape.rank is not None and labels.shape.rank not in (len(expected), len(expected) + 1):
        rules.check_label_shape(name, tuple(labels.shape.as_list()), tuple(expected))
    dims = tf.unstack(tf.shape(logits, out_type=tf.int64))[:-1]
    found.require(shape_is(labels, [dims, dims + [1]]), f"{name} must have the shape of the logits without their class axis")


def check_class_labels(name: str, labels: tf.Tensor, num_classes, found: Checks, allow_ignore: bool = True):
    """Class ids in [0, num_classes) (or -100 = ignored), any integer dtype. Returns (labels as int32, all valid?).

    num_classes: an int, or a scalar tensor (multiple choice in a graph: the number of choices)."""
    rules.check_integer_labels(name, labels.dtype.is_integer, labels.dtype.name)
    upper = num_classes if isinstance(num_classes, int) else "num_choices"
    valid = (labels >= 0) & (labels < tf.cast(num_classes, labels.dtype))
    if allow_ignore:
        valid = valid | (labels == IGNORE_INDEX)
    if tf.executing_eagerly():
        bad = None if bool(tf.reduce_all(valid)) else int(tf.boolean_mask(labels, tf.logical_not(valid))[0])
        rules.check_class_id(name, bad, upper, allow_ignore)
    else:
        found.require(tf.reduce_all(valid), rules.class_ids_message(name, upper, allow_ignore) + "; got min/max",
                      tf.reduce_min(labels), tf.reduce_max(labels))
    return tf.cast(labels, tf.int32), tf.reduce_all(valid)


def _nan_unless(valid: tf.Tensor, loss: tf.Tensor) -> tf.Tensor:
    # Inside XLA only (nothing can raise there): a bad label makes the loss NaN on every device.
    if not in_xla_context():
        return loss
    return loss + tf.where(valid, tf.zeros([], loss.dtype), tf.constant(float("nan"), loss.dtype))


def cross_entropy(name: str, logits: tf.Tensor, labels: tf.Tensor, ignore_index: int = IGNORE_INDEX,
                  check: bool = True) -> tf.Tensor:
    """Mean cross-entropy over the labelled targets. logits (..., C), labels (...) class ids (or (..., 1))."""
    found = Checks()
    _check_shape(name, labels, logits, found)
    valid = tf.constant(True)
    if check:
        num_classes = logits.shape[-1] if logits.shape[-1] is not None else tf.shape(logits)[-1]
        labels, valid = check_class_labels(name, labels, num_classes, found)
    labels = found.attach({"labels": labels})["labels"]
    logits = _wide(logits)
    num_classes = tf.shape(logits)[-1]
    logits = tf.reshape(logits, [-1, num_classes])
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    keep = labels != ignore_index
    safe = tf.where(keep, labels, tf.zeros_like(labels))
    per_target = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    keep = tf.cast(keep, logits.dtype)
    # sum / count, and 0 (not NaN) when nothing is labelled: a NaN would poison a training run.
    return _nan_unless(valid, tf.math.divide_no_nan(tf.reduce_sum(per_target * keep), tf.reduce_sum(keep)))


def sequence_classification_loss(logits: tf.Tensor, labels: tf.Tensor, problem_type) -> tf.Tensor:
    """logits (B, num_labels). problem_type None: inferred from num_labels and the labels' dtype."""
    num_labels = logits.shape[-1]
    problem = checks.infer_problem_type(problem_type, num_labels, labels.dtype.is_integer)
    logits = _wide(logits)
    if problem == "single_label_classification":
        return cross_entropy("labels", logits, labels)
    found = Checks()
    batch = tf.shape(logits, out_type=tf.int64)[0]
    static = labels.shape.rank is not None and labels.shape.is_fully_defined() and logits.shape.is_fully_defined()
    if problem == "regression":
        if static:
            rules.check_regression_shape(tuple(labels.shape.as_list()), tuple(logits.shape.as_list()))
        else:
            allowed = [[batch, num_labels]] + ([[batch]] if num_labels == 1 else [])
            found.require(shape_is(labels, allowed), "regression labels must have shape (batch, num_labels)"
                          + (" or (batch,)" if num_labels == 1 else "") + " to match the logits")
        labels = tf.cast(found.attach({"labels": labels})["labels"], logits.dtype)
        if num_labels == 1:  # torch's squeeze(): (B, 1) logits against (B,) or (B, 1) labels
            return tf.reduce_mean(tf.square(tf.reshape(logits, [-1]) - tf.reshape(labels, [-1])))
        return tf.reduce_mean(tf.square(logits - labels))
    # multi-label: one 0/1 column per label
    of = "logits (multi-label: one 0/1 column per label)"
    if static or (labels.shape.rank is not None and labels.shape.rank != 2):
        checks.check_same_shape("labels", labels.shape.as_list(), logits.shape.as_list(), of=of)
    if not static:
        found.require(shape_is(labels, [[batch, num_labels]]), f"labels must have the shape of the {of}")
    labels = tf.cast(found.attach({"labels": labels})["labels"], logits.dtype)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def check_positions(name: str, positions: tf.Tensor, found: Checks):
    """Answer positions: integers >= 0 (those >= T are ignored by the loss). Returns (positions as int64, all >= 0?)."""
    rules.check_integer_positions(name, positions.dtype.is_integer, positions.dtype.name)
    positions = tf.cast(positions, tf.int64)
    valid = tf.reduce_all(positions >= 0)
    if tf.executing_eagerly():
        if not bool(valid):
            checks.check_positions(name, int(tf.reduce_min(positions)))
    else:
        found.require(valid, checks.negative_position_message(name) + "; got min", tf.reduce_min(positions))
    return positions, valid


def span_loss(start_logits: tf.Tensor, end_logits: tf.Tensor, start_positions: tf.Tensor,
              end_positions: tf.Tensor) -> tf.Tensor:
    """Question answering: (start loss + end loss) / 2; logits (B, T), positions (B,) token indices.

    Each side is the mean cross-entropy over its positions in [0, T). A position >= T (the answer lies
    past the truncated window) is ignored: it adds no loss and is not counted (0 when none is in the
    window). A negative position is a ValueError eagerly, an InvalidArgumentError in a graph and a NaN
    loss inside XLA: clamped to 0 it would train [CLS], "no answer".
    """
    seq = tf.shape(start_logits)[1]
    losses = []
    for name, logits, positions in (("start_positions", start_logits, start_positions),
                                    ("end_positions", end_logits, end_positions)):
        found = Checks()
        positions, valid = check_positions(name, positions, found)
        _check_shape(name, positions, logits, found)  # (B,) or (B, 1)
        positions = found.attach({"p": positions})["p"]
        positions = tf.minimum(tf.reshape(positions, [-1]), tf.cast(seq, tf.int64))  # past the window -> T, ignored
        loss = cross_entropy(name, logits, tf.cast(positions, tf.int32), ignore_index=seq, check=False)
        losses.append(_nan_unless(valid, loss))
    return (losses[0] + losses[1]) / 2
