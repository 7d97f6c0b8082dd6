"""Input checks of the PyTorch models, run before any kernel: a clear ValueError instead of an IndexError
from inside an embedding, a reshape error inside attention, a device-side assert on GPU, or NaN logits
from a NaN/inf in a float input; and the one output check (check_finite: float16 overflow).

Inputs may be torch tensors or, for convenience, (nested) Python lists / numpy arrays of the same
layout: ``model(input_ids=[[101, 2023, 102]])`` works as ``torch.tensor([[101, 2023, 102]])`` would,
placed on the model's device. Ragged lists (rows of different lengths) are refused: pad them first.
The rules and wording shared with Keras live in mobilebert_common.checks.

torch.compile: a check that reads a tensor's values (int() / bool() on a reduction) is a host sync on
a GPU and a graph break under torch.compile, and torch.func.vmap refuses it. So while torch compiles or
vmaps (``tracing()``) those value checks are skipped (the static ones, dtypes, ranks and shapes, still
raise at trace time), and the model guards the lookups instead (modeling.lookup): an out-of-range id or
mask position is clamped for the gather and its row made NaN, so a compiled model can neither crash the
process (a device-side assert) nor return plausible wrong numbers, as the Keras models do inside XLA. A
NaN/inf float input gives NaN outputs, and a float16 overflow inf/NaN outputs, instead of a ValueError.
To get the errors, validate outside the compiled function: ``compiled(**model.validate_inputs(batch))``.
Eagerly nothing changes: every check runs before any kernel.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import torch

from mobilebert_common import checks
from mobilebert_common.config import MobileBertConfig


def as_tensor(name: str, value, device: torch.device, dtype: Optional[torch.dtype] = None) -> Optional[torch.Tensor]:
    """A tensor as given; a list / tuple / numpy array converted (onto ``device``); anything else a ValueError."""
    if value is None or isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        try:
            return torch.as_tensor(np.asarray(value) if isinstance(value, np.ndarray) else value, dtype=dtype, device=device)
        except (ValueError, TypeError, RuntimeError) as err:
            raise ValueError(
                f"{name} could not be made a tensor ({err}); pass a torch.Tensor or a rectangular list of lists "
                "(pad every sequence to one length, e.g. tokenizer(..., padding=True))"
            ) from None
    raise checks.not_a_tensor(name, "torch.Tensor", type(value).__name__)


ID_NAMES = ("input_ids", "token_type_ids", "position_ids")


def is_integer(t: torch.Tensor) -> bool:
    return not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)


def tensors(device: torch.device, embeds_dtype: torch.dtype, **inputs) -> Dict[str, Optional[torch.Tensor]]:
    """as_tensor for each model input; inputs_embeds given as a list becomes the model's float dtype.

    Ids of a small integer dtype (int8, uint8, int16, uint16, uint32...) are widened to int64, as Keras
    widens them: the embedding kernel takes int32 / int64 only. Float and bool ids stay, for
    validate_inputs to refuse."""
    out = {name: as_tensor(name, value, device, embeds_dtype if name == "inputs_embeds" else None)
           for name, value in inputs.items()}
    for name in ID_NAMES:
        t = out.get(name)
        if t is not None and is_integer(t) and t.dtype not in (torch.int32, torch.int64):
            out[name] = t.long()
    return out


def tracing() -> bool:
    """True while values cannot be read on the host: torch.compile / torch.export traces, or torch.func.vmap
    runs (its batched tensors refuse .item(): per-sample gradients, vmap(grad(...))). No value checks then
    (module docstring)."""
    return torch.compiler.is_compiling() or _in_vmap()


def _in_vmap() -> bool:
    # torch.func's transforms in force, innermost last; None outside any (torch has no public query for this).
    stack = getattr(torch._C._functorch, "get_interpreter_stack", lambda: None)()
    return bool(stack) and any(t.key() == torch._C._functorch.TransformType.Vmap for t in stack)


def _id_range(name: str, ids: torch.Tensor, limit: int, field: str) -> None:
    checks.check_integer_ids(name, is_integer(ids), str(ids.dtype).replace("torch.", ""))
    if ids.numel() and not tracing():
        low, high = torch.aminmax(ids)
        checks.check_id_range(name, int(low), int(high), limit, field)


def _check_finite(name: str, t: Optional[torch.Tensor]) -> None:
    """A float input with NaN/inf would make every logit NaN: one reduction to say so instead."""
    if t is not None and (t.is_floating_point() or t.is_complex()) and not tracing():
        checks.check_finite_input(name, bool(torch.isfinite(t).all()))


INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask", "inputs_embeds")


def validate_inputs(config: MobileBertConfig, inputs: dict) -> Dict[str, Optional[torch.Tensor]]:
    """Raise ValueError for inputs that would index past a table, misalign or carry NaN/inf.

    ``inputs``: tensors by the names of INPUT_NAMES (absent or None: not given). Returns the checked
    inputs, {name: tensor or None} for every name of INPUT_NAMES, as the Keras validate_inputs does.
    position_ids may be (B, T), or (1, T) / (T,) shared by every row.
    """
    unknown = sorted(set(inputs) - set(INPUT_NAMES))
    if unknown:
        raise ValueError(f"validate_inputs got unknown input(s) {unknown}; allowed: {', '.join(INPUT_NAMES)}")
    x = {name: inputs.get(name) for name in INPUT_NAMES}
    input_ids, inputs_embeds = x["input_ids"], x["inputs_embeds"]
    checks.check_inputs_choice(input_ids is not None, inputs_embeds is not None)
    if input_ids is not None:
        checks.check_rank("input_ids", input_ids.shape, 2, "(batch, seq)")
        shape = tuple(input_ids.shape)
        checks.check_not_empty("input_ids", shape)
    else:
        checks.check_rank("inputs_embeds", inputs_embeds.shape, 3, "(batch, seq, embedding_size)")
        checks.check_embeds_width(inputs_embeds.shape[-1], config)
        shape = tuple(inputs_embeds.shape[:2])
        checks.check_not_empty("inputs_embeds", tuple(inputs_embeds.shape))
        _check_finite("inputs_embeds", inputs_embeds)
    checks.check_sequence_length(shape[1], config)
    if input_ids is not None:
        _id_range("input_ids", input_ids, config.vocab_size, "vocab_size")
    if x["attention_mask"] is not None:
        checks.check_same_shape("attention_mask", x["attention_mask"].shape, shape)
        _check_finite("attention_mask", x["attention_mask"])
    if x["token_type_ids"] is not None:
        checks.check_same_shape("token_type_ids", x["token_type_ids"].shape, shape)
        _id_range("token_type_ids", x["token_type_ids"], config.type_vocab_size, "type_vocab_size")
    position_ids = x["position_ids"]
    if position_ids is not None:
        if tuple(position_ids.shape) not in (shape, (1, shape[1]), (shape[1],)):
            raise ValueError(
                f"position_ids has shape {tuple(position_ids.shape)}; allowed: {shape} (batch, seq), "
                f"or {(1, shape[1])} / {(shape[1],)} shared by every row"
            )
        _id_range("position_ids", position_ids, config.max_position_embeddings, "max_position_embeddings")
    if x["head_mask"] is not None:
        checks.check_head_mask(x["head_mask"].shape, config)
        _check_finite("head_mask", x["head_mask"])
    return x


def check_mask_positions(mask_positions, hidden_states: torch.Tensor) -> torch.Tensor:
    """The masked-LM head's positions: integer (B, P), each in [0, T) for hidden states (B, T, H).

    Checked before the gather (on a GPU an index past T is a device-side assert, which a process cannot
    recover from). Returned as int64 on the hidden states' device; a list or numpy array is converted.
    """
    positions = as_tensor("mask_positions", mask_positions, hidden_states.device)
    checks.check_integer_ids("mask_positions", is_integer(positions), str(positions.dtype).replace("torch.", ""))
    checks.check_rank("mask_positions", positions.shape, 2, "(batch, num_positions)")
    batch, seq = hidden_states.shape[:2]
    if positions.shape[0] != batch:
        raise ValueError(f"mask_positions has shape {tuple(positions.shape)} (batch, num_positions) but the input's "
                         f"batch is {batch}; pass one row of positions per sequence")
    if positions.numel() and not tracing():  # tracing: the head clamps and NaN-poisons instead
        low, high = (int(v) for v in torch.aminmax(positions))
        if low < 0 or high >= seq:
            raise ValueError(f"mask_positions must hold token positions in [0, {seq}) (the input's sequence length); "
                             f"got {low if low < 0 else high}")
    return positions.to(hidden_states.device, torch.long)


def check_finite(tensor: torch.Tensor) -> None:
    """The output check: float16 tops out at 65504 and released MobileBERT activations reach 1e7-1e8,
    so a float16 run can overflow; never return inf/NaN silently."""
    if tensor.dtype == torch.float16 and not tracing() and not bool(torch.isfinite(tensor).all()):
        raise ValueError(checks.FLOAT16_OVERFLOW)


def flatten_choices(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds):
    """Multiple-choice inputs (B, C, T[, E]) -> (B*C, T[, E]) for the backbone, after checking they line up.

    Returns (num_choices, dict of the flattened inputs). position_ids may also be (T,), (1, T) or
    (1, 1, T): one set of positions for every choice (passed on as (1, T)).
    """
    checks.check_inputs_choice(input_ids is not None, inputs_embeds is not None)
    if input_ids is not None:
        checks.check_rank("input_ids", input_ids.shape, 3, "(batch, num_choices, seq)")
        shape = tuple(input_ids.shape)
    else:
        checks.check_rank("inputs_embeds", inputs_embeds.shape, 4, "(batch, num_choices, seq, embedding_size)")
        shape = tuple(inputs_embeds.shape[:3])
    batch, num_choices, seq = shape
    if batch == 0 or num_choices == 0:
        raise ValueError(f"multiple-choice input has shape {shape} (batch, num_choices, seq); "
                         "pass at least one example with at least one choice")

    def flat(name, t):  # (B, C, T) -> (B*C, T)
        if t is None:
            return None
        checks.check_same_shape(name, t.shape, shape, of="the choices input (batch, num_choices, seq)")
        return t.reshape(-1, seq)

    if position_ids is not None:
        shared = ((seq,), (1, seq), (1, 1, seq))
        if tuple(position_ids.shape) in shared:
            position_ids = position_ids.reshape(1, seq)
        elif tuple(position_ids.shape) == shape:
            position_ids = position_ids.reshape(-1, seq)
        else:
            raise ValueError(
                f"position_ids has shape {tuple(position_ids.shape)}; allowed: {shape} (batch, num_choices, seq), "
                f"or one set for every choice: {', '.join(str(s) for s in shared)}"
            )
    return num_choices, {
        "input_ids": flat("input_ids", input_ids),
        "attention_mask": flat("attention_mask", attention_mask),
        "token_type_ids": flat("token_type_ids", token_type_ids),
        "position_ids": position_ids,
        "inputs_embeds": None if inputs_embeds is None else inputs_embeds.reshape(-1, seq, inputs_embeds.shape[-1]),
    }
