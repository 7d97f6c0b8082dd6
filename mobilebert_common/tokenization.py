"""MobileBertTokenizer: BERT's tokenizer in pure Python (no `tokenizers` library needed).

First, added tokens (the special ones, [MASK] ..., and those of add_tokens) written in the text
are split off whole, matched as transformers' slow tokenizer matches them. Then two stages, as in
the original BERT code:

1. Basic tokenization. Control characters are dropped and whitespace unified; CJK ideographs
   become words of their own; the text is NFC-normalised; then lower-casing and accent stripping (NFD, combining marks removed)
   as configured; then every punctuation character is split off.
2. WordPiece: greedy longest match from the left, continuations spelled "##piece"; a word that
   cannot be covered, or is longer than 100 characters, becomes [UNK].

Every character carries the (start, end) span of the original characters it came from, so the
pure tokenizer gives the same character offsets as the fast one.
"""

from __future__ import annotations

import re
import unicodedata
from typing import List, Tuple

from mobilebert_common.tokenization_added import AddedToken, as_added_token
from mobilebert_common.tokenization_base import BatchEncoding, MobileBertTokenizerBase, Piece

__all__ = ["MobileBertTokenizer", "BatchEncoding", "BasicTokenizer", "WordpieceTokenizer"]

Char = Tuple[str, int, int]  # (character, start, end) in the original text
MAX_CHARS_PER_WORD = 100


def is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False  # whitespace, not control, for BERT
    return unicodedata.category(ch).startswith("C")


def is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # All non-letter/number ASCII ($, ^, `...) counts as punctuation, as in BERT.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_chinese_char(cp: int) -> bool:
    """CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana, which are split by spaces)."""
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _nfc(chars: List[Char]) -> List[Char]:
    """NFC with alignment: a character that composes with the previous one joins its group;
    every character of a group's normal form spans the whole group."""
    groups: List[List[Char]] = []
    for c in chars:
        if groups and (unicodedata.combining(c[0]) or _composes(groups[-1][-1][0], c[0])):
            groups[-1].append(c)
        else:
            groups.append([c])
    out = []
    for g in groups:
        text = "".join(c[0] for c in g)
        start, end = g[0][1], g[-1][2]
        if len(g) == 1 and unicodedata.is_normalized("NFC", text):
            out.append(g[0])
        else:
            out.extend((ch, start, end) for ch in unicodedata.normalize("NFC", text))
    return out


def _composes(a: str, b: str) -> bool:
    return unicodedata.normalize("NFC", a + b) != unicodedata.normalize("NFC", a) + unicodedata.normalize("NFC", b)


class BasicTokenizer:
    """Text -> words (lists of aligned characters): clean-up, CJK, case, accents, punctuation."""

    def __init__(self, do_lower_case=True, strip_accents=None, tokenize_chinese_chars=True):
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars

    def words(self, text: str, base: int = 0) -> List[List[Char]]:
        chars: List[Char] = []
        for i, ch in enumerate(text):
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or is_control(ch):
                continue
            if is_whitespace(ch):
                chars.append((" ", base + i, base + i + 1))
            elif self.tokenize_chinese_chars and is_chinese_char(cp):
                chars.extend([(" ", -1, -1), (ch, base + i, base + i + 1), (" ", -1, -1)])
            else:
                chars.append((ch, base + i, base + i + 1))
        strip = self.strip_accents if not self.do_lower_case else self.strip_accents is not False
        if not strip:
            # BERT composes (NFC) the text; when accents are stripped (NFD, marks dropped) composing
            # first changes nothing but the offsets, which then follow the base character alone.
            chars = _nfc(chars)
        words: List[List[Char]] = []
        for token in _split(chars, lambda c: c[0].isspace()):  # str.split() as BERT: \u2028 too
            if self.do_lower_case:
                token = _lower(token)
            if strip:
                token = _strip_accents(token)
            words.extend(_split_punctuation(token))
        return [w for w in words if w]

    def tokenize(self, text: str) -> List[str]:
        return ["".join(c[0] for c in w) for w in self.words(text)]


def _split(chars: List[Char], is_sep) -> List[List[Char]]:
    out, cur = [], []
    for c in chars:
        if is_sep(c):
            if cur:
                out.append(cur)
            cur = []
        else:
            cur.append(c)
    if cur:
        out.append(cur)
    return out


def _lower(token: List[Char]) -> List[Char]:
    # Character by character, as both reference tokenizers do (so a final capital sigma gives "σ", not "ς").
    return [(low, s, e) for ch, s, e in token for low in ch.lower()]


def _strip_accents(token: List[Char]) -> List[Char]:
    return [(d, s, e) for ch, s, e in token for d in unicodedata.normalize("NFD", ch) if unicodedata.category(d) != "Mn"]


def _split_punctuation(token: List[Char]) -> List[List[Char]]:
    out, cur = [], []
    for c in token:
        if is_punctuation(c[0]):
            if cur:
                out.append(cur)
            out.append([c])
            cur = []
        else:
            cur.append(c)
    if cur:
        out.append(cur)
    return out


class WordpieceTokenizer:
    """A word -> word pieces by greedy longest match; [UNK] when it cannot be covered."""

    def __init__(self, vocab, unk_token="[UNK]", max_input_chars_per_word=MAX_CHARS_PER_WORD):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def pieces(self, word: str) -> List[Tuple[str, int, int]]:
        """-> [(piece, first char, end char)] within the word."""
        n = len(word)
        if n > self.max_input_chars_per_word:
            return [(self.unk_token, 0, n)]
        out, start = [], 0
        while start < n:
            end = n
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:
                return [(self.unk_token, 0, n)]
            out.append((piece, start, end))
            start = end
        return out

    def tokenize(self, word: str) -> List[str]:
        return [p for p, _, _ in self.pieces(word)]


