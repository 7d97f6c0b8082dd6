"""MobileBertTokenizer (pure Python) and MobileBertTokenizerFast (`tokenizers`): one set of tests.

Ids are compared with transformers' BertTokenizer / BertTokenizerFast (test-only reference; what
MobileBERT users get from AutoTokenizer for google/mobilebert-uncased) on the real vocabulary,
over a varied corpus; the two tokenizers of the suite are compared with each other token by
token, offsets and word ids included.
"""

from __future__ import annotations

import functools
import json
import pickle
import random
import warnings

import numpy as np
import pytest

from mobilebert_common import MobileBertTokenizer, MobileBertTokenizerFast
from mobilebert_common.tokenization_base import BatchEncoding
from tests.helpers import SHARED_VOCAB

CLASSES = [MobileBertTokenizer, MobileBertTokenizerFast]
ids_of = lambda cls: cls.__name__  # noqa: E731

FRAGMENTS = [
    "The capital of France is [MASK].",
    "Héllo wörld! naïve café, Ångström, Øre, straße",
    "北京欢迎你 and 東京 and 𠀀𪚥",
    "a\u0000b\u200bc\x7f d\tq\nr\r\n s\u00ad t\ufeffu \ufffd",
    "x" * 150,
    "unaffable" * 12,
    "ΟΔΟΣ Σίσυφος ПРИВЕТ мир",
    "İstanbul ǅemal ﬁnal Ⅻ ½ ²",
    "e\u0301t\u00e9 n\u0303o a\u0316\u0300",
    "😀 emoji 👍🏽 👨‍👩‍👧 ❤️",
    "don't stop-believing... (ok) $5,000 @user #tag 100% a_b ~x` ^",
    "a[MASK]b [mask] [CLS] [SEP][PAD] [UNK]",
    "\u3000 full\u00a0width \u2003em space\u2028line",
    "안녕하세요 こんにちは カタカナ ｶﾀｶﾅ",
    "مرحبا بالعالم שלום עולם हिन्दी ไทย",
    "«quotes» „low“ ‘single’ — – … · •",
    "   leading and trailing   ",
    "UPPER lower MiXeD 12345 3.14159 1e-5",
    "",
]


def corpus(n=240, seed=0):
    """Fragments alone, then random mixes of words cut from them (a few hundred strings)."""
    rng = random.Random(seed)
    words = " ".join(FRAGMENTS).split(" ")
    out = list(FRAGMENTS)
    while len(out) < n:
        k = rng.randint(1, 12)
        out.append(rng.choice(["", " ", "\t"]).join(rng.choice(words) for _ in range(k)))
    return out


@pytest.fixture(scope="module")
def vocab_path():
    if not SHARED_VOCAB.is_file():
        pytest.skip(f"the real vocabulary {SHARED_VOCAB} is absent (it sits in ../shared/data next to the repository)")
    return str(SHARED_VOCAB)


@pytest.fixture(scope="module")
def toks(vocab_path):
    return {cls: cls(vocab_path) for cls in CLASSES}


@pytest.fixture(scope="module")
def refs(vocab_path):
    transformers = pytest.importorskip("transformers")
    return {
        MobileBertTokenizer: transformers.BertTokenizer(vocab_path),
        MobileBertTokenizerFast: transformers.BertTokenizerFast(vocab_path),
    }


def plain(enc):
    """A BatchEncoding (ours or transformers') -> dict of lists, offsets as lists of tuples."""
    out = {}
    for k, v in dict(enc).items():
        v = v.tolist() if hasattr(v, "tolist") else v
        if k == "offset_mapping":
            v = [[tuple(o) for o in row] for row in v] if v and isinstance(v[0], list) else [tuple(o) for o in v]
        out[k] = v
    return out


