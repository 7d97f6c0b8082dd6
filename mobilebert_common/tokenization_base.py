"""What MobileBertTokenizer and MobileBertTokenizerFast share: the whole user-facing API.

A subclass only turns texts into word pieces (``_encode_texts``: ids, character offsets, word
indices, no special tokens). Everything else is shared: special tokens, ids <-> tokens, decoding
(here); pairs, batches, truncation, padding (tokenization_rows); the output and tensors
(tokenization_batch); the files that ``from_pretrained`` reads and ``save_pretrained`` writes
(tokenization_files). The names other modules import from here stay importable from here.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mobilebert_common.hub import HUB_KWARGS
from mobilebert_common.tokenization_batch import TENSOR_TYPES, BatchEncoding, check_text, is_int, to_ids, to_list, to_tensor
from mobilebert_common.tokenization_files import (
    DEFAULT_SPECIAL_TOKENS,
    INIT_KEYS,
    SPECIAL_TOKEN_NAMES,
    load_vocab,
    read_pretrained,
    read_tokenizer_json,
    write_pretrained,
)
from mobilebert_common.tokenization_rows import (
    PADDING_VALUES,
    TRUNCATION_VALUES,
    Piece,
    check_options,
    pad_rows,
    sample_rows,
    split_inputs,
)

__all__ = [
    "MobileBertTokenizerBase", "BatchEncoding", "Piece", "load_vocab", "read_tokenizer_json", "to_tensor",
    "clean_up_tokenization", "SPECIAL_TOKEN_NAMES", "DEFAULT_SPECIAL_TOKENS", "INIT_KEYS", "PADDING_VALUES",
    "TRUNCATION_VALUES", "TENSOR_TYPES",
]


class MobileBertTokenizerBase:
    """The API both tokenizers share. Subclasses implement ``_encode_texts``."""

    vocab_files_names = {"vocab_file": "vocab.txt"}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    padding_side = "right"  # MobileBERT uses absolute positions; the trigram embedding mixes neighbours
    truncation_side = "right"
    is_fast = False

    def __init__(
        self,
        vocab_file: Optional[str] = None,
        do_lower_case: bool = True,
        strip_accents: Optional[bool] = None,
        tokenize_chinese_chars: bool = True,
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = True,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        vocab: Optional[Dict[str, int]] = None,
    ):
        if vocab is None:
            if vocab_file is None:
                raise ValueError("pass vocab_file= (a vocab.txt) or use from_pretrained(dir_or_repo_id)")
            vocab = load_vocab(os.fspath(vocab_file))
        self.vocab: Dict[str, int] = dict(vocab)
        self.ids_to_tokens: Dict[int, str] = {i: t for t, i in self.vocab.items()}
        for name, value in (("do_lower_case", do_lower_case), ("tokenize_chinese_chars", tokenize_chinese_chars),
                            ("clean_up_tokenization_spaces", clean_up_tokenization_spaces)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        if strip_accents is not None and not isinstance(strip_accents, (bool, np.bool_)):
            # True / False strip or keep accents; None (the default) strips them exactly when lower-casing
            raise ValueError(f"strip_accents must be None (follow do_lower_case), True or False, got {strip_accents!r}")
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = None if strip_accents is None else bool(strip_accents)
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.model_max_length = _checked_max_length(model_max_length)
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        self.special_tokens = {"unk_token": unk_token, "sep_token": sep_token, "pad_token": pad_token, "cls_token": cls_token, "mask_token": mask_token}
        missing = [t for t in self.special_tokens.values() if t not in self.vocab]
        if missing:
            where = vocab_file or "the vocabulary"
            raise ValueError(f"{where} lacks the special token(s) {missing}; a MobileBERT vocabulary holds {list(self.special_tokens.values())}")

    # ---- special tokens -------------------------------------------------------------------
    unk_token = property(lambda self: self.special_tokens["unk_token"])
    sep_token = property(lambda self: self.special_tokens["sep_token"])
    pad_token = property(lambda self: self.special_tokens["pad_token"])
    cls_token = property(lambda self: self.special_tokens["cls_token"])
    mask_token = property(lambda self: self.special_tokens["mask_token"])
    unk_token_id = property(lambda self: self.vocab[self.unk_token])
    sep_token_id = property(lambda self: self.vocab[self.sep_token])
    pad_token_id = property(lambda self: self.vocab[self.pad_token])
    cls_token_id = property(lambda self: self.vocab[self.cls_token])
    mask_token_id = property(lambda self: self.vocab[self.mask_token])

    @property
    def all_special_tokens(self) -> List[str]:
        return [self.special_tokens[n] for n in SPECIAL_TOKEN_NAMES]

    @property
    def all_special_ids(self) -> List[int]:
        return [self.vocab[t] for t in self.all_special_tokens]

    @property
    def special_tokens_map(self) -> Dict[str, str]:
        return dict(self.special_tokens)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> Dict[str, int]:
        return dict(self.vocab)

    def __repr__(self):
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
            f"strip_accents={self.strip_accents}, model_max_length={self.model_max_length})"
        )

    # ---- what subclasses provide --------------------------------------------------------------
    def _encode_texts(self, texts: List[str]) -> List[Piece]:
        raise NotImplementedError

    # ---- texts -> word pieces -----------------------------------------------------------------
    def tokenize(self, text: str) -> List[str]:
        """Text -> word pieces (no [CLS]/[SEP])."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        return self.convert_ids_to_tokens(self._encode([text])[0][0])

    def _encode(self, texts: List[str]) -> List[Piece]:
        """_encode_texts, with lone surrogates ("\ud800": half of a UTF-16 pair, no character) read as an
        unknown character: the word holding one becomes one [UNK], as a word with a character outside the
        vocabulary does, in both tokenizers (the `tokenizers` library cannot even take such a string)."""
        clean = [_SURROGATE.sub(_SURROGATE_STANDIN, t) for t in texts]
        pieces = self._encode_texts(clean)
        return [p if c == t else _unknown_words(p, t, self.unk_token_id) for p, c, t in zip(pieces, clean, texts)]

    # ---- ids <-> tokens -----------------------------------------------------------------------
    def convert_tokens_to_ids(self, tokens):
        """A token or a list of tokens -> id(s); unknown tokens give unk_token_id."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """An id or a list of ids -> token(s). Ids outside the vocabulary raise ValueError."""
        if is_int(ids):
            return self._id_to_token(int(ids))
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._id_to_token(i) for i in to_ids(ids, "ids") if i not in special]

    def _id_to_token(self, i: int) -> str:
        if i not in self.ids_to_tokens:
            raise ValueError(f"token id {i} is outside the vocabulary (ids 0..{self.vocab_size - 1})")
        return self.ids_to_tokens[i]

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Join word pieces: "##" continuations glue to the previous piece."""
        return " ".join(tokens).replace(" ##", "").strip()

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, **kwargs) -> List[int]:
        """Ids of one text (or pair), special tokens included by default."""
        if not isinstance(text, str):
            check_text(text, "text")
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: Optional[bool] = None) -> str:
        """Ids (or one id) -> text: pieces joined, "##" glued, optional clean-up of spaces before punctuation."""
        ids = to_ids(token_ids)
        text = self.convert_tokens_to_string(self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens))
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean else text

    def batch_decode(self, sequences, **kwargs) -> List[str]:
        return [self.decode(s, **kwargs) for s in to_list(sequences)]

    # ---- the main call ------------------------------------------------------------------------
    def __call__(
        self,
        text,
        text_pair=None,
        add_special_tokens: bool = True,
        padding=False,
        truncation=None,
        max_length: Optional[int] = None,
        stride: int = 0,
        pad_to_multiple_of: Optional[int] = None,
        return_tensors: Optional[str] = None,
        return_token_type_ids: Optional[bool] = None,
        return_attention_mask: Optional[bool] = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Encode a text, a pair (``text_pair``), a batch of texts or a batch of pairs (a list of
        (text, text_pair) tuples, or two lists).

        padding: False | True / "longest" (to the batch's longest row) | "max_length" (needs max_length).
        truncation: False | True / "longest_first" | "only_first" | "only_second"; max_length defaults
            to model_max_length. With return_overflowing_tokens, a text too long for one row is cut
            into windows that overlap by ``stride`` tokens, and overflow_to_sample_mapping names the
            sample each row came from.
        return_tensors: None (lists; one text gives flat lists) | "np" | "pt" | "tf" (int64, (B, T)).
        The result is a BatchEncoding: input_ids, token_type_ids, attention_mask, and on request
        special_tokens_mask, offset_mapping ((start, end) characters; (0, 0) for special tokens),
        length; word_ids(i) and sequence_ids(i) per row.
        """
        padding, truncation, max_length = check_options(
            padding, truncation, max_length, stride, pad_to_multiple_of, return_tensors, self.model_max_length
        )
        firsts, seconds, batched = split_inputs(text, text_pair)
        unique = list(dict.fromkeys(firsts + [s for s in seconds if s is not None]))
        encoded = dict(zip(unique, self._encode(unique)))

        rows, mapping = [], []
        for sample, (a, b) in enumerate(zip(firsts, seconds)):
            a_enc = encoded[a]
            b_enc = None if b is None else encoded[b]
            for row in sample_rows(a_enc, b_enc, self.cls_token_id, self.sep_token_id, add_special_tokens, truncation,
                                   max_length, stride, return_overflowing_tokens):
                rows.append(row)
                mapping.append(sample)

        if verbose and truncation is False:
            longest = max((len(r["input_ids"]) for r in rows), default=0)
            if longest > self.model_max_length:
                warnings.warn(
                    f"Token indices sequence length is longer than the specified maximum sequence length for this "
                    f"model ({longest} > {self.model_max_length}). Running this sequence through the model will result "
                    f"in indexing errors; pass truncation=True to cut it",
                    UserWarning,
                    stacklevel=2,
                )
        pad_rows(rows, padding, max_length, pad_to_multiple_of, self.pad_token_id)

        keys = ["input_ids"]
        if return_token_type_ids is not False:
            keys.append("token_type_ids")
        if return_attention_mask is not False:
            keys.append("attention_mask")
        if return_special_tokens_mask:
            keys.append("special_tokens_mask")
        if return_offsets_mapping:
            keys.append("offset_mapping")
        data = {k: [r[k] for r in rows] for k in keys}
        if return_length:
            data["length"] = [len(r["input_ids"]) for r in rows]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = mapping
        words = [r["word_ids"] for r in rows]
        sequences = [r["sequence_ids"] for r in rows]
        if not batched and not return_overflowing_tokens and return_tensors is None:
            data = {k: v[0] for k, v in data.items()}  # one text: flat lists, as users know them
        return BatchEncoding(data, words, sequences, batched).convert_to_tensors(return_tensors)

    def pad(self, encoded_inputs, padding=True, max_length: Optional[int] = None, pad_to_multiple_of: Optional[int] = None, return_tensors: Optional[str] = None) -> BatchEncoding:
        """Pad rows encoded earlier (a list of dicts, or a dict of lists) as __call__ would have."""
        if isinstance(encoded_inputs, dict):
            keys = list(encoded_inputs)
            columns = [to_list(encoded_inputs[k]) for k in keys]
            if columns and columns[0] and not isinstance(columns[0][0], list):
                columns = [[c] for c in columns]  # one row
            encoded_inputs = [dict(zip(keys, values)) for values in zip(*columns)]
        if not isinstance(encoded_inputs, (list, tuple)) or not encoded_inputs or not all(isinstance(r, dict) and "input_ids" in r for r in encoded_inputs):
            raise ValueError("pad takes a non-empty list of encodings (dicts with input_ids) or a dict of lists")
        padding, _, max_length = check_options(padding, False, max_length, 0, pad_to_multiple_of, return_tensors, self.model_max_length)
        rows = []
        for r in encoded_inputs:
            r = {k: to_list(v) for k, v in r.items()}
            n = len(r["input_ids"])
            r.setdefault("attention_mask", [1] * n)
            extra = {"word_ids": [None] * n, "sequence_ids": [None] * n}
            rows.append({**extra, **r})
        keys = list(dict.fromkeys(k for r in rows for k in r if k not in ("word_ids", "sequence_ids")))
        unknown = [k for k in keys if k not in ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask", "offset_mapping")]
        if unknown:
            raise ValueError(f"pad cannot pad {unknown}; it pads input_ids, token_type_ids, attention_mask, special_tokens_mask, offset_mapping")
        for k in keys:
            if any(k not in r for r in rows):
                raise ValueError(f"some rows lack {k!r}; every row needs the same keys")
        pad_rows(rows, padding, max_length, pad_to_multiple_of, self.pad_token_id)
        data = {k: [r[k] for r in rows] for k in keys}
        return BatchEncoding(data, batched=True).convert_to_tensors(return_tensors)

    # ---- files --------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, dir_or_repo_id, *init_inputs, **kwargs):
        """Read vocab.txt (or tokenizer.json's vocabulary), tokenizer_config.json and
        special_tokens_map.json from a directory or a hub repo id. Keyword arguments override the
        saved settings (do_lower_case=, model_max_length=...); hub ones (revision=, cache_dir=,
        token=, local_files_only=, force_download=) go to the download."""
        if init_inputs:
            raise TypeError(f"{cls.__name__}.from_pretrained takes one positional argument (a directory or repo id)")
        hub = {k: kwargs.pop(k) for k in HUB_KWARGS if k in kwargs}
        for k in ("trust_remote_code", "use_fast", "_from_pipeline"):
            kwargs.pop(k, None)
        allowed = set(INIT_KEYS) | set(SPECIAL_TOKEN_NAMES)
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise TypeError(f"{cls.__name__}.from_pretrained got unknown keyword(s) {unknown}; allowed: {sorted(allowed | set(HUB_KWARGS))}")
        vocab_path, vocab, settings = read_pretrained(os.fspath(dir_or_repo_id), hub)
        settings.update(kwargs)
        return cls(vocab_file=vocab_path, vocab=vocab, **settings)

    def save_pretrained(self, save_directory, **kwargs) -> Tuple[str, ...]:
        """Write vocab.txt, tokenizer_config.json, special_tokens_map.json (and tokenizer.json for
        the fast tokenizer) in the layout that transformers' AutoTokenizer reads back."""
        save_directory = os.fspath(save_directory)
        config = {
            "tokenizer_class": "MobileBertTokenizer",
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            **self.special_tokens,
        }
        written = write_pretrained(save_directory, self.vocab, config, self.special_tokens)
        written.extend(self._save_extra(save_directory))
        return tuple(written)

    def _save_extra(self, save_directory) -> List[str]:
        return []


_SURROGATE = re.compile("[\ud800-\udfff]")
# Encoded in a lone surrogate's place (same length, so offsets hold): a letter with no case, no decomposition,
# not punctuation, not CJK, so it stays inside its word in both tokenizers; _unknown_words then makes that word [UNK].
_SURROGATE_STANDIN = "\ua4d0"  # LISU LETTER BA


def _unknown_words(piece: Piece, text: str, unk_id: int) -> Piece:
    """The words of ``piece`` that cover a lone surrogate of ``text`` -> one [UNK] each, spanning the word."""
    ids, offsets, words = piece
    bad = {w for (start, end), w in zip(offsets, words) if _SURROGATE.search(text, start, end)}
    out: Piece = ([], [], [])
    for i, (start, end), w in zip(ids, offsets, words):
        if w in bad and out[2] and out[2][-1] == w:  # a later piece of the word: widen its [UNK]
            out[1][-1] = (out[1][-1][0], end)
            continue
        out[0].append(unk_id if w in bad else i)
        out[1].append((start, end))
        out[2].append(w)
    return out


def _checked_max_length(value) -> int:
    """model_max_length: a positive integer (an integral float, as some JSON writers give, too)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if not is_int(value) or value < 1:
        raise ValueError(f"model_max_length must be a positive integer (the model's longest input), got {value!r}")
    return int(value)


def clean_up_tokenization(text: str) -> str:
    """Remove the spaces that joining word pieces puts before punctuation and contractions."""
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(before, after)
    return text
