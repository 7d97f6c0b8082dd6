"""PyTorch inputs: empty batches, Python lists, multiple-choice broadcasting and inputs_embeds, replacing the
embedding table, dropout only in training, classifier_dropout's fallback, and the two attention paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.harness.models import VARIANTS, assert_close, make_pt, random_inputs, tiny_config  # make_pt: seeded, perturbed


def inputs(config):
    return {k: torch.from_numpy(v) for k, v in random_inputs(config).items()}  # (2, 7), row 1 padded


def no_kernel(model):
    def hook(*_):
        raise AssertionError("a kernel ran before the input was checked")
    return model.mobilebert.embeddings.register_forward_pre_hook(hook)


# ------------------------------------------------------------------ empty and non-tensor inputs


@pytest.mark.parametrize("name, value, message", [
    ("input_ids", torch.zeros(0, 7, dtype=torch.long), r"input_ids has an empty batch \(shape \(0, 7\)\)"),
    ("input_ids", torch.zeros(2, 0, dtype=torch.long), "input has 0 tokens"),
    ("inputs_embeds", torch.zeros(0, 7, 16), r"inputs_embeds has an empty batch \(shape \(0, 7, 16\)\)"),
    ("input_ids", [[5, 6, 7], [8, 9]], "rectangular list of lists"),
    ("input_ids", "hello world", "input_ids must be a torch.Tensor.*got str"),
])
def test_empty_or_unusable_inputs_are_value_errors(name, value, message):
    model = make_pt()
    handle = no_kernel(model)
    with pytest.raises(ValueError, match=message):
        model(**{name: value})
    handle.remove()


def test_lists_and_numpy_arrays_are_taken_as_tensors():
    model = make_pt("MobileBertForSequenceClassification", num_labels=3)
    x = inputs(model.config)
    with torch.no_grad():
        expected = model(**x, labels=torch.tensor([2, 0]))
        from_lists = model(**{k: v.tolist() for k, v in x.items()}, labels=[2, 0])
        from_numpy = model(**{k: v.numpy() for k, v in x.items()}, labels=np.array([2, 0]))
    for out in (from_lists, from_numpy):
        assert torch.equal(out.logits, expected.logits) and float(out.loss) == float(expected.loss)
    with pytest.raises(ValueError, match=r"input_ids must hold ids in \[0, 99\)"):
        model(input_ids=[[5, 120]])


# ------------------------------------------------------------------ multiple choice


def choices(config):
    x = inputs(config)
    return {k: torch.stack([v, v.flip(1), v.roll(1, 1)], dim=1) for k, v in x.items()}  # (B=2, C=3, T=7)


def test_multiple_choice_position_ids_broadcast():
    """One set of positions for every choice, as (T,), (1, T) or (1, 1, T), equals the full (B, C, T) form."""
    model = make_pt("MobileBertForMultipleChoice")
    x = choices(model.config)
    positions = torch.tensor([3, 1, 4, 1, 5, 9, 2])
    with torch.no_grad():
        expected = model(**x, position_ids=positions.expand(2, 3, 7)).logits
        default = model(**x).logits
        for shared in (positions, positions[None], positions[None, None]):
            assert_close(model(**x, position_ids=shared).logits.numpy(), expected.numpy(), 1e-6)
    assert float((default - expected).abs().max()) > 1e-3  # the positions matter
    with pytest.raises(ValueError, match=r"position_ids has shape \(2, 7\); allowed: \(2, 3, 7\)"):
        model(**x, position_ids=positions.expand(2, 7))


def test_multiple_choice_from_inputs_embeds():
    model = make_pt("MobileBertForMultipleChoice")
    x = choices(model.config)
    embeds = model.get_input_embeddings()(x["input_ids"])  # (2, 3, 7, 16)
    with torch.no_grad():
        expected = model(**x, labels=torch.tensor([2, 0]))
        actual = model(inputs_embeds=embeds, attention_mask=x["attention_mask"], token_type_ids=x["token_type_ids"],
                       labels=torch.tensor([2, 0]))
    assert_close(actual.logits.numpy(), expected.logits.numpy(), 1e-6)
    assert_close(actual.loss.numpy(), expected.loss.numpy(), 1e-6)
    with pytest.raises(ValueError, match=r"inputs_embeds must have 4 dimensions \(batch, num_choices, seq, embedding_size\)"):
        model(inputs_embeds=embeds[0])
    with pytest.raises(ValueError, match=r"multiple-choice input has shape \(2, 0, 7\)"):
        model(input_ids=x["input_ids"][:, :0])


# ------------------------------------------------------------------ replacing the embedding table


def test_set_input_embeddings_of_another_size():
    mlm = make_pt()
    x = inputs(mlm.config)
    with torch.no_grad():
        before = mlm(**x).logits
    # The masked-LM head has one bias and one dense column per token: another size would not line up with it.
    with pytest.raises(ValueError, match=r"masked-LM head over 99 tokens.*resize_token_embeddings\(120\)"):
        mlm.set_input_embeddings(torch.nn.Embedding(120, 16))
    assert mlm.config.vocab_size == 99 and mlm.get_input_embeddings().num_embeddings == 99
    with torch.no_grad():
        assert torch.equal(mlm(**x).logits, before)  # unchanged, still runs
    # The suggested route works and keeps the head consistent.
    mlm.resize_token_embeddings(120)
    table = torch.nn.Embedding(120, 16)
    mlm.set_input_embeddings(table)
    assert mlm.cls.predictions.decoder.weight is table.weight
    with torch.no_grad():
        assert mlm(input_ids=torch.tensor([[5, 119]])).logits.shape == (1, 2, 120)
    # A model without a masked-LM head takes any size; ids up to the new size then work.
    classifier = make_pt("MobileBertForSequenceClassification")
    classifier.set_input_embeddings(torch.nn.Embedding(120, 16))
    assert classifier.config.vocab_size == 120
    with torch.no_grad():
        assert classifier(input_ids=torch.tensor([[5, 119]])).logits.shape == (1, 2)
    with pytest.raises(ValueError, match="padding id 0"):
        make_pt("MobileBertModel").set_input_embeddings(torch.nn.Embedding(0, 16))


# ------------------------------------------------------------------ dropout


@pytest.mark.parametrize("cls_name", ["MobileBertForMaskedLM", "MobileBertForSequenceClassification"])
def test_dropout_only_in_training(cls_name):
    model = make_pt(cls_name, noise=0.05)
    x = inputs(model.config)
    with torch.no_grad():
        eval_a, eval_b = model(**x).logits, model(**x).logits
        model.train()
        train_a, train_b = model(**x).logits, model(**x).logits
    assert torch.equal(eval_a, eval_b)
    assert float((train_a - train_b).abs().max()) > 1e-3 and float((train_a - eval_a).abs().max()) > 1e-3
    # With every probability 0, training gives the evaluation numbers: the only difference was dropout.
    quiet = make_pt(cls_name, noise=0.05, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    with torch.no_grad():
        assert_close(quiet(**x).logits.numpy(), eval_a.numpy(), 1e-5)


@pytest.mark.parametrize("cls_name", ["MobileBertForSequenceClassification", "MobileBertForMultipleChoice",
                                      "MobileBertForTokenClassification"])
def test_classifier_dropout_falls_back_to_hidden_dropout(cls_name):
    assert make_pt(cls_name, hidden_dropout_prob=0.3).dropout.p == 0.3
    assert make_pt(cls_name, hidden_dropout_prob=0.3, classifier_dropout=0.0).dropout.p == 0.0
    # Its effect in training: zeroes about p of the classifier's inputs and scales the rest by 1 / (1 - p).
    model = make_pt(cls_name, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    assert model.dropout.p == 0.0
    seen = {}
    model.dropout.register_forward_hook(lambda mod, args, out: seen.update(x=args[0], y=out))
    x = choices(model.config) if cls_name == "MobileBertForMultipleChoice" else inputs(model.config)
    with torch.no_grad():
        model(**x)
    assert torch.equal(seen["x"], seen["y"])  # fallback 0.0: nothing dropped
    model = make_pt(cls_name, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.5).train()
    model.dropout.register_forward_hook(lambda mod, args, out: seen.update(x=args[0], y=out))
    with torch.no_grad():
        model(**x)
    kept = seen["y"] != 0
    assert 0.3 < float(kept.float().mean()) < 0.7
    assert_close(seen["y"][kept].numpy(), (2.0 * seen["x"][kept]).numpy(), 1e-6)


# ------------------------------------------------------------------ the two attention paths


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sdpa_and_explicit_attention_agree(variant):
    """scaled_dot_product_attention (no attentions asked for) and the explicit softmax path give the same numbers.

    Order-one weights with O(1) softmax inputs (tests/frameworks.random_weights): saturated, the softmax would
    amplify the two kernels' float32 summation orders past 1e-5 (and hide real differences)."""
    from tests.harness.models import build_pt, random_weights

    config = tiny_config(variant)
    model = build_pt("MobileBertForPreTraining", config, random_weights(config, "MobileBertForPreTraining", "pt"))
    x = inputs(model.config)
    with torch.no_grad():
        fast = model(**x, output_hidden_states=True)
        explicit = model(**x, output_hidden_states=True, output_attentions=True)
    assert explicit.attentions is not None and fast.attentions is None
    for a, b in zip(fast.hidden_states, explicit.hidden_states):
        assert_close(a.numpy(), b.numpy(), 1e-5, what=f"{variant} hidden states")
    assert_close(fast.prediction_logits.numpy(), explicit.prediction_logits.numpy(), 1e-5, what=f"{variant} logits")
    assert float(explicit.prediction_logits.std()) > 1e-2