# ---- ids on the real vocabulary -------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_known_ids_checked_against_the_vocab_file(cls, toks, vocab_path):
    lines = open(vocab_path, encoding="utf-8").read().split("\n")
    expected = {"[CLS]": 101, "the": 1996, "capital": 3007, "of": 1997, "france": 2605, "is": 2003, "[MASK]": 103, ".": 1012, "[SEP]": 102}
    for token, i in expected.items():
        assert lines[i] == token  # line i (0-based) of vocab.txt holds the token with id i
    tok = toks[cls]
    enc = tok("The capital of France is [MASK].")
    assert enc["input_ids"] == list(expected.values())
    assert enc["token_type_ids"] == [0] * 9 and enc["attention_mask"] == [1] * 9
    assert tok.tokenize("The capital of France is [MASK].") == ["the", "capital", "of", "france", "is", "[MASK]", "."]
    assert tok.tokenize("unaffable") == ["una", "##ffa", "##ble"]
    assert [lines[i] for i in tok.encode("unaffable", add_special_tokens=False)] == ["una", "##ffa", "##ble"]
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 100, 101, 102, 103)
    assert (tok.pad_token, tok.unk_token, tok.cls_token, tok.sep_token, tok.mask_token) == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    assert tok.all_special_ids == [100, 102, 0, 101, 103]
    assert tok.vocab_size == len(tok) == 30522 == len(tok.get_vocab())
    assert tok.model_max_length == 512


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_ids_equal_transformers_on_a_varied_corpus(cls, toks, refs):
    tok, ref = toks[cls], refs[cls]
    texts = corpus()
    for text in texts:
        ours = tok(text)
        theirs = ref(text)
        assert ours["input_ids"] == theirs["input_ids"], text
        assert ours["token_type_ids"] == theirs["token_type_ids"]
        assert tok.tokenize(text) == ref.tokenize(text), text
    # pairs and a batch of pairs in one call
    pairs = list(zip(texts[::2], texts[1::2]))
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    assert plain(tok(a, b, padding=True)) == plain(ref(a, b, padding=True))
    assert plain(tok(pairs[:5])) == plain(ref(pairs[:5]))


def test_offsets_and_word_ids_equal_the_reference_fast_tokenizer(toks, refs):
    ref = refs[MobileBertTokenizerFast]
    for text in corpus(120, seed=1):
        theirs = ref(text, return_offsets_mapping=True)
        for tok in toks.values():
            ours = tok(text, return_offsets_mapping=True)
            assert plain(ours)["offset_mapping"] == plain(theirs)["offset_mapping"], (type(tok).__name__, text)
            assert ours.word_ids() == theirs.word_ids(), text
            assert ours.sequence_ids() == theirs.sequence_ids()


def test_pure_and_fast_agree_token_for_token(toks):
    pure, fast = toks[MobileBertTokenizer], toks[MobileBertTokenizerFast]
    texts = corpus(300, seed=2)
    kwargs = dict(padding=True, return_offsets_mapping=True, return_special_tokens_mask=True)
    a, b = pure(texts, **kwargs), fast(texts, **kwargs)
    assert plain(a) == plain(b)
    assert [a.word_ids(i) for i in range(len(texts))] == [b.word_ids(i) for i in range(len(texts))]


# Characters where the two reference tokenizers themselves disagree, found by running every
# assigned code point between two letters through both ("a" + ch + "b"): 759 with lower-casing,
# 426 without. Two causes. (1) Unicode versions: Python 3.11's unicodedata is Unicode 14, the
# Rust crates behind `tokenizers` are older, so newer punctuation is not split off and newer
# combining marks are not stripped there. (2) BertTokenizer composes the text (NFC) before
# anything else and the Rust BertNormalizer does not, which shows without lower-casing (the
# accent stripping decomposes anyway). The pure tokenizer follows BertTokenizer, the fast one
# BertTokenizerFast; one example of each kind is checked here.
@functools.lru_cache(maxsize=None)
def _cached(cls, vocab_path, lower):
    return cls(vocab_path, do_lower_case=lower)


TABLE_DIFFERENCES = [
    ("\u2e43", True, "DASH WITH LEFT UPTURN (Po, Unicode 9): punctuation in Python, unknown to the Rust tables"),
    ("\u061d", True, "ARABIC END OF TEXT MARK (Po, Unicode 14)"),
    ("\u1ac0", True, "COMBINING LATIN SMALL LETTER TURNED W BELOW (Mn, Unicode 14): stripped as an accent only in Python"),
    ("\u037e", False, "GREEK QUESTION MARK: NFC turns it into ';' in BertTokenizer; the Rust normalizer has no NFC"),
    ("\uf902", False, "CJK COMPATIBILITY IDEOGRAPH-F902: NFC maps it to U+8ECA only in BertTokenizer"),
]


