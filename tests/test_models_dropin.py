"""Drop-in for transformers users (issue 15, the model half): code written for transformers'
MobileBertFor* / TFMobileBertFor* runs unchanged with ours. A model tester over tiny configs, both
frameworks: the config's output flags, main_input_name, from_pretrained(None, state_dict=...),
resize_token_embeddings, positional Keras inputs, tie_word_embeddings, and transformers' Trainer."""

from __future__ import annotations

import numpy as np
import pytest

from tests.harness.models import ARCHITECTURES, model_inputs, tiny_config

HEADS = ARCHITECTURES  # "MobileBertModel", "MobileBertForPreTraining", ...


def _fields(out) -> dict:
    return {k: v for k, v in out.items() if v is not None}


# ---------------------------------------------------------------------------------------- 1. config flags

@pytest.mark.parametrize("architecture", HEADS)
def test_config_output_flags_are_the_defaults(framework, architecture):
    """model.config.output_attentions / output_hidden_states / return_dict decide when the call passes None."""
    config = tiny_config()
    model = getattr(framework.module(), framework.prefix + architecture)(config)
    x = {k: framework.tensor(v) for k, v in model_inputs(config, architecture).items()}
    plain = model(**x)
    assert plain.attentions is None and plain.hidden_states is None

    model.config.output_attentions = True
    model.config.output_hidden_states = True
    out = model(**x)
    assert len(out.attentions) == config.num_hidden_layers
    assert len(out.hidden_states) == config.num_hidden_layers + 1
    assert model(**x, output_attentions=False).attentions is None  # an explicit argument still wins

    model.config.return_dict = False
    as_tuple = model(**x)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(_fields(out))
    assert not isinstance(model(**x, return_dict=True), tuple)
    model.config.return_dict = True
    model.config.torchscript = True  # transformers: torchscript means tuples (config.use_return_dict)
    assert isinstance(model(**x), tuple)


# ---------------------------------------------------------------------------------------- 2. main_input_name

@pytest.mark.parametrize("architecture", HEADS)
def test_main_input_name(framework, architecture):
    cls = getattr(framework.module(), framework.prefix + architecture)
    assert cls.main_input_name == "input_ids"


# ---------------------------------------------------------------------------------------- 3. state_dict=

@pytest.mark.parametrize("architecture", ["MobileBertForMaskedLM", "MobileBertForSequenceClassification"])
def test_pt_from_pretrained_state_dict(tmp_path, architecture):
    torch = pytest.importorskip("torch")
    import mobilebert_pt

    from tests.harness.models import make_pt, pt_inputs

    model = make_pt(architecture)
    cls = type(model)
    x = pt_inputs(model.config, architecture)
    with torch.no_grad():
        expected = model(**x).logits

    loaded = cls.from_pretrained(None, config=model.config, state_dict=model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(loaded(**x).logits, expected)
    assert not loaded.training

    # A path gives the config; state_dict gives the weights (the file's weights are not read).
    other = getattr(mobilebert_pt, architecture)(model.config)
    other.save_pretrained(tmp_path)
    from_path = cls.from_pretrained(tmp_path, state_dict=model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(from_path(**x).logits, expected)


def test_pt_from_pretrained_state_dict_errors():
    pytest.importorskip("torch")
    from tests.harness.models import make_pt

    model = make_pt("MobileBertForMaskedLM")
    cls = type(model)
    with pytest.raises(ValueError, match="needs both config= and state_dict="):
        cls.from_pretrained(None, config=model.config)
    with pytest.raises(ValueError, match="needs both config= and state_dict="):
        cls.from_pretrained(None, state_dict=model.state_dict())
    with pytest.raises(ValueError, match="state_dict= does not hold a flat dict of named tensors"):
        cls.from_pretrained(None, config=model.config, state_dict={"a": [1.0]})
    state = model.state_dict()
    state.pop("mobilebert.encoder.layer.0.attention.self.query.weight")
    with pytest.raises(ValueError, match="state_dict= does not match MobileBertForMaskedLM: 1 backbone weights are missing"):
        cls.from_pretrained(None, config=model.config, state_dict=state)


# ---------------------------------------------------------------------------------------- 4. resize (PyTorch)

@pytest.mark.parametrize("architecture", ["MobileBertForMaskedLM", "MobileBertForPreTraining"])
def test_pt_resize_follows_transformers(architecture):
    """Added rows near the mean of the old rows (embeddings, head dense columns), bias 0: as transformers 4.57."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tests.harness.models import make_pt

    ours = make_pt(architecture)
    theirs = getattr(transformers, architecture)(transformers.MobileBertConfig(**ours.config.to_dict())).eval()
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected and set(missing) <= {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    old_table = ours.get_input_embeddings().weight.detach().clone()  # (99, 16)
    old_dense = ours.cls.predictions.dense.weight.detach().clone()  # (16, 99)

    torch.manual_seed(1)
    ours.resize_token_embeddings(105)
    theirs.resize_token_embeddings(105)
    for model in (ours, theirs):
        table = model.get_input_embeddings().weight.detach()
        dense = model.cls.predictions.dense.weight.detach()
        assert table.shape == (105, 16) and dense.shape == (16, 105) and model.config.vocab_size == 105
        assert torch.equal(table[:99], old_table) and torch.equal(dense[:, :99], old_dense)
        # Rows, drawn from N(mean, 1e-9 * covariance): the mean to within ~1e-5 of the weights' scale, distinct.
        torch.testing.assert_close(table[99:], old_table.mean(0).expand(6, -1), atol=1e-4, rtol=0)
        torch.testing.assert_close(dense[:, 99:], old_dense.mean(1, keepdim=True).expand(-1, 6), atol=1e-4, rtol=0)
        assert not torch.equal(table[99], table[100])
        torch.testing.assert_close(model.cls.predictions.bias.detach()[99:], torch.zeros(6))
        assert model.cls.predictions.decoder.weight is model.get_input_embeddings().weight
    x = {"input_ids": torch.tensor([[1, 100, 104, 3]])}
    with torch.no_grad():
        expected = theirs(**x)[0]
        torch.testing.assert_close(ours(**x)[0], expected, atol=1e-3 * float(expected.abs().max()), rtol=0)


def test_pt_resize_options_and_errors():
    torch = pytest.importorskip("torch")
    from tests.harness.models import make_pt

    model = make_pt("MobileBertForMaskedLM")
    assert model.resize_token_embeddings(100, pad_to_multiple_of=8).num_embeddings == 104
    assert model.cls.predictions.bias.shape == (104,)
    assert model.resize_token_embeddings(pad_to_multiple_of=32).num_embeddings == 128  # the current size, rounded up
    table = model.get_input_embeddings().weight.detach().clone()
    grown = model.resize_token_embeddings(160, mean_resizing=False).weight.detach()
    assert torch.equal(grown[:128], table)
    spread = float(grown[128:].std())  # drawn as at init: truncated normal(initializer_range), not the mean
    assert 0.5 * model.config.initializer_range < spread < 1.5 * model.config.initializer_range
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="new_num_tokens must be a positive integer or None"):
            model.resize_token_embeddings(bad)
    with pytest.raises(ValueError, match="pad_to_multiple_of must be a positive integer or None"):
        model.resize_token_embeddings(120, pad_to_multiple_of=0)
    model.config.pad_token_id = 5
    with pytest.raises(ValueError, match=r"new_num_tokens=5 would drop the padding id 5 \(config.pad_token_id\)"):
        model.resize_token_embeddings(5)
