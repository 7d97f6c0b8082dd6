"""dtype in the pipelines: a passed model keeps its dtype (both frameworks), and torch_dtype="float16-mixed"
(float16 products, float32 weights and residual stream) against float32 where plain float16 overflows.

The released checkpoint cannot be downloaded here: the large activations are planted in tiny models
(a residual stream of 3e7 in four channels, as NoNorm lets the released model's grow), so these
tests show the mechanism, not the released model's accuracy.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mobilebert_pt import MobileBertForMaskedLM, MobileBertModel
from mobilebert_pt.pipelines import pipeline
from tests.harness.models import relative_error
from tests.harness.pipelines import adapter, config, make_tokenizer, write_vocab

TEXT = "the capital of [MASK] is paris ."


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("vocab"))


def large_stream(model) -> None:
    """Add 3e7 to four channels of the embeddings' NoNorm output: every layer's residual stream and
    the bottleneck / value / FFN inputs then hold 3e7, their outputs reach ~3.5e6 (float16: 65504)."""
    backbone = getattr(model, "mobilebert", model)
    with torch.no_grad():
        backbone.embeddings.LayerNorm.bias[:4] += 3e7


def features(model, tok, **kw) -> np.ndarray:
    return np.asarray(pipeline("feature-extraction", model=model, tokenizer=tok, **kw)(TEXT))


def test_mixed_matches_float32_where_float16_overflows(tok):
    torch.manual_seed(0)
    model = MobileBertModel(config()).eval()
    large_stream(model)
    ref = features(model, tok)
    assert np.abs(ref).max() > 1e7
    with pytest.raises(ValueError, match="float16.*65504.*bfloat16"):
        features(copy.deepcopy(model).to(torch.float16), tok)
    # torch.autocast casts each linear layer's input and output to float16: the same overflow.
    inputs = {k: torch.tensor([v]) for k, v in tok("the capital of paris").items() if k != "offset_mapping"}
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.float16):
        assert not bool(torch.isfinite(model(**inputs).last_hidden_state).all())
    mixed = features(model, tok, torch_dtype="float16-mixed")
    assert relative_error(mixed, ref) < 1e-5  # measured 1.6e-8
    small = relative_error(mixed[..., 4:], ref[..., 4:])  # the ordinary channels, up to ~3e5 here
    assert 0 < small < 1e-4  # float16 products really ran (not 0), to float16 precision (measured 1.6e-6)


def test_mixed_fill_mask_scores_close_to_float32(tok):
    torch.manual_seed(1)
    model = MobileBertForMaskedLM(config()).eval()
    large_stream(model)
    with torch.no_grad():
        model.cls.predictions.transform.dense.weight[:, :4] = 0.0  # the head reads the ordinary channels
        model.cls.predictions.transform.dense.weight.mul_(20.0)  # logits spread over a few units
        model.cls.predictions.bias.copy_(torch.from_numpy(np.random.default_rng(0).normal(0.0, 1.0, model.config.vocab_size)))
    ref = pipeline("fill-mask", model=model, tokenizer=tok, top_k=5)(TEXT)
    assert ref[0]["score"] < 0.9  # not a degenerate one-hot distribution
    with pytest.raises(ValueError, match="float16.*65504"):
        pipeline("fill-mask", model=copy.deepcopy(model).to(torch.float16), tokenizer=tok)(TEXT)
    mixed = pipeline("fill-mask", model=model, tokenizer=tok, top_k=5, torch_dtype="float16-mixed")
    assert mixed.dtype_name == "float16-mixed"
    out = mixed(TEXT)
    assert [r["token"] for r in out] == [r["token"] for r in ref]
    np.testing.assert_allclose([r["score"] for r in out], [r["score"] for r in ref], atol=1e-4)  # measured 2.8e-6


def test_mixed_leaves_the_model_object_unchanged(tok):
    torch.manual_seed(2)
    model = MobileBertForMaskedLM(config()).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pipeline("fill-mask", model=model, tokenizer=tok, torch_dtype="float16-mixed")(TEXT)
    assert model.dtype == torch.float32 and model.training  # train mode restored after the call
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="float16-mixed.*needs a float32 model"):
        pipeline("fill-mask", model=copy.deepcopy(model).to(torch.bfloat16), tokenizer=tok, torch_dtype="float16-mixed")


def test_mixed_from_a_directory(tmp_path):
    torch.manual_seed(3)
    MobileBertForMaskedLM(config()).save_pretrained(str(tmp_path))
    write_vocab(tmp_path)
    ref = pipeline("fill-mask", model=str(tmp_path), top_k=3)(TEXT)
    pipe = pipeline("fill-mask", model=str(tmp_path), top_k=3, dtype="float16-mixed", device="cpu")
    assert pipe.model.dtype == torch.float32
    np.testing.assert_allclose([r["score"] for r in pipe(TEXT)], [r["score"] for r in ref], atol=1e-3)


# ------------------------------------------------------------------ a passed model keeps its dtype


@pytest.mark.parametrize("name", ["pt", "tf"])
def test_a_passed_model_keeps_its_dtype(name, tok):
    fw = adapter(name)
    model = fw.model("MobileBertForMaskedLM", config())
    with pytest.raises(ValueError, match="does not change the dtype of a model you pass"):
        fw.pipeline("fill-mask", model=model, tokenizer=tok, torch_dtype="float16")
    with pytest.raises(ValueError, match="does not change the dtype of a model you pass"):
        fw.pipeline("fill-mask", model=model, tokenizer=tok, dtype="bfloat16")
    if name == "pt":
        assert model.dtype == torch.float32
    else:
        assert model.compute_dtype == "float32"
    same = fw.pipeline("fill-mask", model=model, tokenizer=tok, torch_dtype="float32")  # confirming it is fine
    assert same.dtype_name == "float32" and same("hello [MASK]")


def test_keras_refuses_float16_mixed(tok):
    fw = adapter("tf")
    with pytest.raises(ValueError, match="float16-mixed.*PyTorch pipeline only.*bfloat16"):
        fw.pipeline("fill-mask", model=fw.model("MobileBertForMaskedLM", config()), tokenizer=tok, dtype="float16-mixed")


def test_a_passed_model_moves_to_the_given_device_in_place(tok):
    model = MobileBertForMaskedLM(config()).eval()
    pipe = pipeline("fill-mask", model=model, tokenizer=tok, device="cpu")
    assert pipe.model is model and pipe.device == torch.device("cpu")


def test_mixed_converts_each_weight_once_not_per_call(tok):
    """Query and key run as their two Linears under the mode, not as one product over a weight concatenated
    per call: every weight is a parameter whose float16 copy is made once (on a GPU each new copy also
    reads its bound back to the host)."""
    from mobilebert_pt.pipeline_float16 import Float16Matmuls

    torch.manual_seed(0)
    model = MobileBertForMaskedLM(config()).eval()
    inputs = {k: torch.tensor([v]) for k, v in tok("the capital of paris").items() if k != "offset_mapping"}
    mode = Float16Matmuls()
    converted = []
    half_weight = mode.half_weight

    def counting(weight, transposed=False):
        if (id(weight), transposed) not in mode._cache:
            converted.append(weight)
        return half_weight(weight, transposed)

    mode.half_weight = counting
    with torch.no_grad(), mode:
        first = model(**inputs).logits
        made = len(converted)
        second = model(**inputs).logits
    assert made > 0 and len(converted) == made  # the second call made no new float16 copy
    assert all(isinstance(w, torch.nn.Parameter) for w in converted)
    assert torch.equal(first, second)
    with torch.no_grad():
        assert relative_error(first.numpy(), model(**inputs).logits.numpy()) < 1e-2
