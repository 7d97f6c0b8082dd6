"""The framework-free half of the pipelines on planted logits: a pipeline whose forward pass returns
logits written by the test, so word aggregation and answer spans are checked against hand-worked
expectations (the same code serves the PyTorch and the Keras pipelines).
"""

from __future__ import annotations

import numpy as np
import pytest

from mobilebert_common.pipelines.driver import PipelineBase
from tests.harness.pipelines import VOCAB, config, make_tokenizer

LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


class Planted(PipelineBase):
    """A pipeline whose 'model' is a function of the padded numpy batch."""

    framework = "planted"

    def __init__(self, task, tokenizer, forward, cfg=None, **params):
        self.forward_fn = forward
        super().__init__(task, None, tokenizer, cfg or config(id2label=LABELS), **params)

    def _forward(self, batch):
        return self.forward_fn(batch)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("vocab"))


# ---------------------------------------------------------------------------------- token-classification

TEXT = "john playing in new york"  # pieces: john play ##ing in new york
PROBS = np.array(
    [
        [0.1, 0.7, 0.1, 0.05, 0.05],  # john   -> B-PER
        [0.5, 0.1, 0.1, 0.2, 0.1],  # play   -> O
        [0.1, 0.05, 0.05, 0.6, 0.2],  # ##ing  -> B-LOC
        [0.9, 0.025, 0.025, 0.025, 0.025],  # in  -> O
        [0.1, 0.05, 0.05, 0.7, 0.1],  # new    -> B-LOC
        [0.1, 0.05, 0.05, 0.1, 0.7],  # york   -> I-LOC
    ]
)


def ner_forward(batch):
    logits = np.zeros(batch["input_ids"].shape + (5,), np.float32)
    logits[0, 1:7] = np.log(PROBS)  # softmax(log p) = p: the probabilities are the planted ones
    return {"logits": logits}


def ner(tok, strategy):
    return Planted("ner", tok, ner_forward, aggregation_strategy=strategy)(TEXT)


def test_ner_pieces(tok):
    assert tok.tokenize(TEXT) == ["john", "play", "##ing", "in", "new", "york"]
    out = ner(tok, "none")  # "O" pieces dropped
    assert [(e["entity"], e["index"], e["start"], e["end"]) for e in out] == [
        ("B-PER", 1, 0, 4), ("B-LOC", 3, 9, 12), ("B-LOC", 5, 16, 19), ("I-LOC", 6, 20, 24)
    ]
    np.testing.assert_allclose([e["score"] for e in out], [0.7, 0.6, 0.7, 0.7], rtol=1e-6)


@pytest.mark.parametrize(
    "strategy,expected",
    [
        # simple: pieces keep their own labels; "new" (B-LOC) + "york" (I-LOC) merge, score = mean.
        ("simple", [("PER", 0.7, 0, 4), ("LOC", 0.6, 9, 12), ("LOC", 0.7, 16, 24)]),
        # first: "playing" takes its first piece's label, O -> dropped.
        ("first", [("PER", 0.7, 0, 4), ("LOC", 0.7, 16, 24)]),
        # max: "playing" takes its most confident piece, ##ing (0.6 > 0.5) -> B-LOC.
        ("max", [("PER", 0.7, 0, 4), ("LOC", 0.6, 5, 12), ("LOC", 0.7, 16, 24)]),
        # average: mean of play and ##ing = [.3, .075, .075, .4, .15] -> B-LOC 0.4.
        ("average", [("PER", 0.7, 0, 4), ("LOC", 0.4, 5, 12), ("LOC", 0.7, 16, 24)]),
    ],
)
def test_ner_aggregation(tok, strategy, expected):
    out = ner(tok, strategy)
    assert [(g["entity_group"], g["start"], g["end"]) for g in out] == [(e, s, t) for e, _, s, t in expected]
    np.testing.assert_allclose([g["score"] for g in out], [x for _, x, _, _ in expected], rtol=1e-6)
    words = {(s, t): TEXT[s:t] for _, _, s, t in expected}
    for g in out:
        if words[(g["start"], g["end"])] in ("john", "playing", "new york"):
            assert g["word"] == words[(g["start"], g["end"])]


# ---------------------------------------------------------------------------------- question-answering

CONTEXT = "the city of paris is the capital of france . john lives in new york city , the capital of the world ."
QUESTION = "where does john live ?"


def planted_spans(start_word, end_word, cls_logit=0.0, value=12.0):
    """Start logit `value` on every `start_word` token of the context, end logit on `end_word`; [CLS] gets cls_logit."""
    s_id, e_id = VOCAB.index(start_word), VOCAB.index(end_word)

    def forward(batch):
        ids, types = batch["input_ids"], batch["token_type_ids"]
        start = np.where((ids == s_id) & (types == 1), value, 0.0).astype(np.float32)
        end = np.where((ids == e_id) & (types == 1), value, 0.0).astype(np.float32)
        start[:, 0] = end[:, 0] = cls_logit
        return {"start_logits": start, "end_logits": end}

    return forward


