"""The tokenizers' calls: padding, truncation (with stride windows), tensors, output flags, pad(),
and the errors of bad options, against transformers' BERT tokenizers on the real vocabulary."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from mobilebert_common import MobileBertTokenizer, MobileBertTokenizerFast
from mobilebert_common.tokenization_base import BatchEncoding
from tests.harness.tokenization import CLASSES, ids_of, plain


TEXTS = ["one two three four five six seven", "alpha beta", "the quick brown fox jumps over the lazy dog again and again"]
PAIRS = ["alpha beta gamma delta", "a b c d e f g h i j k", "x"]
SHORT = ["x y", "z", "w v u"]


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
@pytest.mark.parametrize("padding", [False, True, "longest", "max_length", "do_not_pad"])
@pytest.mark.parametrize("truncation", [False, True, "longest_first", "only_first", "only_second"])
@pytest.mark.filterwarnings("ignore:`max_length` is ignored")  # transformers' own note; we pad to the longest alike
def test_padding_and_truncation_modes_equal_transformers(cls, padding, truncation, toks, refs):
    # Each tokenizer cuts pairs as its transformers counterpart does (see the next test);
    # single texts are also checked against BertTokenizer.
    tok, ref, slow = toks[cls], refs[cls], refs[MobileBertTokenizer]
    for max_length in (9, 12, 16, 17):
        kwargs = dict(padding=padding, truncation=truncation, max_length=max_length, return_special_tokens_mask=True)
        if truncation != "only_second":
            assert plain(tok(TEXTS, **kwargs)) == plain(ref(TEXTS, **kwargs)), (max_length, kwargs)
            assert plain(tok(TEXTS[0], **kwargs)) == plain(ref(TEXTS[0], **kwargs))
            assert plain(tok(TEXTS, **kwargs)) == plain(slow(TEXTS, **kwargs))
        firsts, seconds = TEXTS, PAIRS
        if truncation == "only_first":
            seconds = SHORT  # the untouched second text must leave room for the first
        if truncation == "only_second":
            firsts, seconds = SHORT, TEXTS
        ours = tok(firsts, seconds, **kwargs)
        theirs = ref(firsts, seconds, **kwargs)
        assert plain(ours) == plain(theirs), (max_length, kwargs)
        if padding == "max_length" and truncation:
            assert all(len(r) == max_length for r in ours["input_ids"])
    if truncation in (True, "longest_first"):  # so tight that a text loses all its tokens
        for max_length in (4, 5):
            assert plain(tok(TEXTS, PAIRS, truncation=truncation, max_length=max_length)) == plain(ref(TEXTS, PAIRS, truncation=truncation, max_length=max_length))


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_longest_first_follows_each_counterpart_where_they_differ(cls, toks, refs):
    """When both texts must be cut to an odd budget, BertTokenizer (one token at a time from the
    longer text) gives the spare token to the first text, the `tokenizers` library to the longer
    one. Each of ours follows its counterpart (slow: BertTokenizer, fast: the library)."""
    tok, fast, slow = toks[cls], refs[MobileBertTokenizerFast], refs[MobileBertTokenizer]
    a, b = "alpha beta", "a b c d e f g h i j k"
    ours = tok(a, b, truncation=True, max_length=4)["input_ids"]
    assert fast(a, b, truncation=True, max_length=4)["input_ids"] == [101, 102, 1037, 102]
    assert slow(a, b, truncation=True, max_length=4)["input_ids"] == [101, 6541, 102, 102]
    assert ours == (fast if cls is MobileBertTokenizerFast else slow)(a, b, truncation=True, max_length=4)["input_ids"]
    a, b = "one two three four five six seven", "p q r s t u v w"  # 7 and 8 tokens, room 6 then 7
    for max_length in (9, 10):
        assert tok(a, b, truncation=True, max_length=max_length)["input_ids"] == refs[cls](a, b, truncation=True, max_length=max_length)["input_ids"]


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_pad_to_multiple_and_padding_masks(cls, toks):
    tok = toks[cls]
    enc = tok(["a b", "a b c d e"], padding=True, pad_to_multiple_of=8, return_special_tokens_mask=True, return_offsets_mapping=True)
    assert [len(r) for r in enc["input_ids"]] == [8, 8]
    assert enc["input_ids"][0][4:] == [0, 0, 0, 0] and enc["attention_mask"][0] == [1, 1, 1, 1, 0, 0, 0, 0]
    assert enc["special_tokens_mask"][0] == [1, 0, 0, 1, 1, 1, 1, 1]
    assert enc["offset_mapping"][0] == [(0, 0), (0, 1), (2, 3), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0)]
    assert enc.word_ids(0) == [None, 0, 1, None, None, None, None, None]


@pytest.mark.parametrize("cls", [MobileBertTokenizerFast], ids=ids_of)  # the slow class: test_tokenization_dropin.py
def test_overflowing_windows_with_stride_equal_the_reference_fast_tokenizer(cls, toks, refs):
    tok, ref = toks[cls], refs[MobileBertTokenizerFast]
    context = "the quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun"
    kwargs = dict(truncation=True, max_length=8, stride=2, return_overflowing_tokens=True, return_offsets_mapping=True, padding=True)
    assert plain(tok(context, **kwargs)) == plain(ref(context, **kwargs))
    kwargs["truncation"] = "only_second"
    kwargs["max_length"] = 12
    ours = tok(["what sleeps?", "who jumps"], [context, context], **kwargs)
    theirs = ref(["what sleeps?", "who jumps"], [context, context], **kwargs)
    assert plain(ours) == plain(theirs)
    assert ours["overflow_to_sample_mapping"][-1] == 1
    assert [ours.sequence_ids(i) for i in range(len(ours["input_ids"]))] == [theirs.sequence_ids(i) for i in range(len(theirs["input_ids"]))]
    with pytest.raises(ValueError, match="stride"):
        tok(context, truncation=True, max_length=8, stride=6, return_overflowing_tokens=True)


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_tensors_and_batch_encoding(cls, toks):
    tok = toks[cls]
    lists = tok(TEXTS, padding=True)
    np_enc = tok(TEXTS, padding=True, return_tensors="np")
    assert isinstance(np_enc, BatchEncoding) and np_enc.input_ids.dtype == np.int64
    np.testing.assert_array_equal(np_enc["input_ids"], np.array(lists["input_ids"]))
    one = tok("hello world", return_tensors="np")
    assert one["input_ids"].shape == (1, 4)  # one text still gets the batch axis with tensors
    assert tok("hello world", return_offsets_mapping=True, return_tensors="np")["offset_mapping"].shape == (1, 4, 2)
    with pytest.raises(AttributeError, match="holds"):
        one.no_such_key
    with pytest.raises(ValueError, match="padding=True"):
        tok(TEXTS, return_tensors="np")
    torch = pytest.importorskip("torch")
    pt = tok(TEXTS, padding=True, return_tensors="pt").to("cpu")
    assert pt.input_ids.dtype == torch.int64 and pt["attention_mask"].device.type == "cpu"
    assert pt["input_ids"].tolist() == lists["input_ids"]
    assert pt.to(torch.device("cpu")) is pt


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_tf_tensors(cls, toks):
    tf = pytest.importorskip("tensorflow")
    enc = toks[cls](TEXTS, padding=True, return_tensors="tf")
    assert isinstance(enc["input_ids"], tf.Tensor) and enc["input_ids"].dtype == tf.int64
    assert enc["input_ids"].numpy().tolist() == toks[cls](TEXTS, padding=True)["input_ids"]


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_flags_select_the_outputs(cls, toks):
    tok = toks[cls]
    enc = tok("hello", return_token_type_ids=False, return_attention_mask=False, return_length=True)
    assert set(enc) == {"input_ids", "length"} and enc["length"] == (3 if cls is MobileBertTokenizer else [3])  # as each counterpart
    enc = tok("hello world", add_special_tokens=False, return_offsets_mapping=True)  # what the pipelines call
    assert enc["input_ids"] == [7592, 2088] and enc["offset_mapping"] == [(0, 5), (6, 11)]
    assert tok.encode("hello", "world") == [101, 7592, 102, 2088, 102]
    # An empty second text still counts as a pair, as in BertTokenizer and in BertTokenizerFast's
    # batches (its single-pair call alone drops the empty text).
    assert tok("a", "")["input_ids"] == [101, 1037, 102, 102] and tok(["a"], [""])["input_ids"] == [[101, 1037, 102, 102]]
    with pytest.warns(UserWarning, match="max_length is given but truncation is not"):
        assert tok("a b c d e f", max_length=5)["input_ids"] == [101, 1037, 1038, 1039, 102]
    assert len(tok("a b c d e f", max_length=5, truncation=False)["input_ids"]) == 8
    # overflow keeps the batch axis even for one text that fits, as transformers' fast class does;
    # the slow class returns the one row and the (no) overflowing tokens, as BertTokenizer does
    enc = tok("hello", truncation=True, max_length=8, return_overflowing_tokens=True)
    if cls is MobileBertTokenizerFast:
        assert enc["input_ids"] == [[101, 7592, 102]] and enc["overflow_to_sample_mapping"] == [0]
    else:
        assert enc["input_ids"] == [101, 7592, 102] and enc["overflowing_tokens"] == [] and enc["num_truncated_tokens"] == -5


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_pad_later_equals_padding_in_the_call_and_objects_pickle(cls, toks):
    tok = toks[cls]
    rows = [tok(t, return_special_tokens_mask=True) for t in TEXTS]
    direct = tok(TEXTS, padding="max_length", max_length=16, return_special_tokens_mask=True)
    assert plain(tok.pad(rows, padding="max_length", max_length=16)) == plain(direct)
    columns = tok(TEXTS, return_special_tokens_mask=True)
    np.testing.assert_array_equal(tok.pad(columns, return_tensors="np")["input_ids"], tok(TEXTS, padding=True, return_tensors="np")["input_ids"])
    with pytest.raises(ValueError, match="lack 'token_type_ids'"):
        tok.pad([{"input_ids": [1, 2]}, {"input_ids": [1], "token_type_ids": [0]}])
    assert tok.is_fast == (cls is MobileBertTokenizerFast) and tok.padding_side == "right"
    again = pickle.loads(pickle.dumps(tok))
    assert again(TEXTS)["input_ids"] == tok(TEXTS)["input_ids"]
    enc = pickle.loads(pickle.dumps(tok(TEXTS[:2], TEXTS[1:], padding=True)))
    assert enc.sequence_ids(1) == tok(TEXTS[:2], TEXTS[1:], padding=True).sequence_ids(1) and enc.input_ids[0][0] == 101


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_long_input_warns_and_is_not_cut_without_truncation(cls, toks):
    tok = toks[cls]
    text = "word " * 600
    with pytest.warns(UserWarning, match=r"602 > 512"):
        enc = tok(text)
    assert len(enc["input_ids"]) == 602
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(tok(text, truncation=True)["input_ids"]) == 512



# ---- bad options ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_bad_options_raise_clear_errors(cls, toks):
    tok = toks[cls]
    bad_calls = [
        (dict(padding="sideways"), "padding must be one of"),
        (dict(padding=2), "padding must be one of"),
        (dict(truncation="middle"), "truncation must be one of"),
        (dict(padding="max_length"), "needs max_length"),
        (dict(max_length=0, truncation=True), "max_length must be a positive int"),
        (dict(return_tensors="jax"), "return_tensors must be one of"),
        (dict(stride=-1), "stride"),
        (dict(truncation=True, max_length=2), "no room for text"),
        (dict(truncation="only_second", max_length=5), "needs a pair"),
    ]
    for kwargs, message in bad_calls:
        with pytest.raises(ValueError, match=message):
            tok("hello world again", **kwargs)
    with pytest.raises(ValueError, match="only_first"):
        tok("a", "b c d e f g", truncation="only_first", max_length=6)
    with pytest.raises(ValueError, match="only_second"):
        tok("a b c d e f g", "b", truncation="only_second", max_length=6)
    for text, message in [(None, "must be a str"), (123, "must be a str"), ([], "empty list"), (["a", 5], r"text\[1\]"), ([("a", "b", "c")], "pair")]:
        with pytest.raises(ValueError, match=message):
            tok(text)
    with pytest.raises(ValueError, match="text_pair"):
        tok(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="text_pair must be one str"):
        tok("a", ["b"])
    with pytest.raises(ValueError, match="must be a str"):
        tok.tokenize(b"bytes")
