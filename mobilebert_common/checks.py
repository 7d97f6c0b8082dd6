"""Input checks and messages shared by the PyTorch and Keras models.

Each check takes plain Python values (shapes, min/max ids) that the framework computed, so the
rules and wording live once. The Keras graph-mode path uses the *_message helpers inside
tf.debugging assertions.
"""

from __future__ import annotations

from typing import Optional, Sequence

from mobilebert_common.config import PROBLEM_TYPES, MobileBertConfig, check_problem_type  # noqa: F401 (re-exported)


def check_inputs_choice(has_input_ids: bool, has_inputs_embeds: bool) -> None:
    if has_input_ids and has_inputs_embeds:
        raise ValueError("pass either input_ids or inputs_embeds, not both")
    if not has_input_ids and not has_inputs_embeds:
        raise ValueError("pass input_ids (batch, seq) of token ids or inputs_embeds (batch, seq, embedding_size)")


def not_a_tensor(name: str, tensor_type: str, got: str) -> ValueError:
    """The error for an input of an unusable type (a string, a dict...): tensor_type "torch.Tensor" / "tf.Tensor"."""
    return ValueError(f"{name} must be a {tensor_type} (or a list of lists of numbers), got {got}")


def check_not_empty(name: str, shape: Sequence[Optional[int]], what: str = "sequence") -> None:
    """shape: the input's whole shape (B, T) or (B, T, E), as given; a batch of 0 is refused."""
    if shape[0] == 0:
        raise ValueError(f"{name} has an empty batch (shape {tuple(shape)}); pass at least one {what}")


def check_rank(name: str, shape: Sequence[int], rank: int, layout: str) -> None:
    if len(shape) != rank:
        raise ValueError(f"{name} must have {rank} dimensions {layout}, got shape {tuple(shape)}")


def check_sequence_length(seq_len: int, config: MobileBertConfig) -> None:
    if seq_len > config.max_position_embeddings:
        raise ValueError(
            f"input has {seq_len} tokens; this model takes at most {config.max_position_embeddings} "
            "(config.max_position_embeddings). Truncate the input (tokenizer(..., truncation=True))"
        )
    if seq_len < 1:
        raise ValueError("input has 0 tokens; pass at least one token per sequence")


def integer_ids_message(name: str, dtype_name: str) -> str:
    return f"{name} must hold integer ids (any integer dtype: int64, int32, uint8 ...), got dtype {dtype_name}"


def check_integer_ids(name: str, is_integer: bool, dtype_name: str) -> None:
    """Float and bool ids are refused: an embedding lookup would truncate 1.5 to 1 or read True as 1."""
    if not is_integer:
        raise ValueError(integer_ids_message(name, dtype_name))


def non_finite_message(name: str) -> str:
    return f"{name} holds NaN or inf; every value must be a finite number (NaN/inf would reach every logit)"


def check_finite_input(name: str, all_finite: bool) -> None:
    """Float inputs (inputs_embeds, a float attention_mask or head_mask): one reduction, then this."""
    if not all_finite:
        raise ValueError(non_finite_message(name))


def negative_position_message(name: str) -> str:
    return (f"{name} must hold token indices >= 0; a position at or past the sequence length (the answer "
            "truncated away) is ignored, and is the way to leave an example out of the loss")


def check_positions(name: str, min_value: int) -> None:
    """Question-answering positions: negative ones are refused (clamping them to 0 would train "no answer")."""
    if min_value < 0:
        raise ValueError(f"{negative_position_message(name)}; got {min_value}")


def range_message(name: str, limit: int, field: str) -> str:
    return f"{name} must hold ids in [0, {limit}) (config.{field})"


def check_id_range(name: str, min_value: int, max_value: int, limit: int, field: str) -> None:
    """Ids outside [0, limit) would index past an embedding table: say so before any kernel runs."""
    if min_value < 0 or max_value >= limit:
        bad = min_value if min_value < 0 else max_value
        raise ValueError(f"{range_message(name, limit, field)}; got {bad}")


def check_same_shape(name: str, shape: Sequence[int], expected: Sequence[int], of: str = "input_ids") -> None:
    if tuple(shape) != tuple(expected):
        raise ValueError(f"{name} has shape {tuple(shape)} but {of} has shape {tuple(expected)}; they must match")


def check_embeds_width(width: int, config: MobileBertConfig) -> None:
    if width != config.embedding_size:
        raise ValueError(
            f"inputs_embeds must be (batch, seq, {config.embedding_size}) (config.embedding_size), got last dimension {width}"
        )


def check_head_mask(shape: Sequence[int], config: MobileBertConfig) -> None:
    layers, heads = config.num_hidden_layers, config.num_attention_heads
    if tuple(shape) not in ((heads,), (layers, heads)):
        raise ValueError(f"head_mask must have shape ({heads},) or ({layers}, {heads}) (layers, heads), got {tuple(shape)}")


def infer_problem_type(problem_type: Optional[str], num_labels: int, labels_are_integers: bool) -> str:
    """The loss of a sequence classifier, as MobileBERT users expect it when problem_type is unset."""
    if problem_type is not None:
        return check_problem_type(problem_type)
    if num_labels == 1:
        return "regression"
    return "single_label_classification" if labels_are_integers else "multi_label_classification"


FLOAT16_OVERFLOW = (
    "MobileBERT's activations reach 1e7-1e8, beyond float16's largest value 65504, so this float16 run "
    "produced inf/NaN. Use bfloat16 (same range as float32) or float32."
)