def qa(tok, forward, **params):
    # 16 tokens per row: [CLS] + 5 question + [SEP] + 8 context + [SEP]; windows overlap by 4.
    return Planted("question-answering", tok, forward, max_seq_len=16, doc_stride=4, **params)


def test_qa_span_across_windows(tok):
    rows = []
    forward = planted_spans("new", "york")

    def spy(batch):
        rows.append(batch["input_ids"].shape[0])
        return forward(batch)

    out = qa(tok, spy, batch_size=8)(question=QUESTION, context=CONTEXT)
    assert sum(rows) > 1  # the context needed several windows
    start = CONTEXT.index("new york")
    assert (out["answer"], out["start"], out["end"]) == ("new york", start, start + len("new york"))
    assert out["score"] > 0.9


def test_qa_max_answer_len_top_k_and_impossible(tok):
    far = qa(tok, planted_spans("john", "city"), max_answer_len=2)({"question": QUESTION, "context": CONTEXT})
    assert len(far["answer"].split()) <= 2  # "john lives in new york city" is 6 tokens: not allowed
    top = qa(tok, planted_spans("new", "york"), top_k=3)(question=QUESTION, context=CONTEXT)
    assert len(top) == 3 and top[0]["answer"] == "new york"
    assert [a["score"] for a in top] == sorted((a["score"] for a in top), reverse=True)
    # [CLS] carries the largest start and end logits: with handle_impossible_answer the empty answer wins.
    null = qa(tok, planted_spans("new", "york", cls_logit=20.0), handle_impossible_answer=True)(
        question=QUESTION, context=CONTEXT
    )
    assert (null["answer"], null["start"], null["end"]) == ("", 0, 0)
    kept = qa(tok, planted_spans("new", "york", cls_logit=20.0))(question=QUESTION, context=CONTEXT)
    assert kept["answer"] == "new york"


def test_qa_lists_of_inputs(tok):
    pipe = qa(tok, planted_spans("new", "york"), batch_size=3)
    items = [{"question": QUESTION, "context": CONTEXT}, {"question": "where ?", "context": "hello new york ."}]
    out = pipe(items)
    assert [a["answer"] for a in out] == ["new york", "new york"]
    assert out[1]["start"] == items[1]["context"].index("new york")


def test_ner_grouped_word_is_cleaned_up_like_transformers_fast_tokenizers(tok):
    text = "new york , hello"
    probs = np.array([[0.1, 0.1, 0.1, 0.6, 0.1], [0.1, 0.1, 0.1, 0.1, 0.6], [0.1, 0.1, 0.1, 0.1, 0.6], [0.1, 0.1, 0.1, 0.1, 0.6]])

    def forward(batch):
        logits = np.zeros(batch["input_ids"].shape + (5,), np.float32)
        logits[0, 1:5] = np.log(probs)  # B-LOC I-LOC I-LOC I-LOC: one entity over the four pieces
        return {"logits": logits}

    out = Planted("ner", tok, forward, aggregation_strategy="simple")(text)
    assert [(g["entity_group"], g["word"], g["start"], g["end"]) for g in out] == [("LOC", "new york, hello", 0, len(text))]


# The context of one window: john is play ##ing in paris . (7 tokens); the question "where ?" (2).
QA_CONTEXT = "john is playing in paris ."
QA_WORDS = [0, 1, 2, 2, 3, 4, 5]  # word of each context token: play and ##ing are one word


def test_qa_equal_answers_in_one_window_sum_their_scores(tok):
    """play and ##ing both start "playing" (align_to_words widens a span to whole words): like
    transformers, the answer's score is the sum over the spans that read "playing"."""
    # Distinct logits everywhere, so that no two spans tie (ties would make the candidate pool ambiguous).
    start_logits = {VOCAB.index(t): x for t, x in zip(["john", "is", "play", "##ing", "in", "paris", "."], [1.0, 0.5, 5.0, 4.5, 0.1, 0.2, 0.3])}
    end_logits = {VOCAB.index(t): x for t, x in zip(["john", "is", "play", "##ing", "in", "paris", "."], [0.15, 0.25, 0.35, 10.0, 0.45, 0.55, 0.65])}

    def forward(batch):
        row = batch["input_ids"]
        start = np.vectorize(lambda t: start_logits.get(t, 0.0))(row).astype(np.float32)
        end = np.vectorize(lambda t: end_logits.get(t, 0.0))(row).astype(np.float32)
        ctx = batch["token_type_ids"] == 1
        return {"start_logits": np.where(ctx, start, 0.0), "end_logits": np.where(ctx, end, 0.0)}

    out = Planted("question-answering", tok, forward, top_k=3)(question="where ?", context=QA_CONTEXT)
    # By hand: probabilities over [CLS] + the 7 context tokens; every span (i <= j) of context tokens.
    tokens = ["john", "is", "play", "##ing", "in", "paris", "."]
    s = np.array([0.0] + [start_logits.get(VOCAB.index(t), 0.0) for t in tokens])
    e = np.array([0.0] + [end_logits.get(VOCAB.index(t), 0.0) for t in tokens])
    ps, pe = np.exp(s) / np.exp(s).sum(), np.exp(e) / np.exp(e).sum()
    spans = sorted(((ps[i + 1] * pe[j + 1], i, j) for i in range(7) for j in range(i, 7)), reverse=True)[: 3 * 2 + 10]
    words = QA_CONTEXT.split()
    by_text = {}
    for score, i, j in spans:
        text = " ".join(words[QA_WORDS[i] : QA_WORDS[j] + 1])
        by_text[text] = by_text.get(text, 0.0) + score
    expected = sorted(by_text.items(), key=lambda kv: -kv[1])[:3]
    assert [a["answer"] for a in out] == [t for t, _ in expected]
    assert [a["answer"] for a in out] == ["playing", "john is playing", "is playing"]
    np.testing.assert_allclose([a["score"] for a in out], [x for _, x in expected], rtol=1e-6)
    # "playing" = (play, play) + (play, ##ing) + (##ing, ##ing): more than its best span alone.
    assert out[0]["score"] == pytest.approx(ps[3] * pe[3] + ps[3] * pe[4] + ps[4] * pe[4], rel=1e-9)


