"""PyTorch losses: against hand-computed values, every integer label dtype, no labelled target (0, not NaN),
explicit problem_type, and label mistakes that would otherwise truncate or broadcast silently."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mobilebert_pt
from tests.harness.models import assert_close, random_inputs, tiny_config


def make(cls_name, seed=0, **overrides):
    torch.manual_seed(seed)
    model = getattr(mobilebert_pt, cls_name)(tiny_config(**overrides)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model


def inputs(config, choices=False):
    x = {k: torch.from_numpy(v) for k, v in random_inputs(config).items()}
    return {k: torch.stack([v, v.flip(1)], dim=1) for k, v in x.items()} if choices else x  # (2, 2, 7) / (2, 7)


def hand_cross_entropy(logits, labels):
    """Mean of -log softmax(logits)[label] over the labels != -100 (float64)."""
    logp = torch.log_softmax(logits.double().reshape(-1, logits.shape[-1]), -1)
    labels = labels.reshape(-1)
    keep = labels != -100
    return -logp[keep.nonzero().flatten(), labels[keep]].mean()


def mlm_labels(config):
    labels = torch.full((2, 7), -100)
    labels[0, 1], labels[0, 4], labels[1, 2] = 5, 17, 98  # three masked tokens, the rest ignored
    return labels


# ------------------------------------------------------------------ hand-computed values


def test_masked_lm_loss_by_hand():
    model = make("MobileBertForMaskedLM")
    labels = mlm_labels(model.config)
    with torch.no_grad():
        out = model(**inputs(model.config), labels=labels)
    logp = torch.log_softmax(out.logits.double(), -1)
    hand = -(logp[0, 1, 5] + logp[0, 4, 17] + logp[1, 2, 98]) / 3
    assert_close(out.loss.numpy(), hand.numpy(), 1e-6)


def test_pretraining_loss_is_mlm_plus_nsp_by_hand():
    model = make("MobileBertForPreTraining")
    labels, nsp = mlm_labels(model.config), torch.tensor([1, 0])
    with torch.no_grad():
        out = model(**inputs(model.config), labels=labels, next_sentence_label=nsp)
    mlm = hand_cross_entropy(out.prediction_logits, labels)
    nsp_logp = torch.log_softmax(out.seq_relationship_logits.double(), -1)
    next_sentence = -(nsp_logp[0, 1] + nsp_logp[1, 0]) / 2
    assert_close(out.loss.numpy(), (mlm + next_sentence).numpy(), 1e-6)
    assert float(next_sentence) > 1e-3 and float(mlm) > 1e-3  # both terms count


def test_next_sentence_loss_by_hand():
    model = make("MobileBertForNextSentencePrediction")
    with torch.no_grad():
        out = model(**inputs(model.config), labels=torch.tensor([0, 1]))
        old_name = model(**inputs(model.config), next_sentence_label=torch.tensor([0, 1]))
    logp = torch.log_softmax(out.logits.double(), -1)
    assert_close(out.loss.numpy(), (-(logp[0, 0] + logp[1, 1]) / 2).numpy(), 1e-6)
    assert float(old_name.loss) == float(out.loss)


def test_token_classification_loss_by_hand():
    model = make("MobileBertForTokenClassification", num_labels=3)
    labels = torch.tensor([[0, 1, 2, 2, 1, 0, 1], [2, 2, 0, 1, 1, -100, -100]])  # padding ignored
    with torch.no_grad():
        out = model(**inputs(model.config), labels=labels)
    logp = torch.log_softmax(out.logits.double(), -1)
    terms = [logp[b, t, labels[b, t]] for b in range(2) for t in range(7) if labels[b, t] != -100]
    assert len(terms) == 12
    assert_close(out.loss.numpy(), (-sum(terms) / 12).numpy(), 1e-6)


# ------------------------------------------------------------------ integer label dtypes


CLASS_LABELS = {
    "MobileBertForMaskedLM": lambda c: {"labels": mlm_labels(c)},
    "MobileBertForPreTraining": lambda c: {"labels": mlm_labels(c), "next_sentence_label": torch.tensor([1, -100])},
    "MobileBertForNextSentencePrediction": lambda c: {"labels": torch.tensor([1, 0])},
    "MobileBertForSequenceClassification": lambda c: {"labels": torch.tensor([1, 0])},
    "MobileBertForMultipleChoice": lambda c: {"labels": torch.tensor([1, 0])},
    "MobileBertForTokenClassification": lambda c: {"labels": torch.tensor([[0, 1] * 3 + [0], [1, 1, 0, 0, 1, -100, -100]])},
    "MobileBertForQuestionAnswering": lambda c: {"start_positions": torch.tensor([1, 2]), "end_positions": torch.tensor([3, 50])},
}


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16])
@pytest.mark.parametrize("cls_name", list(CLASS_LABELS))
def test_any_integer_label_dtype_gives_the_int64_loss(cls_name, dtype):
    """int32 / int16 labels (numpy's default int on some platforms, compact datasets) used to reach the kernel
    and fail there ("expected scalar type Long"); they are checked, then cast."""
    model = make(cls_name)
    x = inputs(model.config, choices=cls_name == "MobileBertForMultipleChoice")
    labels = CLASS_LABELS[cls_name](model.config)
    with torch.no_grad():
        expected = model(**x, **labels).loss
        actual = model(**x, **{k: v.to(dtype) for k, v in labels.items()}).loss
    assert float(expected) > 0 and float(actual) == float(expected)
    if cls_name != "MobileBertForSequenceClassification":  # (where float labels mean multi-label)
        with pytest.raises(ValueError, match="must hold integer (class ids|token positions)"):
            model(**x, **{k: v.float() for k, v in labels.items()})


# ------------------------------------------------------------------ nothing labelled: 0, not NaN


@pytest.mark.parametrize("cls_name", ["MobileBertForMaskedLM", "MobileBertForPreTraining",
                                      "MobileBertForTokenClassification", "MobileBertForNextSentencePrediction",
                                      "MobileBertForSequenceClassification", "MobileBertForMultipleChoice",
                                      "MobileBertForQuestionAnswering"])
def test_no_labelled_target_gives_zero_loss_and_zero_gradients(cls_name):
    """torch's mean over zero targets is NaN, which would poison every weight at the next step; ours is 0."""
    model = make(cls_name).train()
    x = inputs(model.config, choices=cls_name == "MobileBertForMultipleChoice")
    ignored = {k: torch.full_like(v, -100) for k, v in CLASS_LABELS[cls_name](model.config).items()}
    if cls_name == "MobileBertForQuestionAnswering":  # positions past the window are the ignored ones there
        ignored = {k: torch.tensor([7, 99]) for k in ignored}
    loss = model(**x, **ignored).loss
    assert loss.dim() == 0 and float(loss) == 0.0
    loss.backward()
    assert all(p.grad is None or float(p.grad.abs().max()) == 0.0 for p in model.parameters())


def test_keras_gives_zero_too_and_agrees_with_pytorch():
    """The same rule on the Keras side (helper of the TF heads): both 0 with nothing labelled, equal otherwise."""
    pytest.importorskip("tensorflow")
    from tests.harness.models import build_pt, build_tf, random_weights

    config = tiny_config()
    pt = build_pt("MobileBertForMaskedLM", config, random_weights(config, "MobileBertForMaskedLM", "pt"))
    tf_model = build_tf("MobileBertForMaskedLM", config, random_weights(config, "MobileBertForMaskedLM", "tf"))
    x = random_inputs(config)
    for labels in (mlm_labels(config).numpy(), np.full((2, 7), -100)):
        with torch.no_grad():
            expected = pt(**{k: torch.from_numpy(v) for k, v in x.items()}, labels=torch.from_numpy(labels)).loss
        actual = tf_model(**x, labels=labels, training=False).loss
        assert_close(np.asarray(actual), expected.numpy(), 1e-5)
    assert float(expected) == 0.0


# ------------------------------------------------------------------ problem_type and silent mistakes


def test_explicit_problem_type_overrides_the_inference():
    # Float labels with 3 labels would infer multi-label (BCE); problem_type="regression" asks for MSE.
    model = make("MobileBertForSequenceClassification", num_labels=3, problem_type="regression")
    x = inputs(model.config)
    targets = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, 1.0]])
    with torch.no_grad():
        out = model(**x, labels=targets)
    assert_close(out.loss.numpy(), ((out.logits - targets) ** 2).mean().numpy(), 1e-6)
    # Integer 0/1 columns would infer single-label (and fail its shape); multi-label asked for: BCE.
    model.config.problem_type = "multi_label_classification"
    columns = torch.tensor([[1, 0, 1], [0, 0, 1]])
    with torch.no_grad():
        out = model(**x, labels=columns)
    p = torch.sigmoid(out.logits.double())
    bce = -(columns * torch.log(p) + (1 - columns) * torch.log(1 - p)).mean()
    assert_close(out.loss.numpy(), bce.numpy(), 1e-6)


