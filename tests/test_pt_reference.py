"""PyTorch heads against the reference implementation (transformers==4.57.6, test-only), same weights.

For every tiny variant of tests/harness/models.py and every one of the eight classes: a reference model is
built from the same config, its weights are set to order-one random values (at the init's std 0.02
every activation is near zero and any two implementations would agree), its state_dict is loaded
into ours, and logits, hidden states, attentions and losses must match to relative 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mobilebert_pt
from tests.harness.models import VARIANTS, assert_close, random_inputs, randomize, tiny_config

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.reference

HEADS = [
    "MobileBertModel", "MobileBertForPreTraining", "MobileBertForMaskedLM", "MobileBertForNextSentencePrediction",
    "MobileBertForSequenceClassification", "MobileBertForMultipleChoice", "MobileBertForTokenClassification",
    "MobileBertForQuestionAnswering",
]


def config_for(variant: str, **overrides):
    config = tiny_config(variant, **{"num_labels": 3, **overrides})
    if config.normalization_type == "layer_norm":
        # The reference PT code builds some LayerNorms with torch's default eps 1e-5 instead of
        # config.layer_norm_eps (we use layer_norm_eps everywhere): with eps = 1e-5 both agree.
        config = config.copy(layer_norm_eps=1e-5)
    return config


def reference_and_ours(architecture: str, config, seed: int = 0):
    ref_config = transformers.MobileBertConfig.from_dict(config.to_dict())
    ref_config._attn_implementation = "eager"
    torch.manual_seed(seed)
    ref = getattr(transformers, architecture)(ref_config).eval()
    randomize(ref, seed, embeddings_std=1.0)
    ours = getattr(mobilebert_pt, architecture)(config).eval()
    state = {k: v for k, v in ref.state_dict().items() if ".decoder." not in k and "position_ids" not in k}
    missing, unexpected = ours.load_state_dict(state, strict=False)
    assert [k for k in missing if not k.endswith("decoder.weight")] == [] and unexpected == []
    return ref, ours


def inputs_for(architecture: str, config, seed: int = 0) -> dict:
    if architecture == "MobileBertForMultipleChoice":
        choices = [random_inputs(config, seed=seed + c) for c in range(3)]
        arrays = {k: np.stack([c[k] for c in choices], axis=1) for k in choices[0]}  # (B=2, C=3, T=7)
    else:
        arrays = random_inputs(config, seed=seed)  # (2, 7), last row padded on the right
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def labels_for(architecture: str, config, inputs: dict, gen: torch.Generator) -> dict:
    batch, seq = inputs["input_ids"].shape[0], inputs["input_ids"].shape[-1]
    if architecture in ("MobileBertForMaskedLM", "MobileBertForPreTraining"):
        labels = torch.randint(0, config.vocab_size, (batch, seq), generator=gen)
        labels[:, ::2] = -100  # unmasked positions: no loss
        out = {"labels": labels}
        if architecture == "MobileBertForPreTraining":
            out["next_sentence_label"] = torch.tensor([0, 1])
        return out
    if architecture == "MobileBertForNextSentencePrediction":
        return {"labels": torch.tensor([1, 0])}
    if architecture == "MobileBertForSequenceClassification":
        return {"labels": torch.tensor([2, 0])}
    if architecture == "MobileBertForMultipleChoice":
        return {"labels": torch.tensor([1, 2])}
    if architecture == "MobileBertForTokenClassification":
        labels = torch.randint(0, config.num_labels, (batch, seq), generator=gen)
        labels[-1, -2:] = -100
        return {"labels": labels}
    if architecture == "MobileBertForQuestionAnswering":
        # 50 lies outside the 7-token window: clamped to 7 and ignored (the end of row 1 only counts once).
        return {"start_positions": torch.tensor([1, 3]), "end_positions": torch.tensor([4, 50])}
    return {}


def flat(out) -> dict:
    arrays = {}
    for key, value in out.items():
        if isinstance(value, tuple):
            arrays.update({f"{key}.{i}": v for i, v in enumerate(value)})
        else:
            arrays[key] = value
    return arrays


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("architecture", HEADS)
def test_outputs_and_losses_match_reference(variant, architecture):
    # qa_outputs is (2, H): the reference sizes it by num_labels, so QA keeps the default 2 labels.
    config = config_for(variant, num_labels=2 if architecture == "MobileBertForQuestionAnswering" else 3)
    ref, ours = reference_and_ours(architecture, config, seed=len(variant) + HEADS.index(architecture))
    inputs = inputs_for(architecture, config)
    labels = labels_for(architecture, config, inputs, torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = flat(ref(**inputs, **labels, output_hidden_states=True, output_attentions=True, return_dict=True))
        actual = flat(ours(**inputs, **labels, output_hidden_states=True, output_attentions=True))
        fast = flat(ours(**inputs, **labels))  # scaled_dot_product_attention path
    assert set(actual) == set(expected), (sorted(actual), sorted(expected))
    for key, value in expected.items():
        assert_close(actual[key].numpy(), value.numpy(), 1e-5, what=f"{architecture}/{variant}/{key}")
    for key, value in fast.items():
        # The fused kernel sums in another order: float32 rounding, amplified where tanh/softmax are steep.
        assert_close(value.numpy(), expected[key].numpy(), 1e-4, what=f"{architecture}/{variant}/{key} (SDPA path)")
    if labels:
        assert "loss" in expected and float(expected["loss"]) > 0
    # The outputs vary with the input (the comparison is not between two constants).
    first = next(k for k in expected if k not in ("loss",))
    assert float(expected[first].std()) > 1e-3


@pytest.mark.parametrize("problem", ["regression", "single_label_classification", "multi_label_classification"])
def test_sequence_classification_losses_match_reference(problem):
    num_labels = 1 if problem == "regression" else 3
    config = config_for("default", num_labels=num_labels)
    ref, ours = reference_and_ours("MobileBertForSequenceClassification", config, seed=7)
    inputs = inputs_for("MobileBertForSequenceClassification", config)
    labels = {
        "regression": torch.tensor([0.5, -1.5]),  # float, num_labels 1 -> MSE
        "single_label_classification": torch.tensor([2, 1]),  # integers -> cross-entropy
        "multi_label_classification": torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]),  # floats -> BCE
    }[problem]
    with torch.no_grad():
        expected = ref(**inputs, labels=labels).loss
        actual = ours(**inputs, labels=labels).loss
        logits = ours(**inputs).logits
    assert_close(actual.numpy(), expected.numpy(), 1e-5, what=problem)
    # and by hand
    if problem == "regression":
        hand = ((logits.squeeze(-1) - labels) ** 2).mean()
    elif problem == "single_label_classification":
        hand = -torch.log_softmax(logits, -1)[torch.arange(2), labels].mean()
    else:
        p = torch.sigmoid(logits)
        hand = -(labels * torch.log(p) + (1 - labels) * torch.log(1 - p)).mean()
    assert_close(actual.numpy(), hand.numpy(), 1e-5, what=f"{problem} by hand")


def test_qa_loss_by_hand():
    config = config_for("default", num_labels=2)
    ours = mobilebert_pt.MobileBertForQuestionAnswering(config).eval()
    randomize(ours, 3, embeddings_std=1.0)
    inputs = inputs_for("MobileBertForQuestionAnswering", config)
    with torch.no_grad():
        out = ours(**inputs, start_positions=torch.tensor([1, 0]), end_positions=torch.tensor([4, 50]))
    start_lp, end_lp = torch.log_softmax(out.start_logits, -1), torch.log_softmax(out.end_logits, -1)
    # end 50 is past the 7-token window (ignored): end loss averages over row 0 only. Negative positions
    # are a ValueError (tests/test_input_hardening.py).
    start_loss = -(start_lp[0, 1] + start_lp[1, 0]) / 2
    end_loss = -end_lp[0, 4]
    assert_close(out.loss.numpy(), ((start_loss + end_loss) / 2).numpy(), 1e-5)


@pytest.mark.parametrize("variant", ["default", "separate_qk_no_bottleneck"])
def test_head_mask_matches_reference(variant):
    config = config_for(variant)
    ref, ours = reference_and_ours("MobileBertForMaskedLM", config, seed=11)
    inputs = inputs_for("MobileBertForMaskedLM", config)
    head_mask = torch.tensor([[1.0, 0.0, 1.0, 0.5], [0.0, 1.0, 1.0, 1.0]])  # (layers, heads)
    with torch.no_grad():
        expected = ref(**inputs, head_mask=head_mask, output_attentions=True)
        actual = ours(**inputs, head_mask=head_mask, output_attentions=True)
    assert_close(actual.logits.numpy(), expected.logits.numpy(), 1e-5)
    for a, e in zip(actual.attentions, expected.attentions):
        assert_close(a.numpy(), e.numpy(), 1e-5)


@pytest.mark.parametrize("architecture", ["MobileBertForPreTraining", "MobileBertForTokenClassification"])
def test_layer_norm_at_default_eps_matches_reference_tf(tmp_path, architecture):
    """normalization_type "layer_norm" at the default layer_norm_eps 1e-12, against the reference's TF model.

    The reference PyTorch classes build two LayerNorms with torch's default eps 1e-5 whatever
    layer_norm_eps says, so they are compared above at eps 1e-5; the reference TF classes use
    layer_norm_eps everywhere, as we do (DESIGN.md), so at 1e-12 they are the reference.
    """
    pytest.importorskip("tensorflow")
    import warnings

    from tests.harness.models import build_pt, random_weights

    config = tiny_config("layer_norm_gelu", num_labels=3)
    assert config.layer_norm_eps == 1e-12
    ours = build_pt(architecture, config, random_weights(config, architecture, "pt"))
    norms = [m for m in ours.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) > 5 and {m.eps for m in norms} == {1e-12}  # every LayerNorm, the head's included
    ours.save_pretrained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(transformers, "TF" + architecture).from_pretrained(tmp_path, from_pt=True)
    inputs = inputs_for(architecture, config)
    with torch.no_grad():
        actual = ours(**inputs, output_hidden_states=True)
    expected = theirs({k: v.numpy() for k, v in inputs.items()}, output_hidden_states=True, training=False)
    assert_close(actual[0].numpy(), np.asarray(expected[0]), 1e-5, what=f"{architecture} logits")
    for i, (a, e) in enumerate(zip(actual.hidden_states, expected.hidden_states)):
        assert_close(a.numpy(), np.asarray(e), 1e-5, what=f"{architecture} hidden state {i}")
    assert float(actual[0].std()) > 1e-2
