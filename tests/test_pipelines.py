"""Every task pipeline in PyTorch and in Keras on tiny models, against expectations derived
independently: planted weights (a large bias on one vocabulary id / label), or the model called
directly on ids built without the pipeline, with the softmax / span search done here by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.harness.pipelines import PT, TF, classifier_layer, config, encode, make_tokenizer, VOCAB


@pytest.fixture(scope="module", params=["pt", "tf"])
def fw(request):
    return PT() if request.param == "pt" else TF()


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("vocab"))


def softmax(x):
    e = np.exp(np.asarray(x, np.float64) - np.max(x, axis=-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ------------------------------------------------------------------------------------------ fill-mask


def test_fill_mask_planted_bias_is_top1_and_scores_equal_full_softmax(fw, tok):
    m = fw.model("MobileBertForMaskedLM", config())
    paris = VOCAB.index("paris")
    bias = np.zeros(len(VOCAB))
    bias[paris] = 30.0
    fw.set(fw.mlm_bias(m), bias)
    pipe = fw.pipeline("fill-mask", model=m, tokenizer=tok, top_k=4)
    text = "the capital of france is [MASK] ."
    out = pipe(text)
    assert [r["token"] for r in out][0] == paris
    assert out[0]["token_str"] == "paris" and out[0]["sequence"] == "the capital of france is paris."
    # Reference: softmax over the FULL logits of a direct model call at the [MASK] position.
    inputs = encode(tok, text)
    col = int(np.argmax(inputs["input_ids"][0] == tok.mask_token_id))
    probs = softmax(fw.numpy(fw.call(m, inputs).logits)[0, col])
    expected = np.argsort(-probs, kind="stable")[:4]
    assert [r["token"] for r in out] == list(expected)
    np.testing.assert_allclose([r["score"] for r in out], probs[expected], rtol=1e-4, atol=1e-9)


def test_fill_mask_several_masks_targets_and_batches(fw, tok):
    m = fw.model("MobileBertForMaskedLM", config(), seed=1)
    texts = ["the [MASK] of france is [MASK] .", "hello [MASK]", "john lives in new [MASK] city ."]
    one_by_one = [fw.pipeline("fill-mask", model=m, tokenizer=tok, top_k=3)(t) for t in texts]
    batched = fw.pipeline("fill-mask", model=m, tokenizer=tok, top_k=3, batch_size=2)(texts)
    assert len(batched[0]) == 2 and len(batched[0][0]) == 3  # two masks, three candidates each
    for a, b in zip(one_by_one, batched):  # right padding changes nothing
        flat_a = [r for x in (a if isinstance(a[0], list) else [a]) for r in x]
        flat_b = [r for x in (b if isinstance(b[0], list) else [b]) for r in x]
        assert [r["token"] for r in flat_a] == [r["token"] for r in flat_b]
        np.testing.assert_allclose([r["score"] for r in flat_a], [r["score"] for r in flat_b], rtol=1e-4)
    # Second mask of the first text against the direct model call.
    inputs = encode(tok, texts[0])
    cols = np.nonzero(inputs["input_ids"][0] == tok.mask_token_id)[0]
    probs = softmax(fw.numpy(fw.call(m, inputs).logits)[0, cols[1]])
    assert [r["token"] for r in batched[0][1]] == list(np.argsort(-probs, kind="stable")[:3])
    # targets: only those words, scored by the softmax over the whole vocabulary.
    targets = ["london", "paris", "city"]
    out = fw.pipeline("fill-mask", model=m, tokenizer=tok)(texts[1], targets=targets)
    ids = [VOCAB.index(t) for t in targets]
    inputs = encode(tok, texts[1])
    col = int(np.argmax(inputs["input_ids"][0] == tok.mask_token_id))
    probs = softmax(fw.numpy(fw.call(m, inputs).logits)[0, col])
    assert sorted(r["token"] for r in out) == sorted(ids)
    assert [r["token"] for r in out] == sorted(ids, key=lambda i: -probs[i])
    np.testing.assert_allclose([r["score"] for r in out], sorted(probs[ids], reverse=True), rtol=1e-4)


def test_generator_input_and_progress(fw, tok, capsys):
    m = fw.model("MobileBertForMaskedLM", config(), seed=2)
    pipe = fw.pipeline("fill-mask", model=m, tokenizer=tok, top_k=1, batch_size=2)
    texts = [f"hello [MASK] {w}" for w in ("world", "city", "the", "john", "paris")]
    results = pipe((t for t in texts), progress=True)
    assert not isinstance(results, list)
    results = list(results)
    assert [r[0]["token"] for r in results] == [pipe(t)[0]["token"] for t in texts]
    assert "fill-mask" in capsys.readouterr().err  # the tqdm bar


# ---------------------------------------------------------------------------------- text-classification


@pytest.mark.parametrize("problem_type,fn", [(None, "softmax"), ("multi_label_classification", "sigmoid"), ("regression", "none")])
def test_text_classification_planted_bias(fw, tok, problem_type, fn):
    labels = {0: "neg", 1: "neutral", 2: "pos"}
    num = 1 if problem_type == "regression" else 3
    cfg = config(id2label={i: labels[i] for i in range(num)}, num_labels=num, problem_type=problem_type)
    m = fw.model("MobileBertForSequenceClassification", cfg)
    layer = classifier_layer(fw, m)
    fw.zero_weight(layer)  # logits = bias, whatever the text
    bias = np.array([0.5, -1.0, 2.0][:num])
    fw.set(layer.bias, bias)
    expected = {"softmax": softmax(bias), "sigmoid": 1 / (1 + np.exp(-bias)), "none": bias}[fn]
    pipe = fw.pipeline("text-classification", model=m, tokenizer=tok)
    best = int(np.argmax(expected))
    out = pipe("hello world")
    assert out[0]["label"] == labels[best] and out[0]["score"] == pytest.approx(expected[best], rel=1e-5)
    everything = pipe({"text": "hello world", "text_pair": "the city ."}, top_k=None)
    assert [r["label"] for r in everything] == [labels[i] for i in np.argsort(-expected, kind="stable")]
    np.testing.assert_allclose([r["score"] for r in everything], np.sort(expected)[::-1], rtol=1e-5)
    if num == 3:
        other = pipe("hello", function_to_apply="none", top_k=1)[0]
        assert other["score"] == pytest.approx(2.0, rel=1e-5)


def test_text_classification_pairs_match_direct_call(fw, tok):
    cfg = config(num_labels=3)
    m = fw.model("MobileBertForSequenceClassification", cfg, seed=3)
    pairs = [("hello world", "the city ."), ("john lives in paris", "where does john live ?")]
    out = fw.pipeline("text-classification", model=m, tokenizer=tok, top_k=None, batch_size=2)(
        [{"text": a, "text_pair": b} for a, b in pairs]
    )
    for (a, b), got in zip(pairs, out):
        probs = softmax(fw.numpy(fw.call(m, encode(tok, a, b)).logits)[0])
        by_label = {r["label"]: r["score"] for r in got}
        np.testing.assert_allclose([by_label[f"LABEL_{i}"] for i in range(3)], probs, rtol=1e-4)


def test_next_sentence_prediction_planted_bias(fw, tok):
    m = fw.model("MobileBertForNextSentencePrediction", config())
    layer = m.cls.seq_relationship
    fw.zero_weight(layer)
    fw.set(layer.bias, [1.0, -1.0])
    pipe = fw.pipeline("next-sentence-prediction", model=m, tokenizer=tok)
    out = pipe({"text": "hello world .", "text_pair": "the city ."})
    assert out["is_next"] is True and out["score"] == pytest.approx(softmax([1.0, -1.0])[0], rel=1e-6)
    fw.set(layer.bias, [-2.0, 1.0])
    out = pipe([["john lives in paris", "where does john live ?"]])[0]
    assert out["is_next"] is False and out["score"] == pytest.approx(softmax([-2.0, 1.0])[0], rel=1e-6)


def test_feature_extraction_equals_backbone(fw, tok):
    m = fw.model("MobileBertModel", config(), seed=4)
    texts = ["hello world", "john lives in new york city ."]
    out = fw.pipeline("feature-extraction", model=m, tokenizer=tok, batch_size=2)(texts)
    for text, got in zip(texts, out):
        ref = fw.numpy(fw.call(m, encode(tok, text)).last_hidden_state)
        got = np.asarray(got)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(ref).max()))


# ---------------------------------------------------------------------------------- token-classification


def test_token_classification_matches_direct_call(fw, tok):
    id2label = {0: "O", 1: "B-LOC", 2: "I-LOC"}
    m = fw.model("MobileBertForTokenClassification", config(id2label=id2label), seed=5)
    text = "john lives in new york city"
    out = fw.pipeline("token-classification", model=m, tokenizer=tok, ignore_labels=[])(text)
    probs = softmax(fw.numpy(fw.call(m, encode(tok, text)).logits)[0])[1:-1]  # drop [CLS]/[SEP]
    words = text.split()
    assert [r["word"] for r in out] == words
    assert [r["entity"] for r in out] == [id2label[i] for i in probs.argmax(-1)]
    np.testing.assert_allclose([r["score"] for r in out], probs.max(-1), rtol=1e-4)
    starts = [text.index(w) for w in words]
    assert [(r["start"], r["end"]) for r in out] == [(s, s + len(w)) for s, w in zip(starts, words)]
    assert [r["index"] for r in out] == list(range(1, len(words) + 1))


# ---------------------------------------------------------------------------------- question-answering


def test_question_answering_matches_brute_force_span(fw, tok):
    m = fw.model("MobileBertForQuestionAnswering", config(), seed=6)
    question, context = "where does john live ?", "john lives in paris , the capital of france ."
    out = fw.pipeline("question-answering", model=m, tokenizer=tok, max_answer_len=3)(question=question, context=context)
    inputs = encode(tok, question, context)
    res = fw.call(m, inputs)
    start, end = fw.numpy(res.start_logits)[0], fw.numpy(res.end_logits)[0]
    n_q = len(tok.tokenize(question))
    ctx = list(range(n_q + 2, inputs["input_ids"].shape[1] - 1))  # context token columns
    allowed = [0] + ctx
    ps, pe = softmax(start[allowed]), softmax(end[allowed])
    best, span = -1.0, None
    for a, i in enumerate(ctx, 1):
        for b, j in enumerate(ctx, 1):
            if i <= j < i + 3 and ps[a] * pe[b] > best:
                best, span = ps[a] * pe[b], (i - n_q - 2, j - n_q - 2)
    words = context.split()  # every word of this context is one token
    begin = sum(len(w) + 1 for w in words[: span[0]])
    finish = sum(len(w) + 1 for w in words[: span[1] + 1]) - 1
    assert out["answer"] == context[begin:finish] == " ".join(words[span[0] : span[1] + 1])
    assert (out["start"], out["end"]) == (begin, finish)
    assert out["score"] == pytest.approx(best, rel=1e-4)


# ------------------------------------------------------------------------- more inputs and model classes


def test_fill_mask_sequence_keeps_the_other_masks(fw, tok):
    m = fw.model("MobileBertForMaskedLM", config())
    bias = np.zeros(len(VOCAB))
    bias[VOCAB.index("paris")] = 30.0
    fw.set(fw.mlm_bias(m), bias)
    first, second = fw.pipeline("fill-mask", model=m, tokenizer=tok, top_k=1)("the [MASK] of france is [MASK] .")
    # Each result fills its own [MASK]; the other stays masked (transformers keeps it too).
    assert first[0]["sequence"] == "the paris of france is [MASK]."
    assert second[0]["sequence"] == "the [MASK] of france is paris."


def test_text_pair_keyword(fw, tok):
    m = fw.model("MobileBertForSequenceClassification", config(num_labels=3), seed=7)
    pipe = fw.pipeline("text-classification", model=m, tokenizer=tok, top_k=None)
    by_keyword = pipe("hello world", text_pair="the city .")
    probs = softmax(fw.numpy(fw.call(m, encode(tok, "hello world", "the city .")).logits)[0])
    np.testing.assert_allclose(sorted(r["score"] for r in by_keyword), sorted(probs), rtol=1e-4)
    assert pipe(["hello world", "john lives in paris"], text_pair=["the city .", "where does john live ?"])[0] == by_keyword
    assert by_keyword != pipe("hello world")  # the pair reached the model
    with pytest.raises(ValueError, match="text_pair must match the input"):
        pipe(["hello world"], text_pair="the city .")
    nsp = fw.model("MobileBertForNextSentencePrediction", config(), seed=8)
    out = fw.pipeline("next-sentence-prediction", model=nsp, tokenizer=tok)("hello world .", text_pair="the city .")
    expected = softmax(fw.numpy(fw.call(nsp, encode(tok, "hello world .", "the city .")).logits)[0])
    assert out["score"] == pytest.approx(expected[0], rel=1e-5) and out["is_next"] == bool(expected[0] >= expected[1])


def test_feature_extraction_return_tensors(fw, tok):
    m = fw.model("MobileBertModel", config(), seed=9)
    pipe = fw.pipeline("feature-extraction", model=m, tokenizer=tok)
    tensor = pipe("hello world", return_tensors=True)
    expected_type = fw.torch.Tensor if fw.name == "pt" else fw.tf.Tensor
    assert isinstance(tensor, expected_type) and tuple(tensor.shape) == (1, 4, config().hidden_size)
    ref = fw.numpy(fw.call(m, encode(tok, "hello world")).last_hidden_state)
    np.testing.assert_allclose(fw.numpy(tensor), ref, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(ref).max()))
    np.testing.assert_array_equal(fw.numpy(tensor), np.asarray(pipe("hello world"), np.float32))


def test_fill_mask_and_nsp_on_a_pretraining_model(fw, tok):
    m = fw.model("MobileBertForPreTraining", config(), seed=10)
    text = "the capital of france is [MASK] ."
    inputs = encode(tok, text)
    direct = fw.call(m, inputs)
    col = int(np.argmax(inputs["input_ids"][0] == tok.mask_token_id))
    probs = softmax(fw.numpy(direct.prediction_logits)[0, col])
    out = fw.pipeline("fill-mask", model=m, tokenizer=tok, top_k=3)(text)
    assert [r["token"] for r in out] == list(np.argsort(-probs, kind="stable")[:3])
    np.testing.assert_allclose([r["score"] for r in out], np.sort(probs)[::-1][:3], rtol=1e-4)
    pair = ("hello world .", "the city .")
    nsp = softmax(fw.numpy(fw.call(m, encode(tok, *pair)).seq_relationship_logits)[0])
    got = fw.pipeline("next-sentence-prediction", model=m, tokenizer=tok)(list(pair))
    assert got["score"] == pytest.approx(nsp[0], rel=1e-5) and got["is_next"] == bool(nsp[0] >= nsp[1])
