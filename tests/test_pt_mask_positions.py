"""PyTorch masked-LM head at given positions (mask_positions, as keras-hub's masked-LM head takes them):
the logits at the positions equal the full logits gathered, with and without labels, on every config
variant; bad positions are a ValueError naming mask_positions; the fill-mask pipeline calls the model
with them (float16-mixed included) instead of redoing the head's math.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mobilebert_pt.pipeline_float16 import Float16Matmuls
from mobilebert_common.pipelines.sentence_tasks import mask_grid
from mobilebert_pt.pipelines import pipeline
from tests.harness.models import VARIANTS, make_pt, pt_inputs, relative_error
from tests.harness.pipelines import config as pipeline_config
from tests.harness.pipelines import make_tokenizer

POSITIONS = torch.tensor([[3, 0, 6], [1, 1, 4]])  # (B=2, P=3): any order, repeats allowed; row 1's 5, 6 are padding


def gathered(full: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """(B, T, V) logits at positions (B, P) -> (B, P, V), by indexing (not the model's gather)."""
    return full[torch.arange(full.shape[0])[:, None], positions]


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("cls_name", ["MobileBertForMaskedLM", "MobileBertForPreTraining"])
def test_logits_at_positions_equal_full_logits_gathered(cls_name, variant):
    model = make_pt(cls_name, variant)
    x = pt_inputs(model.config)
    name = "logits" if cls_name == "MobileBertForMaskedLM" else "prediction_logits"
    nsp = {"next_sentence_label": torch.tensor([0, 1])} if cls_name == "MobileBertForPreTraining" else {}
    labels = torch.randint(0, model.config.vocab_size, (2, 7), generator=torch.Generator().manual_seed(1))
    unique = torch.tensor([[3, 0, 6], [1, 4, 2]])
    rows = torch.arange(2)[:, None]
    only_there = torch.full_like(labels, -100)  # the same labels at those positions, every other one ignored
    only_there[rows, unique] = labels[rows, unique]
    with torch.no_grad():
        full = model(**x)[name]
        bare = model(**x, mask_positions=POSITIONS)
        part = model(**x, labels=labels[rows, unique], mask_positions=unique, **nsp)
        reference = model(**x, labels=only_there, **nsp)
    assert bare[name].shape == (2, 3, model.config.vocab_size) and "loss" not in bare
    assert relative_error(bare[name].numpy(), gathered(full, POSITIONS).numpy()) < 1e-6
    assert relative_error(part[name].numpy(), gathered(full, unique).numpy()) < 1e-6
    assert float(part.loss) > 0 and abs(float(part.loss) - float(reference.loss)) < 1e-5


def test_positions_accept_lists_and_any_integer_dtype():
    model = make_pt()
    x = pt_inputs(model.config)
    with torch.no_grad():
        expected = model(**x, mask_positions=POSITIONS).logits
        for positions in (POSITIONS.tolist(), POSITIONS.numpy().astype(np.int32), POSITIONS.to(torch.int16)):
            assert torch.equal(model(**x, mask_positions=positions).logits, expected)
        assert model(**x, mask_positions=torch.zeros((2, 0), dtype=torch.long)).logits.shape == (2, 0, model.config.vocab_size)


def test_the_head_gathers_before_the_transform():
    """The head alone: rows picked from (B, T, H), then transform and projection on P rows only."""
    model = make_pt()
    head = model.cls.predictions
    hidden = torch.randn(2, 7, model.config.hidden_size)
    seen = []
    handle = head.transform.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        part = head(hidden, POSITIONS)
        full = head(hidden)
    handle.remove()
    assert seen == [(2, 3, model.config.hidden_size), (2, 7, model.config.hidden_size)]
    assert relative_error(part.numpy(), gathered(full, POSITIONS).numpy()) < 1e-6


@pytest.mark.parametrize("positions, message", [
    (torch.tensor([[0, 7], [1, 2]]), r"mask_positions must hold token positions in \[0, 7\).*got 7"),
    (torch.tensor([[0, -1], [1, 2]]), r"mask_positions must hold token positions in \[0, 7\).*got -1"),
    (torch.tensor([[0.0, 1.0], [1.0, 2.0]]), r"mask_positions must hold integer ids.*float32"),
    (torch.tensor([0, 1]), r"mask_positions must have 2 dimensions \(batch, num_positions\)"),
    (torch.tensor([[0, 1]]), r"mask_positions has shape \(1, 2\).*batch is 2"),
    ("0 1", r"mask_positions must be a torch.Tensor"),
])
def test_bad_positions_are_a_value_error_naming_mask_positions(positions, message):
    model = make_pt()
    with pytest.raises(ValueError, match=message):
        model(**pt_inputs(model.config), mask_positions=positions)


def test_mask_grid_places_each_mask_in_its_row():
    positions = np.array([[0, 2], [0, 5], [2, 1]])  # row 0: two masks, row 1: none, row 2: one
    grid, slots = mask_grid(positions, 3)
    assert grid.tolist() == [[2, 5], [0, 0], [1, 0]] and slots.tolist() == [0, 1, 0]
    assert grid[positions[:, 0], slots].tolist() == [2, 5, 1]
    empty, none = mask_grid(np.zeros((0, 2), dtype=np.int64), 2)
    assert empty.shape == (2, 0) and none.shape == (0,)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("vocab"))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fill_mask_calls_the_model_with_mask_positions(variant, tok):
    """The pipeline asks the model for the masks' logits (no reach into model.cls); its scores are the
    softmax of the model's full logits at the masks, in float32 and float16-mixed, on every variant."""
    torch.manual_seed(0)
    from mobilebert_pt import MobileBertForMaskedLM

    model = MobileBertForMaskedLM(pipeline_config(**VARIANTS[variant])).eval()
    calls = []
    forward = model.forward

    def recording(*args, **kwargs):
        calls.append(kwargs.get("mask_positions"))
        return forward(*args, **kwargs)

    model.forward = recording
    texts = ["the capital of [MASK] is [MASK] .", "hello [MASK]"]
    out = pipeline("fill-mask", model=model, tokenizer=tok, top_k=3, batch_size=2)(texts)
    assert len(calls) == 1 and tuple(calls[0].shape) == (2, 2)  # one call, (B, most masks in a row)
    ids = tok(texts[1], return_tensors="pt")
    with torch.no_grad():
        logits = forward(input_ids=ids["input_ids"]).logits[0]
    mask_at = ids["input_ids"][0].tolist().index(tok.mask_token_id)
    scores = torch.softmax(logits[mask_at], -1)
    np.testing.assert_allclose([r["score"] for r in out[1]], scores.topk(3).values.numpy(), rtol=1e-5, atol=1e-7)
    assert len(out[0]) == 2 and len(out[1]) == 3  # two masks: one list of 3 per mask; one mask: the list of 3
    mixed = pipeline("fill-mask", model=model, tokenizer=tok, top_k=3, batch_size=2, torch_dtype="float16-mixed")(texts)
    for ours, ref in zip(mixed[0] + [mixed[1]], out[0] + [out[1]]):
        np.testing.assert_allclose([r["score"] for r in ours], [r["score"] for r in ref], atol=1e-3)


def test_float16_mixed_caches_the_heads_transposed_weight():
    """The head's second product reads dense.weight.t(): the mode converts that parameter once, not per call."""
    model = make_pt()
    x = pt_inputs(model.config)
    mode = Float16Matmuls()
    with torch.no_grad(), mode:
        first = model(**x, mask_positions=POSITIONS).logits
        second = model(**x, mask_positions=POSITIONS).logits
    dense = model.cls.predictions.dense.weight
    assert (id(dense), True) in mode._cache and torch.equal(first, second)
    with torch.no_grad():
        assert relative_error(first.numpy(), model(**x, mask_positions=POSITIONS).logits.numpy()) < 1e-2