@pytest.mark.parametrize("char,lower,why", TABLE_DIFFERENCES, ids=[hex(ord(c)) for c, _, _ in TABLE_DIFFERENCES])
def test_where_unicode_tables_differ_each_follows_its_reference(char, lower, why, vocab_path):
    transformers = pytest.importorskip("transformers")
    text = f"a{char}b x"
    classes = (MobileBertTokenizer, MobileBertTokenizerFast, transformers.BertTokenizer, transformers.BertTokenizerFast)
    pure, fast, slow_ref, fast_ref = (_cached(c, vocab_path, lower)(text)["input_ids"] for c in classes)
    assert pure == slow_ref, why
    assert fast == fast_ref, why
    assert pure != fast, why  # if this fails, the tables have converged: drop the entry


# ---- cased settings on a small vocabulary ----------------------------------------------------


def _write_vocab(tmp_path, tokens):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


SMALL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Hello", "hello", "café", "cafe", "##s", "!", ",", "é", "e", "World", "world", "北", "京"]


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
@pytest.mark.parametrize("options", [dict(do_lower_case=False), dict(do_lower_case=False, strip_accents=True), dict(do_lower_case=True, strip_accents=False), dict(tokenize_chinese_chars=False)])
def test_case_accent_and_cjk_options_equal_transformers(cls, options, tmp_path):
    transformers = pytest.importorskip("transformers")
    path = _write_vocab(tmp_path, SMALL)
    ref_cls = transformers.BertTokenizer if cls is MobileBertTokenizer else transformers.BertTokenizerFast
    ref = ref_cls(str(path), **options)
    tok = cls(str(path), **options)
    for text in ["Hello World!", "hello, cafés", "Café CAFÉ café", "北京 北京x", "HELLO [MASK] worlds"]:
        assert tok(text)["input_ids"] == ref(text)["input_ids"], (options, text)


# ---- padding, truncation, tensors ------------------------------------------------------------

