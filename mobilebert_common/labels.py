"""Label rules shared by the PyTorch and Keras heads: what each loss accepts, and the wording when it does not.

Framework-free: every function takes plain Python values that the framework computed (whether a dtype is
an integer type and its name, shapes as tuples, the first offending value), so the rules and the messages
live once. The frameworks do the tensor work (finding the first bad value, casting after the check).

API (small on purpose):
    IGNORE_INDEX                  label value that contributes no loss (padding, unmasked tokens): -100
    allowed_class_ids(upper, allow_ignore=True) -> str
                                  "[0, upper) or -100 (ignored)"; upper an int, or a word such as
                                  "num_choices" when it is only known at run time (Keras graph mode)
    class_ids_message(name, upper, allow_ignore=True) -> str
                                  "<name> must hold class ids in <allowed>": for graph-mode assertions
    check_integer_labels(name, is_integer, dtype_name)
                                  ValueError unless the labels are integer class ids (float and bool refused)
    check_class_id(name, bad, upper, allow_ignore=True)
                                  ValueError naming the first out-of-range id `bad`; bad=None means all valid
    check_label_shape(name, labels_shape, expected_shape)
                                  ValueError unless labels have the expected shape (a trailing 1 allowed:
                                  (batch, 1) for (batch,)); a reshape(-1) alone would pair the wrong targets
    check_integer_positions(name, is_integer, dtype_name)
                                  ValueError unless question-answering start/end positions are integers
                                  (2.7 is not a token index; truncating it silently would train on the wrong token)
    regression_label_shapes(logits_shape) -> list of tuples
    check_regression_shape(labels_shape, logits_shape)
                                  ValueError unless regression labels line up with logits (batch, num_labels):
                                  (batch, num_labels), or (batch,) when num_labels == 1. Anything else would
                                  broadcast silently in the squared error.

Losses that ignore IGNORE_INDEX return 0 (not NaN) for a batch with no labelled target, in both frameworks:
sum over the labelled targets / max(count, 1).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

IGNORE_INDEX = -100


def allowed_class_ids(upper: Union[int, str], allow_ignore: bool = True) -> str:
    return f"[0, {upper})" + (f" or {IGNORE_INDEX} (ignored)" if allow_ignore else "")


def class_ids_message(name: str, upper: Union[int, str], allow_ignore: bool = True) -> str:
    return f"{name} must hold class ids in {allowed_class_ids(upper, allow_ignore)}"


def check_integer_labels(name: str, is_integer: bool, dtype_name: str) -> None:
    if not is_integer:
        raise ValueError(f"{name} must hold integer class ids, got dtype {dtype_name}")


def check_class_id(name: str, bad: Optional[int], upper: Union[int, str], allow_ignore: bool = True) -> None:
    if bad is not None:
        raise ValueError(f"{class_ids_message(name, upper, allow_ignore)}; got {bad}")


def check_label_shape(name: str, labels_shape: Sequence[int], expected_shape: Sequence[int]) -> None:
    expected = tuple(expected_shape)
    if tuple(labels_shape) not in (expected, expected + (1,)):
        raise ValueError(f"{name} has shape {tuple(labels_shape)}; expected {expected} to match the logits")


def check_integer_positions(name: str, is_integer: bool, dtype_name: str) -> None:
    if not is_integer:
        raise ValueError(
            f"{name} must hold integer token positions (index of the answer's first/last token), got dtype {dtype_name}"
        )


def regression_label_shapes(logits_shape: Sequence[int]) -> List[Tuple[int, ...]]:
    batch, num_labels = tuple(logits_shape)
    return [(batch, num_labels)] + ([(batch,)] if num_labels == 1 else [])


def check_regression_shape(labels_shape: Sequence[int], logits_shape: Sequence[int]) -> None:
    allowed = regression_label_shapes(logits_shape)
    if tuple(labels_shape) not in allowed:
        expected = " or ".join(str(s) for s in allowed)
        raise ValueError(
            f"regression labels must have shape {expected} to match logits (batch, num_labels) "
            f"{tuple(logits_shape)}; got {tuple(labels_shape)}"
        )
