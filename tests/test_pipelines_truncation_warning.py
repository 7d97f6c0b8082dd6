"""An input longer than the tokenizer's model_max_length (512): the pipeline cuts it (fill-mask) or
cuts it into windows (question-answering). The tokenizer's own warning ("... will result in indexing
errors; pass truncation=True") used to fire first, although the pipeline never runs the uncut ids:
now only the pipeline's own truncation warning is given, and the result is that of the cut text."""

from __future__ import annotations

import warnings

import pytest

from tests.harness.pipelines import adapter, config, have_own_tokenizer, make_tokenizer

pytestmark = pytest.mark.skipif(not have_own_tokenizer(), reason="needs mobilebert_common.tokenization_fast")

WORDS = ("hello world " * 300).split()  # 600 one-piece words: past 512 and past the tiny model's 40


def recorded(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught]


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_fill_mask_over_512_tokens_warns_once_and_truncates(framework, tmp_path):
    fw = adapter(framework)
    tok = make_tokenizer(tmp_path)
    assert tok.model_max_length == 512
    pipe = fw.pipeline("fill-mask", model=fw.model("MobileBertForMaskedLM", config()), tokenizer=tok, top_k=3)
    result, messages = recorded(lambda: pipe("[MASK] " + " ".join(WORDS)))
    assert messages == [
        "input has 603 tokens (with [CLS]/[SEP]); truncated to this model's maximum of 40. "
        "Pass truncation=False to get an error instead"
    ]
    cut, cut_messages = recorded(lambda: pipe("[MASK] " + " ".join(WORDS[:37])))  # [CLS] + 38 pieces + [SEP] = 40
    assert cut_messages == [] and result == cut and len(result) == 3


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_question_answering_context_over_512_tokens_gives_no_warning(framework, tmp_path):
    fw = adapter(framework)
    pipe = fw.pipeline("question-answering", model=fw.model("MobileBertForQuestionAnswering", config()),
                       tokenizer=make_tokenizer(tmp_path), doc_stride=16)
    context = " ".join(WORDS) + " john lives in paris ."
    answer, messages = recorded(lambda: pipe(question="where does john live ?", context=context))
    assert messages == []  # the context is read window by window: nothing is cut, nothing to warn about
    assert context[answer["start"] : answer["end"]] == answer["answer"] and 0 < answer["score"] <= 1