def test_qa_same_answer_in_two_windows_keeps_the_best_not_the_sum(tok):
    # "new york" lies in two overlapping windows (context tokens 8-15 and 12-19), each of 8 context
    # tokens: each window scores it e^24 / (e^12 + 8)^2; transformers would add the two (> 1).
    out = qa(tok, planted_spans("new", "york"))(question=QUESTION, context=CONTEXT)
    per_window = np.exp(24.0) / (np.exp(12.0) + 8) ** 2
    assert out["answer"] == "new york" and out["score"] == pytest.approx(per_window, rel=1e-9)


# ---------------------------------------------------------------------------------- batching by length


def fill_mask_planted(batch):
    """Logits at each mask that depend on the row alone: word id (length of the row's text) scores highest."""
    lengths = batch["attention_mask"].sum(axis=1)  # (B,)
    rows = batch["mask_positions"][:, 0]
    logits = np.zeros((len(rows), len(VOCAB)), np.float32)
    logits[np.arange(len(rows)), 5 + lengths[rows] % (len(VOCAB) - 5)] = 10.0
    return {"masked_logits": logits}


def test_lists_run_in_batches_of_similar_length_with_results_in_input_order(tok):
    """A list is batched by length within a window (less padding); results come back in the input's order,
    equal to one-at-a-time calls; an iterator is batched as it comes (streaming)."""
    from mobilebert_common.pipelines import driver

    words = VOCAB[5:]
    texts = [" ".join(words[: 1 + (7 * i) % 9]) + " [MASK]" for i in range(12)]  # 1..9 words, shuffled lengths
    widths = []
    pipe = Planted("fill-mask", tok, lambda b: widths.append(b["input_ids"].shape[1]) or fill_mask_planted(b),
                   batch_size=3, top_k=1)
    alone = [pipe(t)[0]["token"] for t in texts]
    widths.clear()
    batched = [r[0]["token"] for r in pipe(texts)]
    assert batched == alone  # input order, same results
    lengths = sorted(len(tok(t)["input_ids"]) for t in texts)
    assert widths == [max(lengths[i : i + 3]) for i in range(0, 12, 3)]  # each batch pads to its own longest
    assert sum(widths) < sum(max(len(tok(t)["input_ids"]) for t in texts[i : i + 3]) for i in range(0, 12, 3))
    widths.clear()
    streamed = [r[0]["token"] for r in pipe(iter(texts))]
    assert streamed == alone
    assert widths == [max(len(tok(t)["input_ids"]) for t in texts[i : i + 3]) for i in range(0, 12, 3)]
    assert driver.LENGTH_SORT_BATCHES * 3 >= 12  # the whole list fits one window here


# ---------------------------------------------------------------------------------- top-k without a full sort


@pytest.mark.parametrize("k", [1, 5, 17, 64, 65])
def test_top_k_indices_is_the_stable_argsort_prefix(k):
    from mobilebert_common.pipelines.task import top_k_indices

    rng = np.random.default_rng(k)
    for scores in (
        rng.normal(size=64),  # distinct
        rng.integers(0, 4, size=64).astype(np.float64),  # many ties, at and around the k-th value
        np.full(64, 0.25),  # all tied: the first k indices
        np.r_[np.full(10, 1.0), np.full(54, 0.5)],  # the k-th value inside a tied run
    ):
        expected = np.argsort(-scores, kind="stable")[:k]
        np.testing.assert_array_equal(top_k_indices(scores, k), expected)


# ---------------------------------------------------------------------------------- PyTorch: dropout off per call


def test_pt_eval_mode_restores_each_module_as_it_was():
    torch = pytest.importorskip("torch")
    from mobilebert_pt.pipelines import eval_mode

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5), torch.nn.Dropout(0.5))
    model.train()
    model[2].eval()  # the caller left one submodule in eval mode: model.train() afterwards would flip it
    with eval_mode(model):
        assert [m.training for m in model.modules()] == [False] * 4
        x = torch.ones(1, 2)
        assert torch.equal(model(x), model(x))  # no dropout inside
    assert [m.training for m in model.modules()] == [True, True, True, False]
