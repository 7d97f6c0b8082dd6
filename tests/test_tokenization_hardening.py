"""No silent wrong values from the tokenizers, the same in MobileBertTokenizer and MobileBertTokenizerFast.

- decode / convert_ids_to_tokens take integer ids only (Python, numpy, torch, TensorFlow integers):
  floats (1.5, and 1.0 as transformers' fast tokenizer refuses it), bools, strings and None are a
  ValueError with the same message in both classes.
- A lone surrogate ("\\ud800", half of a UTF-16 pair) is an unknown character: the word holding it is
  one [UNK] spanning the word, in both classes (ids, offsets, word ids and tokens agree).
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

from mobilebert_common import MobileBertTokenizer, MobileBertTokenizerFast
from tests.harness.models import SHARED_VOCAB

CLASSES = [MobileBertTokenizer, MobileBertTokenizerFast]


@functools.lru_cache(maxsize=None)
def tokenizer(cls):
    return cls(SHARED_VOCAB)


def error_of(cls, fn) -> str:
    with pytest.raises(ValueError) as info:
        fn(tokenizer(cls))
    return str(info.value)


# ------------------------------------------------------------------ decode takes integer ids only

HELLO = 7592  # "hello" in the uncased vocabulary


def torch_tensor(values, dtype):
    torch = pytest.importorskip("torch")
    return torch.tensor(values, dtype=getattr(torch, dtype))


@pytest.mark.parametrize("value, message", [
    ([1.5], r"token_ids\[0\] is 1.5 \(float\); token ids must be integers"),
    ([HELLO, 1.0], r"token_ids\[1\] is 1.0 \(float\); token ids must be integers"),
    ([True], r"token_ids\[0\] is True \(bool\)"),
    (["hello"], r"token_ids\[0\] is 'hello' \(str\)"),
    ([None], r"token_ids\[0\] is None \(NoneType\)"),
    (1.5, "token_ids must be a token id or a sequence of ids .*got float: 1.5"),
    (np.float32(1), "token_ids must be a token id or a sequence of ids .*got float32"),
    (None, "token_ids must be a token id or a sequence of ids .*got NoneType"),
    ("hello", "token_ids must be a token id or a sequence of ids .*got str: 'hello'"),
    (np.array([1.0, 2.0]), "token_ids has dtype float64; token ids must be integers"),
    (np.array([True]), "token_ids has dtype bool; token ids must be integers"),
    (np.array(["7592"]), "token_ids has dtype <U4; token ids must be integers"),
    ("torch float32", "token_ids has dtype float32; token ids must be integers"),
    ("torch bfloat16", "token_ids must hold integer token ids"),
    ([[1, 2]], "use batch_decode for a batch"),
], ids=lambda v: repr(v)[:30])
def test_decode_refuses_what_is_not_an_integer_id(value, message):
    if isinstance(value, str) and value.startswith("torch "):
        value = torch_tensor([1.0, 2.0], value.split()[1])
    messages = [error_of(cls, lambda tok: tok.decode(value)) for cls in CLASSES]
    assert messages[0] == messages[1]
    assert re.search(message, messages[0]), messages[0]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_convert_ids_to_tokens_and_batch_decode_refuse_floats_too(cls):
    tok = tokenizer(cls)
    with pytest.raises(ValueError, match=r"ids\[0\] is 1.5 \(float\)"):
        tok.convert_ids_to_tokens([1.5])
    with pytest.raises(ValueError, match=r"token_ids\[1\] is 2.0 \(float\)"):
        tok.batch_decode([[HELLO], [HELLO, 2.0]])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_decode_takes_integers_of_every_kind(cls):
    tok = tokenizer(cls)
    expected = "[CLS] hello [SEP]"
    plain = [101, HELLO, 102]
    assert tok.decode(plain) == expected
    for dtype in ("int16", "int32", "int64", "uint16", "uint32", "uint64"):
        assert tok.decode(np.array(plain, dtype)) == expected, dtype
        assert tok.decode([getattr(np, dtype)(i) for i in plain]) == expected, dtype
    assert tok.decode(np.array([101, 102], np.uint8)) == "[CLS] [SEP]"
    for dtype in ("int32", "int64"):
        assert tok.decode(torch_tensor(plain, dtype)) == expected
    assert tok.decode(torch_tensor([101, 102], "int8")) == "[CLS] [SEP]"
    assert tok.decode(np.int16(HELLO)) == "hello" and tok.decode(torch_tensor(HELLO, "int64")) == "hello"
    assert tok.decode(tuple(plain)) == expected and tok.decode(np.array(plain, object)) == expected


def test_decode_takes_tensorflow_integers():
    tf = pytest.importorskip("tensorflow")
    for cls in CLASSES:
        assert tokenizer(cls).decode(tf.constant([101, HELLO, 102], tf.int32)) == "[CLS] hello [SEP]"
        with pytest.raises(ValueError, match="token_ids has dtype float32"):
            tokenizer(cls).decode(tf.constant([1.0]))


# ------------------------------------------------------------------ lone surrogates

SURROGATE_TEXTS = {
    # text: expected (tokens, offsets) without special tokens
    "\ud800hello world": (["[UNK]", "world"], [(0, 6), (7, 12)]),      # start, inside a word
    "\udfff hello": (["[UNK]", "hello"], [(0, 1), (2, 7)]),            # start, a word of its own
    "hello \udc00 world": (["hello", "[UNK]", "world"], [(0, 5), (6, 7), (8, 13)]),
    "hel\ud83dlo world": (["[UNK]", "world"], [(0, 6), (7, 12)]),       # middle of a word
    "hello, world\ud800": (["hello", ",", "[UNK]"], [(0, 5), (5, 6), (7, 13)]),  # end
    "hello \ud800": (["hello", "[UNK]"], [(0, 5), (6, 7)]),
    "a\ud83d\ude00!": (["[UNK]", "!"], [(0, 3), (3, 4)]),               # a pair written as two halves
    "\ud800": (["[UNK]"], [(0, 1)]),
    "[MASK]\ud800 x": (["[MASK]", "[UNK]", "x"], [(0, 6), (6, 7), (8, 9)]),
}


def encode(cls, text, **kwargs):
    enc = tokenizer(cls)(text, add_special_tokens=False, return_offsets_mapping=True, **kwargs)
    return enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]], enc.word_ids()


@pytest.mark.parametrize("text", list(SURROGATE_TEXTS), ids=lambda t: t.encode("unicode_escape").decode())
def test_lone_surrogates_are_unknown_characters_in_both_tokenizers(text):
    tokens, offsets = SURROGATE_TEXTS[text]
    unk = tokenizer(MobileBertTokenizer).unk_token_id
    results = []
    for cls in CLASSES:
        ids, offs, words = encode(cls, text)
        assert tokenizer(cls).tokenize(text) == tokens, cls.__name__
        assert tokenizer(cls).convert_ids_to_tokens(ids) == tokens and offs == offsets, cls.__name__
        assert words == list(range(len(tokens))), cls.__name__  # each [UNK] is one whole word
        results.append((ids, offs, words))
    assert results[0] == results[1]
    assert results[0][0].count(unk) == tokens.count("[UNK]")


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_lone_surrogates_in_pairs_batches_and_windows(cls):
    """The [UNK] goes through every path of a call: pairs, batches with padding, stride windows."""
    tok = tokenizer(cls)
    enc = tok(["\ud800hello world", "what is it"], ["it is\udfff", "hello"], padding=True, return_offsets_mapping=True)
    assert tok.convert_ids_to_tokens(enc["input_ids"][0]) == [
        "[CLS]", "[UNK]", "world", "[SEP]", "it", "[UNK]", "[SEP]"]
    assert [tuple(o) for o in enc["offset_mapping"][0]] == [(0, 0), (0, 6), (7, 12), (0, 0), (0, 2), (3, 6), (0, 0)]
    assert enc.sequence_ids(0) == [None, 0, 0, None, 1, 1, None]
    windows = tok("a b \ud800c d e", max_length=5, truncation=True, stride=1, return_overflowing_tokens=True)
    if tok.is_fast:  # a row per window
        rows = [tok.convert_ids_to_tokens(r) for r in windows["input_ids"]]
        assert rows == [["[CLS]", "a", "b", "[UNK]", "[SEP]"], ["[CLS]", "[UNK]", "d", "e", "[SEP]"]]
    else:  # one row, and the cut tokens with the stride's one before them
        assert tok.convert_ids_to_tokens(windows["input_ids"]) == ["[CLS]", "a", "b", "[UNK]", "[SEP]"]
        assert tok.convert_ids_to_tokens(windows["overflowing_tokens"]) == ["[UNK]", "d", "e"]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_lone_surrogate_is_unknown_even_where_the_vocabulary_has_its_stand_in(cls, tmp_path):
    """Both tokenizers encode a stand-in letter (U+A4D0) in a surrogate's place: with that letter in the
    vocabulary, the word is still [UNK], while the letter itself, written in the text, is found."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##b", "\ua4d0", "##\ua4d0"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = cls(path)
    assert tok.tokenize("a\ua4d0b \ua4d0") == ["a", "##\ua4d0", "##b", "\ua4d0"]
    enc = tok("a\ud800b \ud800", add_special_tokens=False, return_offsets_mapping=True)
    assert tok.convert_ids_to_tokens(enc["input_ids"]) == ["[UNK]", "[UNK]"]
    assert enc["offset_mapping"] == [(0, 3), (4, 5)] and enc.word_ids() == [0, 1]
