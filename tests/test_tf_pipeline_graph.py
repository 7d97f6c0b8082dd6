"""The Keras pipelines run every batch through one tf.function per pipeline (mobilebert_tf.pipelines.forward_function):
traced once whatever the batch size, length and number of masks, with the eager model's numbers, and the
model's graph assertions raised as the ValueError an eager call gives."""

from __future__ import annotations

import numpy as np
import pytest

from tests.harness.pipelines import VOCAB, config, make_tokenizer

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("tf_keras")

from mobilebert_tf import TFMobileBertForMaskedLM, TFMobileBertForQuestionAnswering, TFMobileBertForSequenceClassification, TFMobileBertModel  # noqa: E402
from mobilebert_tf.pipelines import gathered_masked_logits, padded_inputs, pipeline  # noqa: E402

# Rows of 5..12 tokens with 1, 2 or 3 masks: batches of new lengths and new mask counts.
TEXTS = [
    "the capital of france is [MASK] .",
    "[MASK] lives in new york",
    "where does john [MASK] ? the [MASK] of france",
    "hello [MASK]",
    "[MASK] [MASK] city [MASK] world is a sentence",
    "paris is the capital",
]
TEXTS = [t if "[MASK]" in t else t + " [MASK]" for t in TEXTS]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("vocab"))


def built(cls, seed=0, **cfg):
    tf.random.set_seed(seed)
    model = cls(config(**cfg))
    model.build_with_dummies()
    return model


def relative(a, b) -> float:
    """max |a - b| / max(1, max |b|): the suite's comparison for MobileBERT's large activations."""
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(1.0, float(np.abs(b).max())))


def batch_of(tok, texts):
    """The pipeline's own padding (driver.pad) of the tokenized texts, and the (N, 2) mask places."""
    enc = tok(texts, padding=True, return_tensors="np")
    ids = enc["input_ids"].astype(np.int64)
    batch = {"input_ids": ids, "attention_mask": enc["attention_mask"].astype(np.int64),
             "token_type_ids": np.zeros_like(ids)}
    return batch, np.argwhere(ids == tok.mask_token_id).astype(np.int64)


def test_fill_mask_traces_once_for_any_batch_length_and_mask_count(tok):
    pipe = pipeline("fill-mask", model=built(TFMobileBertForMaskedLM), tokenizer=tok, top_k=2)
    for batch_size in (1, 2, 4):
        for start in range(3):
            pipe(TEXTS[start:], batch_size=batch_size)  # batches of 1..4 rows, 4..12 tokens, 1..5 masks
    function = pipe.forward
    assert function.experimental_get_tracing_count() == 1
    pipe(TEXTS)
    assert pipe.forward is function and function.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("texts", [TEXTS[:1], TEXTS[:3], TEXTS])
def test_fill_mask_graph_equals_the_eager_model(tok, texts):
    model = built(TFMobileBertForMaskedLM)
    pipe = pipeline("fill-mask", model=model, tokenizer=tok)
    batch, positions = batch_of(tok, texts)
    with pipe._running():
        got = pipe._masked_logits(pipe._model_inputs(batch), positions).numpy()  # (N, V), through the graph
    eager = gathered_masked_logits(model, padded_inputs(model, batch), positions).numpy()
    assert got.shape == (len(positions), len(VOCAB))
    assert relative(got, eager) < 1e-5
    # And each mask's logits are the full eager model's on its row alone (no padding at all).
    for (row, col), logits in zip(positions, got):
        alone = batch["input_ids"][row : row + 1, : batch["attention_mask"][row].sum()]
        full = model(input_ids=tf.constant(alone), training=False).logits[0, col].numpy()
        assert relative(logits, full) < 1e-5


def test_fill_mask_scores_equal_the_eager_softmax(tok):
    model = built(TFMobileBertForMaskedLM, seed=3)
    text = "the capital of france is [MASK] ."
    out = pipeline("fill-mask", model=model, tokenizer=tok, top_k=len(VOCAB))(text)
    ids = tok(text, return_tensors="np")["input_ids"]
    col = int(np.argwhere(ids[0] == tok.mask_token_id)[0, 0])
    probs = tf.nn.softmax(model(input_ids=tf.constant(ids), training=False).logits[0, col]).numpy()
    got = np.zeros(len(VOCAB))
    got[[r["token"] for r in out]] = [r["score"] for r in out]
    np.testing.assert_allclose(got, probs, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("task, cls, field", [
    ("text-classification", TFMobileBertForSequenceClassification, "logits"),
    ("question-answering", TFMobileBertForQuestionAnswering, "start_logits"),
    ("feature-extraction", TFMobileBertModel, "last_hidden_state"),
])
def test_other_heads_trace_once_and_equal_the_eager_model(tok, task, cls, field):
    model = built(cls, seed=1)
    pipe = pipeline(task, model=model, tokenizer=tok)
    texts = [t.replace("[MASK]", "paris") for t in TEXTS]
    for i in range(1, len(texts) + 1, 2):  # batches of 1, 3 and 5 rows of new lengths
        batch, _ = batch_of(tok, texts[:i])
        with pipe._running():
            result = pipe._forward(batch)
        eager = model(**padded_inputs(model, batch), return_dict=True, training=False)[field].numpy()
        assert relative(result[field], eager) < 1e-5
    assert pipe.forward.experimental_get_tracing_count() == 1


def test_a_replaced_vocabulary_is_traced_again(tok):
    """resize_token_embeddings swaps the table variable: a graph traced before would keep the old one."""
    model = built(TFMobileBertForMaskedLM, seed=2)
    pipe = pipeline("fill-mask", model=model, tokenizer=tok)
    pipe(TEXTS[0])
    before = pipe.forward
    model.resize_token_embeddings(len(VOCAB) + 8)
    batch, positions = batch_of(tok, TEXTS[:2])
    with pipe._running():
        got = pipe._masked_logits(pipe._model_inputs(batch), positions).numpy()
    assert pipe.forward is not before and got.shape == (len(positions), len(VOCAB) + 8)
    assert relative(got, gathered_masked_logits(model, padded_inputs(model, batch), positions).numpy()) < 1e-5


def test_graph_assertion_is_the_eager_value_error(tok):
    """float16 overflow: check_finite is a graph assertion inside the function; the pipeline raises its
    reason as a ValueError, without TensorFlow's "Graph execution error" and node trace."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = built(TFMobileBertForMaskedLM)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    table = model.mobilebert.embeddings.weight
    table.assign(table * 1e6)  # activations beyond float16's 65504
    pipe = pipeline("fill-mask", model=model, tokenizer=tok)
    with pytest.raises(ValueError, match=r"^MobileBERT's activations reach .*65504.*bfloat16") as info:
        pipe(TEXTS[0])
    assert "Graph execution" not in str(info.value) and "node" not in str(info.value)