TEXTS = ["one two three four five six seven", "alpha beta", "the quick brown fox jumps over the lazy dog again and again"]
PAIRS = ["alpha beta gamma delta", "a b c d e f g h i j k", "x"]
SHORT = ["x y", "z", "w v u"]


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
@pytest.mark.parametrize("padding", [False, True, "longest", "max_length", "do_not_pad"])
@pytest.mark.parametrize("truncation", [False, True, "longest_first", "only_first", "only_second"])
@pytest.mark.filterwarnings("ignore:`max_length` is ignored")  # transformers' own note; we pad to the longest alike
def test_padding_and_truncation_modes_equal_transformers(cls, padding, truncation, toks, refs):
    # Both tokenizers cut pairs as the `tokenizers` library does (see the next test), so the
    # reference here is BertTokenizerFast; single texts are also checked against BertTokenizer.
    tok, ref, slow = toks[cls], refs[MobileBertTokenizerFast], refs[MobileBertTokenizer]
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
def test_longest_first_follows_the_tokenizers_library_where_bert_tokenizer_differs(cls, toks, refs):
    """When both texts must be cut to an odd budget, BertTokenizer (one token at a time from the
    longer text) gives the spare token to the first text, the `tokenizers` library to the longer
    one. We follow the library, which is what AutoTokenizer gives MobileBERT users."""
    tok, fast, slow = toks[cls], refs[MobileBertTokenizerFast], refs[MobileBertTokenizer]
    a, b = "alpha beta", "a b c d e f g h i j k"
    ours = tok(a, b, truncation=True, max_length=4)["input_ids"]
    assert ours == fast(a, b, truncation=True, max_length=4)["input_ids"] == [101, 102, 1037, 102]
    assert slow(a, b, truncation=True, max_length=4)["input_ids"] == [101, 6541, 102, 102]
    a, b = "one two three four five six seven", "p q r s t u v w"  # 7 and 8 tokens, room 6 then 7
    for max_length in (9, 10):
        assert tok(a, b, truncation=True, max_length=max_length)["input_ids"] == fast(a, b, truncation=True, max_length=max_length)["input_ids"]


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_pad_to_multiple_and_padding_masks(cls, toks):
    tok = toks[cls]
    enc = tok(["a b", "a b c d e"], padding=True, pad_to_multiple_of=8, return_special_tokens_mask=True, return_offsets_mapping=True)
    assert [len(r) for r in enc["input_ids"]] == [8, 8]
    assert enc["input_ids"][0][4:] == [0, 0, 0, 0] and enc["attention_mask"][0] == [1, 1, 1, 1, 0, 0, 0, 0]
    assert enc["special_tokens_mask"][0] == [1, 0, 0, 1, 1, 1, 1, 1]
    assert enc["offset_mapping"][0] == [(0, 0), (0, 1), (2, 3), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0)]
    assert enc.word_ids(0) == [None, 0, 1, None, None, None, None, None]


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
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
    with pytest.raises(ValueError, match="only_second"):
        tok(context, context, truncation=True, max_length=8, return_overflowing_tokens=True)


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
    assert set(enc) == {"input_ids", "length"} and enc["length"] == 3
    enc = tok("hello world", add_special_tokens=False, return_offsets_mapping=True)  # what the pipelines call
    assert enc["input_ids"] == [7592, 2088] and enc["offset_mapping"] == [(0, 5), (6, 11)]
    assert tok.encode("hello", "world") == [101, 7592, 102, 2088, 102]
    # An empty second text still counts as a pair, as in BertTokenizer and in BertTokenizerFast's
    # batches (its single-pair call alone drops the empty text).
    assert tok("a", "")["input_ids"] == [101, 1037, 102, 102] and tok(["a"], [""])["input_ids"] == [[101, 1037, 102, 102]]
    with pytest.warns(UserWarning, match="max_length is given but truncation is not"):
        assert tok("a b c d e f", max_length=5)["input_ids"] == [101, 1037, 1038, 1039, 102]
    assert len(tok("a b c d e f", max_length=5, truncation=False)["input_ids"]) == 8
    # overflow keeps the batch axis even for one text that fits, as transformers does
    enc = tok("hello", truncation=True, max_length=8, return_overflowing_tokens=True)
    assert enc["input_ids"] == [[101, 7592, 102]] and enc["overflow_to_sample_mapping"] == [0]


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


# ---- decoding --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_decode_round_trips_and_equals_transformers(cls, toks, refs):
    tok, slow, fast = toks[cls], refs[MobileBertTokenizer], refs[MobileBertTokenizerFast]
    text = "the capital of france is paris, isn't it? yes! unaffable."
    ids = tok.encode(text)
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.decode(np.array(ids)) == "[CLS] " + text + " [SEP]"
    for text in corpus(60, seed=3):
        ids = tok.encode(text)
        for skip in (False, True):
            for clean in (False, True):
                kw = dict(skip_special_tokens=skip, clean_up_tokenization_spaces=clean)
                assert tok.decode(ids, **kw) == slow.decode(ids, **kw), (text, kw)
                if clean:  # transformers' fast decoder always cleans up, whatever the flag says
                    assert tok.decode(ids, **kw) == fast.decode(ids, **kw), (text, kw)
    batch = tok(["hello world", "a b c"], padding=True)["input_ids"]
    assert tok.batch_decode(batch, skip_special_tokens=True) == ["hello world", "a b c"]
    assert tok.convert_ids_to_tokens(7592) == "hello"
    assert tok.convert_ids_to_tokens([101, 7592, 102], skip_special_tokens=True) == ["hello"]
    assert tok.convert_tokens_to_ids(["hello", "no-such-token"]) == [7592, 100]
    assert tok.convert_tokens_to_string(["una", "##ffa", "##ble"]) == "unaffable"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([30522])
    with pytest.raises(ValueError, match="batch_decode"):
        tok.decode([[1, 2]])


