"""Bad input in the pipelines, the same tests for PyTorch and Keras: every case a clear error (or a
warning) naming what is wrong. float16 in PyTorch at the end (Keras: test_pipelines_usage.py)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mobilebert_pt import MobileBertForMaskedLM
from mobilebert_pt.pipelines import pipeline
from tests.harness.pipelines import VOCAB, adapter, config, make_tokenizer, real_vocab_tokenizer


@pytest.fixture(scope="module", params=["pt", "tf"])
def fw(request):
    return adapter(request.param)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("vocab"))


@pytest.fixture(scope="module")
def fill(fw, tok):
    return fw.pipeline("fill-mask", model=fw.model("MobileBertForMaskedLM", config()), tokenizer=tok)


LONG = " ".join(["hello world"] * 30)  # 60 tokens; the tiny model takes 40


def test_unknown_task_lists_known(fw):
    with pytest.raises(ValueError, match="unknown task 'fil-mask'; known tasks: .*fill-mask.*question-answering"):
        fw.pipeline("fil-mask", model="unused")


def test_fill_mask_without_mask(fill):
    with pytest.raises(ValueError, match=r"no \[MASK\] token in the input"):
        fill("the capital of france is paris .")


def test_fill_mask_mask_lost_to_truncation(fill):
    with pytest.warns(UserWarning, match="truncated"), pytest.raises(ValueError, match=r"\[MASK\].*cut by truncation"):
        fill(LONG + " [MASK]")


def test_empty_strings(fill):
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


def test_question_answering_without_context(fw, tok):
    qa = fw.pipeline("question-answering", model=fw.model("MobileBertForQuestionAnswering", config()), tokenizer=tok)
    with pytest.raises(ValueError, match="no context"):
        qa(question="where does john live ?")
    with pytest.raises(ValueError, match="no context"):
        qa({"question": "where does john live ?"})
    with pytest.raises(ValueError, match="no context"):
        qa("where does john live ?")
    with pytest.raises(ValueError, match="context is an empty string"):
        qa(question="where ?", context=" ")


def test_bad_parameters(fw, fill, tok):
    prefix = "" if fw.name == "pt" else "TF"
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        fill("hello [MASK]", top_k=0)
    with pytest.raises(ValueError, match="does not take aggregation_strategy"):
        fill("hello [MASK]", aggregation_strategy="simple")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        fill("hello [MASK]", batch_size=0)
    with pytest.raises(ValueError, match="needs model="):
        fw.pipeline("fill-mask")
    with pytest.raises(ValueError, match=f"needs a model of class {prefix}MobileBertForMaskedLM"):
        fw.pipeline("fill-mask", model=fw.model("MobileBertForSequenceClassification", config()), tokenizer=tok)
    with pytest.raises(ValueError, match="device=-2"):
        fw.pipeline("fill-mask", model=fill.model, tokenizer=tok, device=-2)
    with pytest.raises(FileNotFoundError):
        fw.pipeline("fill-mask", model="/nonexistent/mobilebert-dir", tokenizer=tok)


def test_targets_outside_vocabulary(fill):
    with pytest.warns(UserWarning, match="not in the vocabulary"):
        out = fill("hello [MASK]", targets=["playing"])
    assert [r["token"] for r in out] == [VOCAB.index("play")]
    with pytest.raises(ValueError, match="targets must be a string or a list of strings"):
        fill("hello [MASK]", targets=[3])


def test_tokenizer_larger_than_the_model_is_a_clear_error(fw, tmp_path):
    """The real 30,522-word tokenizer on a 33-word model: without the pipeline's own id check, the
    embedding lookup fails with IndexError (PyTorch) / InvalidArgumentError (Keras), or silently on a GPU."""
    big = real_vocab_tokenizer(tmp_path)
    pipe = fw.pipeline("fill-mask", model=fw.model("MobileBertForMaskedLM", config()), tokenizer=big)
    with pytest.raises(ValueError, match=r"input_ids must hold ids in \[0, 33\) \(config.vocab_size\); got \d+\. "
                       r"The tokenizer \(30522 ids\) does not match this model"):
        pipe("the capital of france is [MASK].")


def test_pairs_on_a_model_with_one_segment_type(fw, tok):
    pipe = fw.pipeline("text-classification", model=fw.model("MobileBertForSequenceClassification", config(type_vocab_size=1)),
                       tokenizer=tok)
    assert pipe("hello world")[0]["label"] in ("LABEL_0", "LABEL_1")  # one text: segment 0 only, fine
    with pytest.raises(ValueError, match=r"token_type_ids must hold ids in \[0, 1\).*cannot read text pairs"):
        pipe({"text": "hello world", "text_pair": "the city"})


def test_gpu_device_without_gpu_names_the_device_argument(fw, fill, tok):
    if fw.name == "pt" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    if fw.name == "tf" and fw.tf.config.list_physical_devices("GPU"):
        pytest.skip("TensorFlow sees a GPU here")
    for device in (0, "cuda:0"):
        with pytest.raises(ValueError, match=r"^device=.*asks for .*GPU.*Use device='cpu' \(or -1\)") as info:
            fw.pipeline("fill-mask", model=fill.model, tokenizer=tok, device=device)
        assert "device_map" not in str(info.value)
        with pytest.raises(ValueError, match=r"^device=") as info:
            fw.pipeline("fill-mask", model="/nonexistent/dir", device=device)  # checked before any loading
        assert "device_map" not in str(info.value)


# ---------------------------------------------------------------------------------- float16 (PyTorch)


@pytest.fixture(scope="module")
def pt_tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("vocab_pt"))


def test_float16_on_cpu_runs_close_to_float32(pt_tok):
    torch.manual_seed(0)
    model = MobileBertForMaskedLM(config()).eval()
    ref = pipeline("fill-mask", model=model, tokenizer=pt_tok, top_k=3)("hello [MASK] world")
    half = pipeline("fill-mask", model=copy.deepcopy(model).to(torch.float16), tokenizer=pt_tok)
    assert half.dtype_name == "float16"
    out = half("hello [MASK] world", top_k=3)
    np.testing.assert_allclose([r["score"] for r in out], [r["score"] for r in ref], atol=2e-3)


def test_float16_overflow_is_reported_not_nan(pt_tok):
    torch.manual_seed(0)
    model = MobileBertForMaskedLM(config()).eval()
    with torch.no_grad():  # activations like the released checkpoint's: far beyond float16's 65504
        model.mobilebert.embeddings.word_embeddings.weight.mul_(1e6)
    fp32 = pipeline("fill-mask", model=model, tokenizer=pt_tok)("hello [MASK]")
    assert all(np.isfinite(r["score"]) for r in fp32)
    # The caller converts its own model (the pipeline never changes a passed model's dtype).
    half = pipeline("fill-mask", model=copy.deepcopy(model).to(torch.float16), tokenizer=pt_tok, torch_dtype=torch.float16)
    with pytest.raises(ValueError, match="float16.*65504.*bfloat16"):
        half("hello [MASK]")
    bf16 = pipeline("fill-mask", model=copy.deepcopy(model).to(torch.bfloat16), tokenizer=pt_tok, torch_dtype="bfloat16")
    assert all(np.isfinite(r["score"]) for r in bf16("hello [MASK]"))
    assert model.dtype == torch.float32
