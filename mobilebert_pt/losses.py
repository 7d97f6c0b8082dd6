"""The losses of the PyTorch heads, with their label checks (rules and wording: mobilebert_common.labels).

Every check runs on the host before the loss kernel: a CUDA device-side assert cannot be recovered
from. While torch compiles or vmaps (inputs.tracing()) those value checks would be a host sync and a graph
break (vmap refuses them), so, as the Keras losses do inside XLA, a bad label is replaced by an ignored one
for the kernel (no crash) and makes the loss NaN (never a plausible number); the static checks (dtype,
shape) still raise. Losses are computed in float32 (float64 stays float64) whatever the model's dtype.

Losses that ignore targets (IGNORE_INDEX = -100; the question-answering positions past the window)
average over the labelled targets only and return 0, not NaN, when a batch has none: we deliberately
differ from torch's mean reduction there (0/0 = NaN would poison a training run), as the Keras side does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mobilebert_common import checks
from mobilebert_common import labels as rules
from mobilebert_common.labels import IGNORE_INDEX
from mobilebert_pt.inputs import as_tensor, is_integer, tracing


def _wide(logits: torch.Tensor) -> torch.Tensor:
    return logits if logits.dtype == torch.float64 else logits.float()


def as_labels(name: str, labels, like: torch.Tensor) -> torch.Tensor:
    """Labels as a tensor on the logits' device (a list or numpy array is converted)."""
    labels = as_tensor(name, labels, like.device)
    return labels.to(like.device)


def nan_unless(valid: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    """While tracing: loss where every label is valid, else NaN (on every device; no host sync)."""
    return loss + torch.where(valid.all(), 0.0, float("nan")).to(loss.dtype)


def check_class_labels(name: str, labels: torch.Tensor, num_classes: int, allow_ignore: bool = True):
    """Class ids in [0, num_classes) (or -100 = ignored), any integer dtype. Returns (labels as int64 for the
    kernel, valid): eagerly valid is None (a bad label raised); while tracing, bad labels are set to
    IGNORE_INDEX and valid is the (...) bool mask for nan_unless."""
    rules.check_integer_labels(name, is_integer(labels), str(labels.dtype))
    valid = (labels >= 0) & (labels < num_classes)
    if allow_ignore:
        valid |= labels == IGNORE_INDEX
    if tracing():
        return torch.where(valid, labels.long(), IGNORE_INDEX), valid
    bad = None if bool(valid.all()) else int(labels[~valid].flatten()[0])
    rules.check_class_id(name, bad, num_classes, allow_ignore)
    return labels.long(), None  # after the check (int32/int16 ids reach the kernel as the int64 it requires)


def cross_entropy(name: str, logits: torch.Tensor, labels, ignore_index: int = IGNORE_INDEX,
                  check: bool = True) -> torch.Tensor:
    """Mean cross-entropy over the labelled targets. logits (..., C), labels (...) class ids (or (..., 1))."""
    labels = as_labels(name, labels, logits)
    num_classes = logits.shape[-1]
    rules.check_label_shape(name, tuple(labels.shape), tuple(logits.shape[:-1]))
    valid = None
    if check:
        labels, valid = check_class_labels(name, labels, num_classes)
    labels = labels.reshape(-1)
    total = F.cross_entropy(_wide(logits).reshape(-1, num_classes), labels, ignore_index=ignore_index, reduction="sum")
    # sum / max(count, 1): 0 when nothing is labelled, where torch's mean would give NaN.
    count = (labels != ignore_index).sum().clamp(min=1)
    return total / count if valid is None else nan_unless(valid, total / count)


def sequence_classification_loss(logits: torch.Tensor, labels, problem_type) -> torch.Tensor:
    """logits (B, num_labels). problem_type None: inferred from num_labels and the labels' dtype."""
    labels = as_labels("labels", labels, logits)
    num_labels = logits.shape[-1]
    problem = checks.infer_problem_type(problem_type, num_labels, is_integer(labels))
    logits = _wide(logits)
    if problem == "regression":
        rules.check_regression_shape(tuple(labels.shape), tuple(logits.shape))
        labels = labels.to(logits.dtype)
        if num_labels == 1:  # (B, 1) logits against (B,) or (B, 1) labels
            return F.mse_loss(logits.reshape(-1), labels.reshape(-1))
        return F.mse_loss(logits, labels)
    if problem == "single_label_classification":
        return cross_entropy("labels", logits, labels)
    checks.check_same_shape("labels", labels.shape, logits.shape, of="logits (multi-label: one 0/1 column per label)")
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def span_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, start_positions, end_positions) -> torch.Tensor:
    """Question answering: (start loss + end loss) / 2; logits (B, T), positions (B,) token indices.

    Each side is the mean cross-entropy over its positions in [0, T). A position >= T (the answer lies
    past the truncated window) is ignored: it adds no loss and is not counted (0 when none is in the
    window). A negative position is a ValueError: clamped to 0 it would train [CLS], "no answer".
    """
    batch, seq = start_logits.shape
    losses = []
    for name, logits, positions in (("start_positions", start_logits, start_positions),
                                    ("end_positions", end_logits, end_positions)):
        positions = as_labels(name, positions, logits)
        rules.check_integer_positions(name, is_integer(positions), str(positions.dtype))
        rules.check_label_shape(name, tuple(positions.shape), (batch,))
        positions = positions.reshape(-1).long()
        if tracing():  # a negative position: ignored by the kernel, NaN loss (module docstring)
            valid = positions >= 0
            positions = torch.where(valid, positions.clamp(max=seq), seq)  # past the window -> T, ignored
            losses.append(nan_unless(valid, cross_entropy(name, logits, positions, ignore_index=seq, check=False)))
            continue
        if positions.numel():
            checks.check_positions(name, int(positions.min()))
        positions = positions.clamp(max=seq)  # past the window -> T, the ignored index
        losses.append(cross_entropy(name, logits, positions, ignore_index=seq, check=False))
    return (losses[0] + losses[1]) / 2
