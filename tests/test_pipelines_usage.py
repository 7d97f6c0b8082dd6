"""The usages of issue 7 against a local checkpoint directory (offline), and the PyTorch and Keras
pipelines giving the same results on the same (converted) weights."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from mobilebert_pt import MobileBertForMaskedLM, MobileBertForQuestionAnswering, MobileBertForSequenceClassification
from tests.harness.pipelines import VOCAB, config, have_own_tokenizer, write_vocab

pytestmark = pytest.mark.skipif(not have_own_tokenizer(), reason="needs mobilebert_common.tokenization_fast (loading a tokenizer from a directory)")

TEXT = "The capital of France is [MASK]."


def save_head(cls, directory, seed=0, plant=None, **cfg):
    torch.manual_seed(seed)
    model = cls(config(**cfg)).eval()
    if plant is not None:
        with torch.no_grad():
            plant(model)
    model.save_pretrained(str(directory))
    write_vocab(directory)
    return model


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mlm")

    def plant(model):
        model.cls.predictions.bias[VOCAB.index("paris")] = 30.0

    save_head(MobileBertForMaskedLM, directory, plant=plant)
    return directory


def test_usage_pipeline_from_directory(mlm_dir):
    from mobilebert_pt import pipeline

    pipe = pipeline(task="fill-mask", model=str(mlm_dir), torch_dtype=torch.float16, device="cpu")
    out = pipe(TEXT)
    assert out[0]["token_str"] == "paris" and out[0]["sequence"] == "the capital of france is paris."
    assert pipe.model.dtype == torch.float16


def test_usage_tokenizer_and_model_from_directory(mlm_dir):
    from mobilebert_common import MobileBertTokenizer

    tokenizer = MobileBertTokenizer.from_pretrained(str(mlm_dir))
    model = MobileBertForMaskedLM.from_pretrained(str(mlm_dir), torch_dtype=torch.float16, device_map="auto")
    inputs = tokenizer(TEXT, return_tensors="pt").to(model.device)
    with torch.no_grad():
        logits = model(**inputs).logits
    col = int((inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0])
    assert int(logits[0, col].argmax()) == VOCAB.index("paris")


def have_conversion() -> bool:
    if importlib.util.find_spec("conversion") is None:
        return False
    return all(importlib.util.find_spec(f"conversion.{m}") is not None for m in ("formats", "convert"))


def flat(results) -> list:
    """Nested lists of result dicts -> one list of dicts."""
    if isinstance(results, dict):
        return [results]
    return [d for r in results for d in flat(r)]


@pytest.mark.skipif(not have_conversion(), reason="needs conversion.formats/convert (PyTorch weights into Keras)")
def test_pt_and_tf_pipelines_agree_on_converted_weights(tmp_path):
    from mobilebert_pt import pipeline as pt_pipeline
    from mobilebert_tf import pipeline as tf_pipeline

    cases = [
        (MobileBertForMaskedLM, "fill-mask", ["hello [MASK] world .", "the [MASK] of [MASK] is paris"], dict(top_k=3), {}),
        (MobileBertForSequenceClassification, "text-classification", [{"text": "hello world", "text_pair": "the city"}],
         dict(top_k=None), dict(num_labels=3)),
        (MobileBertForQuestionAnswering, "question-answering",
         [{"question": "where does john live ?", "context": "john lives in new york city , the capital of the world ."}],
         dict(top_k=2, max_seq_len=16, doc_stride=4), {}),
    ]
    for i, (cls, task, inputs, params, cfg) in enumerate(cases):
        directory = tmp_path / str(i)
        save_head(cls, directory, seed=i, **cfg)  # model.safetensors only: the Keras pipeline converts it
        got_pt = pt_pipeline(task, model=str(directory), batch_size=2, **params)(inputs)
        got_tf = tf_pipeline(task, model=str(directory), batch_size=2, **params)(inputs)
        a, b = flat(got_pt), flat(got_tf)
        assert [{k: v for k, v in r.items() if k != "score"} for r in a] == [{k: v for k, v in r.items() if k != "score"} for r in b]
        np.testing.assert_allclose([r["score"] for r in a], [r["score"] for r in b], rtol=1e-4, atol=1e-7)


@pytest.mark.skipif(not have_conversion(), reason="needs conversion.formats/convert (PyTorch weights into Keras)")
def test_tf_pipeline_dtypes_from_directory(tmp_path):
    """Keras: bfloat16 and float16 policies run on CPU close to float32; an overflowing float16 run is an error."""
    from mobilebert_tf import pipeline as tf_pipeline

    model = save_head(MobileBertForMaskedLM, tmp_path)
    ref = [r["score"] for r in tf_pipeline("fill-mask", model=str(tmp_path))("hello [MASK] world")]
    for dtype in ("bfloat16", "float16"):
        pipe = tf_pipeline("fill-mask", model=str(tmp_path), dtype=dtype)
        assert pipe.dtype_name == dtype
        np.testing.assert_allclose([r["score"] for r in pipe("hello [MASK] world")], ref, atol=2e-3)
    with torch.no_grad():
        model.mobilebert.embeddings.word_embeddings.weight.mul_(1e6)  # activations beyond 65504
    model.save_pretrained(str(tmp_path))
    with pytest.raises(ValueError, match="float16.*65504.*bfloat16"):
        tf_pipeline("fill-mask", model=str(tmp_path), torch_dtype="float16")("hello [MASK]")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_pipeline_on_gpu_matches_cpu(mlm_dir):
    from mobilebert_pt import pipeline

    cpu = pipeline("fill-mask", model=str(mlm_dir), device=-1, top_k=3)
    texts = ["hello [MASK] world", "the [MASK] of france is paris ."]
    for device, dtype in ((0, None), ("cuda:0", torch.bfloat16)):
        gpu = pipeline("fill-mask", model=str(mlm_dir), device=device, torch_dtype=dtype, top_k=3, batch_size=2)
        assert gpu.model.device.type == "cuda"
        for a, b in zip(cpu(texts), gpu(texts)):
            assert [r["token"] for r in a][:1] == [r["token"] for r in b][:1]
            np.testing.assert_allclose([r["score"] for r in a], [r["score"] for r in b], atol=1e-3 if dtype is None else 3e-2)


def test_usage_pipeline_device_0_without_gpu_is_a_clear_error(mlm_dir):
    from mobilebert_pt import pipeline

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: device=0 works (test_pipeline_on_gpu_matches_cpu)")
    with pytest.raises(ValueError, match=r"^device=0 asks for a CUDA GPU, but torch.cuda.is_available\(\) is False.*"
                       r"Use device='cpu' \(or -1\)") as info:
        pipeline(task="fill-mask", model=str(mlm_dir), torch_dtype=torch.float16, device=0)
    assert "device_map" not in str(info.value)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from tests.harness.pipelines import make_tokenizer

    return make_tokenizer(tmp_path_factory.mktemp("vocab"))


AGREEMENT = [
    ("MobileBertForTokenClassification", "token-classification", ["john lives in new york city", "hello world , paris"],
     dict(aggregation_strategy="simple", ignore_labels=[]), dict(id2label={0: "O", 1: "B-LOC", 2: "I-LOC"})),
    ("MobileBertForTokenClassification", "token-classification", ["john playing in new york"],
     dict(aggregation_strategy="none", ignore_labels=[]), dict(id2label={0: "O", 1: "B-LOC", 2: "I-LOC"})),
    ("MobileBertForNextSentencePrediction", "next-sentence-prediction",
     [["hello world .", "the city ."], {"text": "john lives in paris", "text_pair": "where does john live ?"}], {}, {}),
    ("MobileBertModel", "feature-extraction", ["hello world", "john lives in new york city ."], {}, {}),
]


@pytest.mark.skipif(not have_conversion(), reason="needs conversion.convert (PyTorch weights into Keras)")
@pytest.mark.parametrize("architecture,task,inputs,params,cfg", AGREEMENT, ids=[f"{a[1]}-{i}" for i, a in enumerate(AGREEMENT)])
def test_pt_and_keras_pipelines_agree_in_memory(tok, architecture, task, inputs, params, cfg):
    """Order-one random weights (tests/harness/models.py) converted with conversion.convert.pt_to_tf."""
    from conversion.convert import pt_to_tf
    from mobilebert_pt import pipeline as pt_pipeline
    from mobilebert_tf import pipeline as tf_pipeline
    from tests.harness.models import build_pt, build_tf, random_weights
    from tests.harness.models import relative_error

    cfg = config(**cfg)
    weights = random_weights(cfg, architecture, "pt")
    pt_model = build_pt(architecture, cfg, weights)
    tf_model = build_tf(architecture, cfg, pt_to_tf(weights, cfg, architecture))
    got_pt = pt_pipeline(task, model=pt_model, tokenizer=tok, batch_size=2, **params)(inputs)
    got_tf = tf_pipeline(task, model=tf_model, tokenizer=tok, batch_size=2, **params)(inputs)
    if task == "feature-extraction":
        for a, b in zip(got_pt, got_tf):
            assert relative_error(b, a) < 1e-5
        return
    a, b = flat(got_pt), flat(got_tf)
    assert len(a) == len(b) > 0
    assert [{k: v for k, v in r.items() if k != "score"} for r in a] == [{k: v for k, v in r.items() if k != "score"} for r in b]
    np.testing.assert_allclose([r["score"] for r in a], [r["score"] for r in b], rtol=1e-4, atol=1e-7)


def test_question_answering_scores_equal_transformers_in_one_window(tmp_path):
    """Equal answer texts are summed within a window, as transformers' QuestionAnsweringPipeline does
    (test-only reference): same answers, offsets and scores when the context fits one window."""
    transformers = pytest.importorskip("transformers")
    from mobilebert_pt import pipeline

    save_head(MobileBertForQuestionAnswering, tmp_path, seed=3, plant=lambda m: m.qa_outputs.weight.mul_(30))
    ours = pipeline("question-answering", model=str(tmp_path), top_k=4)
    ref = transformers.pipeline(
        "question-answering",
        model=transformers.MobileBertForQuestionAnswering.from_pretrained(str(tmp_path)).eval(),
        tokenizer=transformers.BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")),
    )
    for context in ("john is playing in paris .", "john lives in new york city , the capital of the world ."):
        a = ours(question="where does john live ?", context=context)
        b = ref(question="where does john live ?", context=context, top_k=4)
        assert [(x["answer"], x["start"], x["end"]) for x in a] == [(x["answer"], x["start"], x["end"]) for x in b]
        np.testing.assert_allclose([x["score"] for x in a], [x["score"] for x in b], rtol=1e-5)