class MobileBertTokenizer(MobileBertTokenizerBase):
    """MobileBERT's WordPiece tokenizer in pure Python: the ids of transformers' slow MobileBertTokenizer,
    and the offsets and word ids of the fast one."""

    def __init__(self, vocab_file=None, **kwargs):
        self._split_re = None  # the added tokens as one pattern, rebuilt when they change
        super().__init__(vocab_file, **kwargs)
        self.basic_tokenizer = BasicTokenizer(self.do_lower_case, self.strip_accents, self.tokenize_chinese_chars)
        self.wordpiece_tokenizer = WordpieceTokenizer(self.vocab, self.unk_token)

    def _register(self, index, token) -> None:
        super()._register(index, token)
        self._split_re = None

    def _add_tokens(self, tokens, special_tokens: bool = False) -> int:
        """transformers' slow rules: a str already added is skipped; with do_lower_case a normalized non-special
        token is lower-cased; a token of the vocabulary keeps its id and is not counted; a new special token
        joins additional_special_tokens."""
        vocab = self.get_vocab()
        added = 0
        for token in tokens:
            if str(getattr(token, "content", token)) == "":
                continue
            if isinstance(token, str):
                if self._added_id(token) is not None:
                    continue
                special = special_tokens or token in self.all_special_tokens
                token = AddedToken(token, normalized=not special, special=special)
            else:
                token = as_added_token(token, special=special_tokens)
                token.special = token.special or special_tokens
            if not token.special and token.normalized and self.do_lower_case:
                token.content = token.content.lower()
            if token.content not in vocab:
                vocab[token.content] = len(vocab)
                added += 1
            if token.special and token.content not in self.all_special_tokens:
                self._additional.append(token.content)
            self._register(vocab[token.content], token)
        return added

    def _encode_texts(self, texts: List[str]) -> List[Piece]:
        return [self._encode_one(t) for t in texts]

    def _encode_one(self, text: str) -> Piece:
        """As transformers' slow tokenizer: with do_lower_case the text is lower-cased except where it spells a
        special token or a normalized added token; added tokens are split off (longest first); the rest goes
        through basic tokenization and WordPiece. Offsets point into the original text."""
        view, origin = self._lowered(text) if self.do_lower_case else (text, None)

        def span(start, end):  # view positions -> original characters
            return (origin[start], origin[end - 1] + 1) if origin is not None else (start, end)

        ids, offsets, words = [], [], []
        word_index = 0
        for start, end, is_added in self._segments(view):
            if is_added:  # an added token stays one token (and one word)
                ids.append(self._added_id(view[start:end]))
                offsets.append(span(start, end))
                words.append(word_index)
                word_index += 1
                continue
            for word in self.basic_tokenizer.words(view[start:end], base=start):
                string = "".join(c[0] for c in word)
                for piece, s, e in self.wordpiece_tokenizer.pieces(string):
                    ids.append(self.vocab[piece])
                    offsets.append(span(word[s][1], word[e - 1][2]))
                    words.append(word_index)
                word_index += 1
        return ids, offsets, words

    def _lowered(self, text: str) -> Tuple[str, List[int]]:
        """The text lower-cased character by character, special tokens and normalized added tokens spelled in it
        kept as written (transformers' slow tokenize does this before splitting off added tokens); with the
        original position of every character of the result."""
        kept = [re.escape(t) for t in self.all_special_tokens]
        kept += [re.escape(t.content) for t in self._added.values() if not t.special and t.normalized]
        protected = re.compile("|".join(kept)) if kept else None
        out, origin, i = [], [], 0
        while i < len(text):
            match = protected.match(text, i) if protected else None
            if match:
                out.append(match.group())
                origin.extend(range(i, match.end()))
                i = match.end()
            else:
                low = text[i].lower()
                out.append(low)
                origin.extend([i] * len(low))
                i += 1
        return "".join(out), origin

    def _segments(self, text: str) -> List[Tuple[int, int, bool]]:
        """(start, end, is added token) pieces of the text: added tokens matched leftmost-longest, then
        transformers' lstrip / rstrip / single_word rules applied to their neighbours."""
        if self._split_re is None:
            contents = sorted({t.content for t in self._added.values()}, key=len, reverse=True)
            self._split_re = re.compile("|".join(re.escape(c) for c in contents)) if contents else False
        segments, pos = [], 0
        for match in self._split_re.finditer(text) if self._split_re else ():
            if match.start() > pos:
                segments.append([pos, match.start(), False])
            segments.append([match.start(), match.end(), True])
            pos = match.end()
        if pos < len(text):
            segments.append([pos, len(text), False])
        for i, seg in enumerate(segments):
            if not seg[2]:
                continue
            token = self._added[self._added_id(text[seg[0]:seg[1]])]
            left = segments[i - 1] if i > 0 else None
            right = segments[i + 1] if i + 1 < len(segments) else None
            left_text = text[left[0]:left[1]] if left else ""
            right_text = text[right[0]:right[1]] if right else ""
            if token.rstrip and right_text:
                right[0] += len(right_text) - len(right_text.lstrip())
            if token.lstrip and left_text:
                left[1] -= len(left_text) - len(left_text.rstrip())
            if token.single_word and left_text and left_text[-1] != " ":  # glued to the word before: plain text
                left[1], left[2], seg[0] = seg[1], False, seg[1]
            elif token.single_word and right_text and right_text[0] != " ":
                right[0], right[2], seg[1] = seg[0], False, seg[0]
        return [(s, e, added) for s, e, added in segments if e > s]