def test_float_answer_positions_are_refused():
    model = make("MobileBertForQuestionAnswering")
    x = inputs(model.config)
    with pytest.raises(ValueError, match="start_positions must hold integer token positions.*float32"):
        model(**x, start_positions=torch.tensor([2.7, 1.0]), end_positions=torch.tensor([3, 4]))
    with pytest.raises(ValueError, match=r"end_positions has shape \(3,\); expected \(2,\)"):
        model(**x, start_positions=torch.tensor([1, 2]), end_positions=torch.tensor([3, 4, 5]))


def test_regression_labels_must_line_up_with_the_logits():
    model = make("MobileBertForSequenceClassification", num_labels=2, problem_type="regression")
    x = inputs(model.config)
    with pytest.raises(ValueError, match=r"regression labels must have shape \(2, 2\).*got \(2,\)"):
        model(**x, labels=torch.tensor([0.5, 1.5]))  # would broadcast against (2, 2) logits
    single = make("MobileBertForSequenceClassification", num_labels=1)
    with torch.no_grad():  # (B,) and (B, 1) are both the one column
        a = single(**x, labels=torch.tensor([0.5, 1.5])).loss
        b = single(**x, labels=torch.tensor([[0.5], [1.5]])).loss
    assert float(a) == float(b) > 0
    with pytest.raises(ValueError, match=r"regression labels must have shape \(2, 1\) or \(2,\)"):
        single(**x, labels=torch.tensor([0.5, 1.5, 2.5, 0.0]))


def test_class_labels_must_line_up_with_the_logits():
    model = make("MobileBertForMaskedLM")
    x = inputs(model.config)
    with pytest.raises(ValueError, match=r"labels has shape \(7, 2\); expected \(2, 7\)"):
        model(**x, labels=mlm_labels(model.config).T.contiguous())  # same count, wrong layout
    classifier = make("MobileBertForSequenceClassification", num_labels=3)
    with pytest.raises(ValueError, match=r"labels has shape \(4,\); expected \(2,\)"):
        classifier(**x, labels=torch.tensor([0, 1, 2, 0]))
