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
