"""Bad input and float16 in the pipelines: every case a clear error (or a warning) naming what is wrong."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mobilebert_pt import MobileBertForMaskedLM, MobileBertForQuestionAnswering, MobileBertForSequenceClassification
from mobilebert_pt.pipelines import pipeline
from tests.pipeline_helpers import VOCAB, config, make_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("vocab"))


@pytest.fixture(scope="module")
def fill(tok):
    torch.manual_seed(0)
    return pipeline("fill-mask", model=MobileBertForMaskedLM(config()).eval(), tokenizer=tok)


LONG = " ".join(["hello world"] * 30)  # 60 tokens; the tiny model takes 40


def test_unknown_task_lists_known():
    with pytest.raises(ValueError, match="unknown task 'fil-mask'; known tasks: .*fill-mask.*question-answering"):
        pipeline("fil-mask", model="unused")


def test_fill_mask_without_mask(fill):
    with pytest.raises(ValueError, match=r"no \[MASK\] token in the input"):
        fill("the capital of france is paris .")


def test_fill_mask_mask_lost_to_truncation(fill):
    with pytest.warns(UserWarning, match="truncated"), pytest.raises(ValueError, match=r"\[MASK\].*cut by truncation"):
        fill(LONG + " [MASK]")


def test_empty_strings(fill, tok):
    with pytest.raises(ValueError, match="empty string"):
        fill("")
    with pytest.raises(ValueError, match="empty string"):
        fill(["hello [MASK]", "   "])
    with pytest.raises(ValueError, match="empty list"):
        fill([])


def test_too_long_truncates_with_warning_or_errors(fill):
    with pytest.warns(UserWarning, match="has 63 tokens.*truncated to this model's maximum of 40"):
        out = fill("[MASK] " + LONG)
    assert len(out) == 5
    with pytest.raises(ValueError, match="at most 40.*truncation=True"):
        fill("[MASK] " + LONG, truncation=False)


def test_question_answering_without_context(tok):
    torch.manual_seed(0)
    qa = pipeline("question-answering", model=MobileBertForQuestionAnswering(config()).eval(), tokenizer=tok)
    with pytest.raises(ValueError, match="no context"):
        qa(question="where does john live ?")
    with pytest.raises(ValueError, match="no context"):
        qa({"question": "where does john live ?"})
    with pytest.raises(ValueError, match="no context"):
        qa("where does john live ?")
    with pytest.raises(ValueError, match="context is an empty string"):
        qa(question="where ?", context=" ")


def test_bad_parameters(fill, tok):
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        fill("hello [MASK]", top_k=0)
    with pytest.raises(ValueError, match="does not take aggregation_strategy"):
        fill("hello [MASK]", aggregation_strategy="simple")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        fill("hello [MASK]", batch_size=0)
    with pytest.raises(ValueError, match="needs model="):
        pipeline("fill-mask")
    with pytest.raises(ValueError, match="needs a model of class MobileBertForMaskedLM"):
        pipeline("fill-mask", model=MobileBertForSequenceClassification(config()), tokenizer=tok)
    with pytest.raises(ValueError, match="device=-2"):
        pipeline("fill-mask", model=fill.model, tokenizer=tok, device=-2)
    with pytest.raises(FileNotFoundError):
        pipeline("fill-mask", model="/nonexistent/mobilebert-dir", tokenizer=tok)


def test_float16_on_cpu_runs_close_to_float32(tok):
    torch.manual_seed(0)
    model = MobileBertForMaskedLM(config()).eval()
    ref = pipeline("fill-mask", model=model, tokenizer=tok, top_k=3)("hello [MASK] world")
    half = pipeline("fill-mask", model=MobileBertForMaskedLM(config()).eval().to(torch.float16), tokenizer=tok)
    half.model.load_state_dict({k: v.half() for k, v in model.state_dict().items()})
    assert half.dtype_name == "float16"
    out = half("hello [MASK] world", top_k=3)
    np.testing.assert_allclose([r["score"] for r in out], [r["score"] for r in ref], atol=2e-3)


def test_float16_overflow_is_reported_not_nan(tok):
    torch.manual_seed(0)
    model = MobileBertForMaskedLM(config()).eval()
    with torch.no_grad():  # activations like the released checkpoint's: far beyond float16's 65504
        model.mobilebert.embeddings.word_embeddings.weight.mul_(1e6)
    fp32 = pipeline("fill-mask", model=model, tokenizer=tok)("hello [MASK]")
    assert all(np.isfinite(r["score"]) for r in fp32)
    # The caller converts its own model (the pipeline never changes a passed model's dtype).
    half = pipeline("fill-mask", model=copy.deepcopy(model).to(torch.float16), tokenizer=tok, torch_dtype=torch.float16)
    with pytest.raises(ValueError, match="float16.*65504.*bfloat16"):
        half("hello [MASK]")
    bf16 = pipeline("fill-mask", model=copy.deepcopy(model).to(torch.bfloat16), tokenizer=tok, torch_dtype="bfloat16")
    assert all(np.isfinite(r["score"]) for r in bf16("hello [MASK]"))
    assert model.dtype == torch.float32


def test_targets_outside_vocabulary(fill):
    with pytest.warns(UserWarning, match="not in the vocabulary"):
        out = fill("hello [MASK]", targets=["playing"])
    assert [r["token"] for r in out] == [VOCAB.index("play")]
    with pytest.raises(ValueError, match="targets must be a string or a list of strings"):
        fill("hello [MASK]", targets=[3])
