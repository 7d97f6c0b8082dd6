"""Shared pieces of the tokenizer tests: both classes, a varied corpus, a small cased vocabulary."""

from __future__ import annotations

import random

from mobilebert_common import MobileBertTokenizer, MobileBertTokenizerFast

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


def plain(enc):
    """A BatchEncoding (ours or transformers') -> dict of lists, offsets as lists of tuples."""
    out = {}
    for k, v in dict(enc).items():
        v = v.tolist() if hasattr(v, "tolist") else v
        if k == "offset_mapping":
            v = [[tuple(o) for o in row] for row in v] if v and isinstance(v[0], list) else [tuple(o) for o in v]
        out[k] = v
    return out


def write_tokens(tmp_path, tokens):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


SMALL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Hello", "hello", "café", "cafe", "##s", "!", ",", "é", "e", "World", "world", "北", "京"]
