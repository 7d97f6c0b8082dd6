"""What MobileBertTokenizer and MobileBertTokenizerFast share: the whole user-facing API.

A subclass turns texts into word pieces (``_encode_texts``: ids, character offsets, word indices,
no special tokens) and adds tokens (``_add_tokens``), each as its transformers counterpart does.
Everything else is shared: special and added tokens (tokenization_added); pairs, batches,
truncation, padding (tokenization_rows); the output and tensors (tokenization_batch); the files
that ``from_pretrained`` reads and ``save_pretrained`` writes (tokenization_files).

Where transformers' slow and fast MobileBERT tokenizers behave differently, each of ours follows
its counterpart (``is_fast`` selects): overflow rows (fast) or ``overflowing_tokens`` (slow), which
text of a pair keeps an odd token under "longest_first", the ``length`` of padded rows, the count
``add_tokens`` returns and the case of added tokens. Left padding (``padding_side="left"``) is
produced exactly as transformers does; this suite's models take right padding unless the caller
passes ``position_ids`` that follow the real tokens (MobileBERT's positions are absolute).
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mobilebert_common.hub import HUB_KWARGS
from mobilebert_common.tokenization_added import NAMED_SPECIAL_TOKENS, AddedToken, AddedTokensMixin, as_added_token
from mobilebert_common.tokenization_batch import TENSOR_TYPES, BatchEncoding, as_lists, check_text, is_int, to_ids, to_list, to_tensor
from mobilebert_common.tokenization_files import (
    DEFAULT_SPECIAL_TOKENS,
    INIT_KEYS,
    SPECIAL_TOKEN_NAMES,
    check_added_ids,
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
    check_side,
    join_words,
    pad_rows,
    sample_rows,
    split_inputs,
)

__all__ = [
    "MobileBertTokenizerBase", "BatchEncoding", "Piece", "AddedToken", "load_vocab", "read_tokenizer_json", "to_tensor",
    "clean_up_tokenization", "SPECIAL_TOKEN_NAMES", "DEFAULT_SPECIAL_TOKENS", "INIT_KEYS", "PADDING_VALUES",
    "TRUNCATION_VALUES", "TENSOR_TYPES",
]

# What pad() pads (others are kept as they are); offset_mapping too, as the fast tokenizers pad it.
_PADDED_KEYS = ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask", "offset_mapping")
# from_pretrained keywords transformers' loaders pass along that say nothing about the tokenizer.
_IGNORED_KWARGS = ("trust_remote_code", "use_fast", "_from_pipeline", "_from_auto", "_commit_hash")


class MobileBertTokenizerBase(AddedTokensMixin):
    """The API both tokenizers share. Subclasses implement ``_encode_texts`` and ``_add_tokens``."""

    vocab_files_names = {"vocab_file": "vocab.txt"}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    padding_side = "right"  # MobileBERT uses absolute positions; the trigram embedding mixes neighbours
    truncation_side = "right"
    pad_token_type_id = 0
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
        bos_token: Optional[str] = None,
        eos_token: Optional[str] = None,
        additional_special_tokens: Optional[Sequence] = None,
        padding_side: str = "right",
        truncation_side: str = "right",
        model_input_names: Optional[List[str]] = None,
        verbose: bool = False,
        vocab: Optional[Dict[str, int]] = None,
        added_tokens_decoder: Optional[Dict[int, object]] = None,
    ):
        if vocab is None:
            if vocab_file is None:
                raise ValueError("pass vocab_file= (a vocab.txt) or use from_pretrained(dir_or_repo_id)")
            vocab = load_vocab(os.fspath(vocab_file))
        self.vocab: Dict[str, int] = dict(vocab)
        self.ids_to_tokens: Dict[int, str] = {i: t for t, i in self.vocab.items()}
        for name, value in (("do_lower_case", do_lower_case), ("tokenize_chinese_chars", tokenize_chinese_chars),
                            ("clean_up_tokenization_spaces", clean_up_tokenization_spaces), ("verbose", verbose)):
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
        self.padding_side = check_side(padding_side, "padding_side")
        self.truncation_side = check_side(truncation_side, "truncation_side")
        self.verbose = bool(verbose)
        if model_input_names is not None:
            self.model_input_names = list(model_input_names)

        where = vocab_file or "the vocabulary"
        named = {"unk_token": unk_token, "sep_token": sep_token, "pad_token": pad_token, "cls_token": cls_token,
                 "mask_token": mask_token, "bos_token": bos_token, "eos_token": eos_token}
        self._init_special_tokens({k: None if v is None else as_added_token(v, True, k).content for k, v in named.items()})
        saved = _checked_added_tokens(added_tokens_decoder or {}, self.vocab)
        missing = [t for t in (self._special[n] for n in SPECIAL_TOKEN_NAMES)
                   if t is not None and t not in self.vocab and t not in {a.content for a in saved.values()}]
        if missing:
            raise ValueError(f"{where} lacks the special token(s) {missing}; a MobileBERT vocabulary holds "
                             f"{list(DEFAULT_SPECIAL_TOKENS.values())}")
        self._start_registry()
        self._restore_added_tokens(saved)
        # additional special tokens and bos/eos: registered (added when new), as transformers' constructor does
        if additional_special_tokens:
            self.additional_special_tokens = additional_special_tokens
        extra = [self._special[n] for n in ("bos_token", "eos_token") if self._special[n] is not None] + self._additional
        new = [t for t in extra if self._added_id(t) is None]
        if new:
            self._add_tokens([AddedToken(t, normalized=False, special=True) for t in new], special_tokens=True)

    # ---- what subclasses provide --------------------------------------------------------------
    def _encode_texts(self, texts: List[str]) -> List[Piece]:
        raise NotImplementedError

    def _add_tokens(self, tokens: list, special_tokens: bool = False) -> int:
        raise NotImplementedError

    def _start_registry(self) -> None:
        """Register the named special tokens of the vocabulary (ids from it), as transformers' registry starts."""
        for name in NAMED_SPECIAL_TOKENS:
            token = self._special[name]
            if token is not None and token in self.vocab:
                self._register(self.vocab[token], AddedToken(token, normalized=False, special=True))

    def _restore_added_tokens(self, saved: Dict[int, AddedToken]) -> None:
        """The added tokens read from a saved tokenizer, with their saved ids (checked by _checked_added_tokens)."""
        for index, token in sorted(saved.items()):
            self._register(index, token)

    def _template_ids(self) -> Tuple[Optional[int], Optional[int]]:
        """The ids of [CLS] and [SEP] that frame every row."""
        return self.cls_token_id, self.sep_token_id

    # ---- misc attributes -------------------------------------------------------------------------
    @property
    def max_len_single_sentence(self) -> int:
        return self.model_max_length - self.num_special_tokens_to_add(pair=False)

    @property
    def max_len_sentences_pair(self) -> int:
        return self.model_max_length - self.num_special_tokens_to_add(pair=True)

    def __repr__(self):
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, added_tokens={len(self) - self.vocab_size}, "
            f"do_lower_case={self.do_lower_case}, strip_accents={self.strip_accents}, model_max_length={self.model_max_length}, "
            f"padding_side={self.padding_side!r}, truncation_side={self.truncation_side!r})"
        )

    # ---- texts -> word pieces -----------------------------------------------------------------
    def tokenize(self, text: str) -> List[str]:
        """Text -> word pieces (no [CLS]/[SEP]); added tokens stay whole."""
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
    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """An id or a list of ids -> token(s). Ids outside the vocabulary and the added tokens raise ValueError."""
        if is_int(ids):
            return self._id_to_token(int(ids))
        skipped = self._skipped_ids() if skip_special_tokens else set()
        return [self._id_to_token(i) for i in to_ids(ids, "ids") if i not in skipped]

    def _skipped_ids(self) -> set:
        """Ids that skip_special_tokens drops: the special tokens; in the fast class also every added token
        registered as special (the `tokenizers` library drops those even when no longer listed as special)."""
        skipped = set(self.all_special_ids)
        if self.is_fast:
            skipped |= {i for i, t in self._added.items() if t.special}
        return skipped

    def _id_to_token(self, i: int) -> str:
        if i in self._added:
            return self._added[i].content
        if i not in self.ids_to_tokens:
            raise ValueError(f"token id {i} is outside the vocabulary (ids 0..{len(self) - 1})")
        return self.ids_to_tokens[i]

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Join word pieces: "##" continuations glue to the previous piece."""
        return " ".join(tokens).replace(" ##", "").strip()

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, **kwargs) -> List[int]:
        """Ids of one text (or pair), special tokens included by default."""
        if not isinstance(text, str) and not kwargs.get("is_split_into_words"):
            check_text(text, "text")
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: Optional[bool] = None,
               spaces_between_special_tokens: bool = True) -> str:
        """Ids (or one id) -> text, as transformers' slow tokenizer decodes: word pieces joined ("##" glued),
        each added token a piece of text of its own, optional clean-up of spaces before punctuation."""
        tokens = self.convert_ids_to_tokens(to_ids(token_ids), skip_special_tokens=skip_special_tokens)
        special = set(self.all_special_tokens)
        added = {t.content for t in self._added.values()} - special  # joined as they are, not as word pieces
        added |= {t for t in self._additional if self.convert_tokens_to_ids(t) >= self.vocab_size}
        texts, pieces = [], []
        for token in tokens:
            if token in added:
                if pieces:
                    texts.append(self.convert_tokens_to_string(pieces))
                    pieces = []
                texts.append(token)
            else:
                pieces.append(token)
        if pieces:
            texts.append(self.convert_tokens_to_string(pieces))
        text = (" " if spaces_between_special_tokens else "").join(t for t in texts if t)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean else text

    def batch_decode(self, sequences, **kwargs) -> List[str]:
        return [self.decode(s, **kwargs) for s in to_list(sequences)]

    # ---- special tokens around ids --------------------------------------------------------------
    def build_inputs_with_special_tokens(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None) -> List[int]:
        """[CLS] A [SEP] or [CLS] A [SEP] B [SEP]."""
        cls, sep = self._template_ids()
        out = [cls] + to_ids(token_ids_0, "token_ids_0") + [sep]
        return out if token_ids_1 is None else out + to_ids(token_ids_1, "token_ids_1") + [sep]

    def get_special_tokens_mask(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None,
                                already_has_special_tokens: bool = False) -> List[int]:
        """1 where build_inputs_with_special_tokens puts [CLS]/[SEP]; with already_has_special_tokens, 1 for every
        special token among the ids (as the data collators ask it)."""
        ids = to_ids(token_ids_0, "token_ids_0")
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("with already_has_special_tokens=True pass one sequence of ids (already holding its "
                                 "special tokens), not token_ids_1")
            special = set(self.all_special_ids)
            return [1 if i in special else 0 for i in ids]
        mask = [1] + [0] * len(ids) + [1]
        return mask if token_ids_1 is None else mask + [0] * len(to_ids(token_ids_1, "token_ids_1")) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None) -> List[int]:
        """0 for [CLS] A [SEP], 1 for B [SEP]."""
        first = [0] * (len(to_ids(token_ids_0, "token_ids_0")) + 2)
        return first if token_ids_1 is None else first + [1] * (len(to_ids(token_ids_1, "token_ids_1")) + 1)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 3 if pair else 2

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
        is_split_into_words: bool = False,
        pad_to_multiple_of: Optional[int] = None,
        padding_side: Optional[str] = None,
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
        (text, text_pair) tuples, or two lists); with ``is_split_into_words=True`` each text is a list of
        words (word_ids() then give the index of the word each token comes from).

        padding: False | True / "longest" (to the batch's longest row) | "max_length" (needs max_length),
            on ``padding_side`` (default: the tokenizer's, "right").
        truncation: False | True / "longest_first" | "only_first" | "only_second"; max_length defaults
            to model_max_length; tokens are cut on the tokenizer's ``truncation_side``. With
            return_overflowing_tokens the fast class gives every window of the cut text (overlapping by
            ``stride`` tokens) as a row, with overflow_to_sample_mapping; the slow class gives one row per
            sample and the cut tokens as overflowing_tokens (with num_truncated_tokens), as transformers'.
        return_tensors: None (lists; one text gives flat lists) | "np" | "pt" | "tf" (int64, (B, T)).
        The result is a BatchEncoding: input_ids, token_type_ids, attention_mask, and on request
        special_tokens_mask, offset_mapping ((start, end) characters; (0, 0) for special tokens),
        length; word_ids(i) and sequence_ids(i) per row.
        """
        options = check_options(padding, truncation, max_length, stride, pad_to_multiple_of, return_tensors,
                                self.model_max_length)
        firsts, seconds, batched = split_inputs(text, text_pair, is_split_into_words)
        pieces = self._encode_inputs(firsts + [s for s in seconds if s is not None])
        samples = [(pieces[a], None if b is None else pieces[b]) for a, b in zip(firsts, seconds)]
        return self._encode_samples(
            samples, batched, options, stride=stride, pad_to_multiple_of=pad_to_multiple_of, padding_side=padding_side,
            return_tensors=return_tensors, return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask, return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask, return_offsets_mapping=return_offsets_mapping,
            return_length=return_length, verbose=verbose, add_special_tokens=add_special_tokens, fast=self.is_fast,
        )

    def _encode_inputs(self, inputs: list) -> dict:
        """Texts (str) and pre-split texts (tuples of words) -> {input: Piece}, each distinct text encoded once."""
        texts = list(dict.fromkeys(t for i in inputs for t in ((i,) if isinstance(i, str) else i)))
        encoded = dict(zip(texts, self._encode(texts)))
        return {i: encoded[i] if isinstance(i, str) else join_words([encoded[w] for w in i]) for i in dict.fromkeys(inputs)}

    def encode_plus(self, text, text_pair=None, **kwargs) -> BatchEncoding:
        """One text (or pair; a list of words with is_split_into_words=True) -> BatchEncoding; see __call__."""
        if kwargs.get("is_split_into_words"):
            if not isinstance(text, (list, tuple)) or (text and isinstance(text[0], (list, tuple))):
                raise ValueError("encode_plus takes one text, here one list of words; use batch_encode_plus for a batch")
        elif not isinstance(text, str):
            raise ValueError(f"encode_plus takes one text (a str), got {type(text).__name__}; use batch_encode_plus for a batch")
        return self(text, text_pair, **kwargs)

    def batch_encode_plus(self, batch_text_or_text_pairs, **kwargs) -> BatchEncoding:
        """A list of texts or of (text, text_pair) pairs -> BatchEncoding; see __call__."""
        if not isinstance(batch_text_or_text_pairs, (list, tuple)):
            raise ValueError(f"batch_encode_plus takes a list of texts or (text, text_pair) pairs, got "
                             f"{type(batch_text_or_text_pairs).__name__}")
        if kwargs.get("is_split_into_words") and batch_text_or_text_pairs and isinstance(batch_text_or_text_pairs[0], str):
            raise ValueError("with is_split_into_words=True, batch_encode_plus takes a list of word lists")
        return self(list(batch_text_or_text_pairs), **kwargs)

    def prepare_for_model(
        self,
        ids: List[int],
        pair_ids: Optional[List[int]] = None,
        add_special_tokens: bool = True,
        padding=False,
        truncation=None,
        max_length: Optional[int] = None,
        stride: int = 0,
        pad_to_multiple_of: Optional[int] = None,
        padding_side: Optional[str] = None,
        return_tensors: Optional[str] = None,
        return_token_type_ids: Optional[bool] = None,
        return_attention_mask: Optional[bool] = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        prepend_batch_axis: bool = False,
    ) -> BatchEncoding:
        """Ids of a text (and of a pair) without special tokens -> one model row: special tokens, truncation,
        padding. As in transformers, both classes follow the slow class here (overflowing_tokens)."""
        if return_offsets_mapping:
            raise ValueError("prepare_for_model takes ids, which carry no character offsets; call the tokenizer on "
                             "the text with return_offsets_mapping=True instead")
        options = check_options(padding, truncation, max_length, stride, pad_to_multiple_of, return_tensors,
                                self.model_max_length)

        def piece(values, what):
            values = to_ids(values, what)
            return values, [(0, 0)] * len(values), [None] * len(values)

        sample = (piece(ids, "ids"), None if pair_ids is None else piece(pair_ids, "pair_ids"))
        return self._encode_samples(
            [sample], prepend_batch_axis, options, stride=stride, pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side, return_tensors=return_tensors, return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask, return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask, return_offsets_mapping=False,
            return_length=return_length, verbose=verbose, add_special_tokens=add_special_tokens, fast=False,
        )

    def _encode_samples(self, samples, batched, options, *, stride, pad_to_multiple_of, padding_side, return_tensors,
                        return_token_type_ids, return_attention_mask, return_overflowing_tokens,
                        return_special_tokens_mask, return_offsets_mapping, return_length, verbose,
                        add_special_tokens, fast) -> BatchEncoding:
        """Samples of (Piece, Piece or None) -> rows (special tokens, truncation, padding) -> BatchEncoding,
        with transformers' fast (``fast``) or slow semantics for overflow, lengths and single texts."""
        padding, truncation, max_length = options
        side = check_side(self.padding_side if padding_side is None else padding_side, "padding_side")
        cut_side = check_side(self.truncation_side, "truncation_side")
        cls_id, sep_id = self._template_ids()
        if add_special_tokens and None in (cls_id, sep_id):
            raise ValueError("this tokenizer has no cls_token / sep_token to frame rows with; set them "
                             "(tokenizer.cls_token = '[CLS]') or pass add_special_tokens=False")
        rows, mapping = [], []
        for index, (a, b) in enumerate(samples):
            for row in sample_rows(a, b, cls_id, sep_id, add_special_tokens, truncation, max_length, stride,
                                   return_overflowing_tokens, cut_side, fast):
                rows.append(row)
                mapping.append(index)

        if verbose and truncation is False:
            longest = max((len(r["input_ids"]) for r in rows), default=0)
            if longest > self.model_max_length:
                warnings.warn(
                    f"Token indices sequence length is longer than the specified maximum sequence length for this "
                    f"model ({longest} > {self.model_max_length}). Running this sequence through the model will result "
                    f"in indexing errors; pass truncation=True to cut it",
                    UserWarning,
                    stacklevel=3,
                )
        unpadded = [len(r["input_ids"]) for r in rows]
        pad_rows(rows, padding, max_length, pad_to_multiple_of, self.pad_token_id if padding else None, side)

        keys = ["input_ids"]
        if return_token_type_ids or (return_token_type_ids is None and "token_type_ids" in self.model_input_names):
            keys.append("token_type_ids")
        if return_attention_mask or (return_attention_mask is None and "attention_mask" in self.model_input_names):
            keys.append("attention_mask")
        if return_special_tokens_mask:
            keys.append("special_tokens_mask")
        if return_offsets_mapping:
            keys.append("offset_mapping")
        data = {}
        if return_overflowing_tokens and not fast:
            data = {k: [r[k] for r in rows] for k in ("overflowing_tokens", "num_truncated_tokens")}
        data.update({k: [r[k] for r in rows] for k in keys})
        if return_length:
            # the slow class measures a batch's rows before padding them, the fast class after
            data["length"] = unpadded if (batched and not fast) else [len(r["input_ids"]) for r in rows]
        if return_overflowing_tokens and fast:
            data["overflow_to_sample_mapping"] = mapping
        words = [r["word_ids"] for r in rows]
        sequences = [r["sequence_ids"] for r in rows]
        if not batched and return_tensors is None and not (return_overflowing_tokens and fast):
            # one text: flat lists, as users know them (the fast class keeps length a list of one, as transformers')
            data = {k: v if fast and not isinstance(v[0], list) else v[0] for k, v in data.items()}
        return BatchEncoding(data, words, sequences, batched).convert_to_tensors(return_tensors)

    def pad(self, encoded_inputs, padding=True, max_length: Optional[int] = None, pad_to_multiple_of: Optional[int] = None,
            padding_side: Optional[str] = None, return_attention_mask: Optional[bool] = None,
            return_tensors: Optional[str] = None, verbose: bool = True) -> BatchEncoding:
        """Pad encodings made earlier, as transformers' pad: a list of encodings (dicts with input_ids), a dict of
        lists, or one encoding (which stays one: flat lists, 1-D tensors). input_ids, token_type_ids,
        attention_mask, special_tokens_mask and offset_mapping are padded; other keys (labels...) are kept as
        they are. Tensor inputs give tensors of the same kind unless return_tensors says otherwise."""
        if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and all(isinstance(r, dict) for r in encoded_inputs):
            rows_in = list(encoded_inputs)
            keys = list(dict.fromkeys(k for r in rows_in for k in r))
            lacking = [k for k in keys if any(k not in r for r in rows_in)]
            if lacking:
                raise ValueError(f"some encodings lack {lacking[0]!r}; every encoding passed to pad needs the same keys")
            columns = {k: [r[k] for r in rows_in] for k in keys}
        elif isinstance(encoded_inputs, dict):
            columns = dict(encoded_inputs)
        else:
            raise ValueError("pad takes a non-empty list of encodings (dicts with input_ids), a dict of lists, or one encoding")
        if "input_ids" not in columns:
            raise ValueError(f"pad needs input_ids in the encodings, got keys {sorted(columns)}")
        if return_tensors is None:
            return_tensors = _tensor_type_of(columns["input_ids"])
        padding, _, max_length = check_options(padding, False, max_length, 0, pad_to_multiple_of, return_tensors, self.model_max_length)
        side = check_side(self.padding_side if padding_side is None else padding_side, "padding_side")
        columns = {k: as_lists(v) if k in _PADDED_KEYS else v for k, v in columns.items()}
        single = not columns["input_ids"] or not isinstance(columns["input_ids"][0], (list, tuple))
        if single:
            columns = {k: [v] for k, v in columns.items()}
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        if any(len(v) != len(rows) for v in columns.values()):
            raise ValueError(f"the keys passed to pad hold different numbers of rows: "
                             f"{ {k: len(v) for k, v in columns.items()} }")
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        for r in rows:
            if return_attention_mask:
                r.setdefault("attention_mask", [1] * len(r["input_ids"]))
            for key in _PADDED_KEYS:
                if key in r:
                    r[key] = list(r[key])
                    if len(r[key]) != len(r["input_ids"]):
                        raise ValueError(f"{key} has {len(r[key])} values for {len(r['input_ids'])} input_ids in one encoding")
        pad_rows(rows, padding, max_length, pad_to_multiple_of, self.pad_token_id if padding else None, side)
        data = {k: [r[k] for r in rows] for k in rows[0]} if rows else {}
        if single:
            data = {k: v[0] for k, v in data.items()}
        return BatchEncoding(data, batched=not single).convert_to_tensors(return_tensors)

    # ---- files --------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, dir_or_repo_id, *init_inputs, **kwargs):
        """Read vocab.txt (or tokenizer.json's vocabulary), tokenizer_config.json, special_tokens_map.json
        and the added tokens (tokenizer_config.json's added_tokens_decoder, added_tokens.json or tokenizer.json)
        from a directory or a hub repo id. Keyword arguments override the saved settings (do_lower_case=,
        model_max_length=, additional_special_tokens=, padding_side=...); hub ones (revision=, cache_dir=,
        token=, local_files_only=, force_download=) go to the download."""
        if init_inputs:
            raise TypeError(f"{cls.__name__}.from_pretrained takes one positional argument (a directory or repo id)")
        hub = {k: kwargs.pop(k) for k in HUB_KWARGS if k in kwargs}
        for k in _IGNORED_KWARGS:
            kwargs.pop(k, None)
        allowed = set(INIT_KEYS) | set(NAMED_SPECIAL_TOKENS)
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise TypeError(f"{cls.__name__}.from_pretrained got unknown keyword(s) {unknown}; allowed: {sorted(allowed | set(HUB_KWARGS))}")
        vocab_path, vocab, settings = read_pretrained(os.fspath(dir_or_repo_id), hub)
        settings.update(kwargs)
        return cls(vocab_file=vocab_path, vocab=vocab, **settings)

    def save_pretrained(self, save_directory, **kwargs) -> Tuple[str, ...]:
        """Write vocab.txt, tokenizer_config.json, special_tokens_map.json, added_tokens.json (when tokens were
        added) and, for the fast tokenizer, tokenizer.json, in the layout transformers writes and reads back."""
        save_directory = os.fspath(save_directory)
        config = {
            "tokenizer_class": "MobileBertTokenizer",
            "do_lower_case": self.do_lower_case,
            "do_basic_tokenize": True,
            "never_split": None,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            **{k: v for k, v in self._special.items() if v is not None},
            "extra_special_tokens": {},
            "added_tokens_decoder": {str(i): t.to_dict() for i, t in sorted(self._added.items())},
        }
        if self._additional:
            config["additional_special_tokens"] = list(self._additional)
        for side in ("padding_side", "truncation_side"):
            if getattr(self, side) != "right":
                config[side] = getattr(self, side)
        special_map = {k: v for k, v in self._special.items() if v is not None}
        if self._additional:
            registered = [self._added.get(self._added_id(t), AddedToken(t, normalized=False, special=True)) for t in self._additional]
            special_map["additional_special_tokens"] = [{k: v for k, v in t.to_dict().items() if k != "special"} for t in registered]
        added = {t.content: i for i, t in sorted(self._added.items()) if i >= self.vocab_size}
        written = write_pretrained(save_directory, self.vocab, config, special_map, added)
        written.extend(self._save_extra(save_directory))
        return tuple(written)

    def _save_extra(self, save_directory) -> List[str]:
        return []


def _checked_added_tokens(saved: Dict, vocab: Dict[str, int]) -> Dict[int, AddedToken]:
    """added_tokens_decoder ({id: AddedToken, its dict or str}) -> {int id: AddedToken}, ids checked."""
    tokens = {key: as_added_token(value, special=False, what=f"added_tokens_decoder[{key!r}]") for key, value in saved.items()}
    check_added_ids({k: t.content for k, t in tokens.items()}, vocab, "added_tokens_decoder")
    return {int(k): t for k, t in tokens.items()}


def _tensor_type_of(values) -> Optional[str]:
    """'pt' / 'tf' / 'np' when pad() receives tensors of that kind (transformers returns the same kind)."""
    first = values[0] if isinstance(values, (list, tuple)) and values else values
    module = type(first).__module__
    if module.startswith("torch"):
        return "pt"
    if module.startswith("tensorflow"):
        return "tf"
    return "np" if isinstance(first, np.ndarray) else None


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