# ---- files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_save_pretrained_is_read_back_by_transformers_autotokenizer(cls, toks, tmp_path):
    transformers = pytest.importorskip("transformers")
    tok = toks[cls]
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "MobileBertTokenizer" and config["do_lower_case"] is True
    assert (tmp_path / "tokenizer.json").exists() == (cls is MobileBertTokenizerFast)
    texts = corpus(40, seed=4)
    for use_fast in (False, True):
        auto = transformers.AutoTokenizer.from_pretrained(str(tmp_path), use_fast=use_fast)
        assert type(auto).__name__.startswith("MobileBertTokenizer")
        assert auto(texts, padding=True)["input_ids"] == tok(texts, padding=True)["input_ids"]
        assert auto.model_max_length == 512 and auto.mask_token_id == 103
    again = cls.from_pretrained(tmp_path)
    assert again(texts)["input_ids"] == tok(texts)["input_ids"]
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").split("\n")[:3] == ["[PAD]", "[unused0]", "[unused1]"]


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_from_pretrained_reads_settings_and_tokenizer_json_alone(cls, tmp_path):
    transformers = pytest.importorskip("transformers")
    only_vocab = tmp_path / "only_vocab"
    only_vocab.mkdir()
    _write_vocab(only_vocab, SMALL)
    tok = cls.from_pretrained(only_vocab)
    assert tok.do_lower_case and tok.tokenize("Hello World") == ["hello", "world"]
    cased = cls.from_pretrained(str(only_vocab), do_lower_case=False, model_max_length=64)
    assert cased.tokenize("Hello World") == ["Hello", "World"] and cased.model_max_length == 64

    # tokenizer_config.json and special_tokens_map.json as users' directories hold them
    (only_vocab / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "model_max_length": 128, "tokenizer_class": "BertTokenizer"}))
    (only_vocab / "special_tokens_map.json").write_text(json.dumps({"mask_token": {"content": "[MASK]", "lstrip": False}, "unk_token": "[UNK]"}))
    tok = cls.from_pretrained(only_vocab)
    assert tok.tokenize("Hello World") == ["Hello", "World"] and tok.model_max_length == 128

    # a directory with tokenizer.json alone (as transformers' fast tokenizer writes it)
    only_json = tmp_path / "only_json"
    only_json.mkdir()
    ref = transformers.BertTokenizerFast(str(only_vocab / "vocab.txt"), do_lower_case=False)
    ref.backend_tokenizer.save(str(only_json / "tokenizer.json"))
    tok = cls.from_pretrained(only_json)
    assert tok.do_lower_case is False and tok.get_vocab() == ref.get_vocab()
    for text in ["Hello World!", "hello cafés", "北京 [MASK]"]:
        assert tok(text)["input_ids"] == ref(text)["input_ids"]


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_from_pretrained_reads_a_hub_repo_from_the_cache_offline(cls, tmp_path, monkeypatch):
    from tests.test_hub import REPO, fill_cache

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fill_cache(tmp_path, files={"vocab.txt": "\n".join(SMALL) + "\n", "tokenizer_config.json": json.dumps({"do_lower_case": False})})
    tok = cls.from_pretrained(REPO, cache_dir=tmp_path, local_files_only=True)
    assert tok.tokenize("Hello World") == ["Hello", "World"] and tok.vocab_size == len(SMALL)
    with pytest.raises(FileNotFoundError, match="google/other-model"):
        cls.from_pretrained("google/other-model", cache_dir=tmp_path)


# ---- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_bad_input_raises_clear_errors(cls, toks, tmp_path):
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

    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        cls(str(tmp_path / "vocab.txt"))
    with pytest.raises(FileNotFoundError, match="neither vocab.txt nor tokenizer.json"):
        cls.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"lacks the special token\(s\) \['\[MASK\]'\]"):
        cls(str(_write_vocab(tmp_path, [t for t in SMALL if t != "[MASK]"])))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("\n".join(SMALL).encode("utf-8") + "\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        cls(str(latin1))
    (tmp_path / "vocab.txt").unlink()
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="tokenizer.json is not valid JSON"):
        cls.from_pretrained(tmp_path)
    with pytest.raises(TypeError, match="unknown keyword"):
        cls.from_pretrained(tmp_path, do_lowercase=True)
