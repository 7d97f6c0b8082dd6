"""MobileBertTokenizer (pure Python) and MobileBertTokenizerFast (`tokenizers`): ids, options, decoding.

Ids are compared with transformers' BertTokenizer / BertTokenizerFast (test-only reference; what
MobileBERT users get from AutoTokenizer for google/mobilebert-uncased) on the real vocabulary,
over a varied corpus; the two tokenizers of the suite are compared with each other token by
token, offsets and word ids included. Calls (padding, truncation, tensors) are tested in
test_tokenization_encoding.py, files in test_tokenization_files.py; the fixtures are in conftest.py.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from mobilebert_common import MobileBertTokenizer, MobileBertTokenizerFast
from tests.harness.tokenization import CLASSES, SMALL, corpus, ids_of, plain, write_tokens


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


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
@pytest.mark.parametrize("options", [dict(do_lower_case=False), dict(do_lower_case=False, strip_accents=True), dict(do_lower_case=True, strip_accents=False), dict(tokenize_chinese_chars=False)])
def test_case_accent_and_cjk_options_equal_transformers(cls, options, tmp_path):
    transformers = pytest.importorskip("transformers")
    path = write_tokens(tmp_path, SMALL)
    ref_cls = transformers.BertTokenizer if cls is MobileBertTokenizer else transformers.BertTokenizerFast
    ref = ref_cls(str(path), **options)
    tok = cls(str(path), **options)
    for text in ["Hello World!", "hello, cafés", "Café CAFÉ café", "北京 北京x", "HELLO [MASK] worlds"]:
        assert tok(text)["input_ids"] == ref(text)["input_ids"], (options, text)


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

    assert tok.decode(7592) == "hello" and tok.decode(np.int64(7592)) == "hello"  # one id, as transformers takes it
    assert tok.decode(np.array(101), skip_special_tokens=True) == "" and tok.decode(np.array(7592)) == "hello"
    assert tok.batch_decode([[7592, 2088], np.array([101, 2088])]) == ["hello world", "[CLS] world"]
