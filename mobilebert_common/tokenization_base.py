"""What MobileBertTokenizer and MobileBertTokenizerFast share: the whole user-facing API.

A subclass only turns texts into word pieces (``_encode_texts``: ids, character offsets, word
indices, no special tokens). Everything else lives here, once: special tokens, pairs, batches,
truncation (with stride and overflowing windows), padding, tensors, decoding, and the files
(vocab.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json) that
``from_pretrained`` reads and ``save_pretrained`` writes in the layout MobileBERT users' tools read.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mobilebert_common.files import atomic_write_text
from mobilebert_common.hub import HUB_KWARGS, resolve_file

SPECIAL_TOKEN_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")  # transformers' order
DEFAULT_SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
PADDING_VALUES = (False, True, "longest", "max_length", "do_not_pad")
TRUNCATION_VALUES = (False, True, "longest_first", "only_first", "only_second", "do_not_truncate")
TENSOR_TYPES = (None, "np", "pt", "tf")
INIT_KEYS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "model_max_length", "clean_up_tokenization_spaces")

Piece = Tuple[List[int], List[Tuple[int, int]], List[int]]  # (ids, (start, end) characters, word index) of one text


def load_vocab(path: str) -> Dict[str, int]:
    """vocab.txt: one token a line, the line number is its id."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"vocabulary file {path} not found (a vocab.txt with one word piece per line)")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except UnicodeDecodeError as e:
        raise ValueError(f"vocabulary file {path} is not UTF-8 text ({e})") from None
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    vocab = {}
    for i, token in enumerate(lines):
        token = token.rstrip("\r")
        vocab.setdefault(token, i)  # a duplicate keeps its first id, as BERT's loader does
    return vocab


class BatchEncoding(dict):
    """The tokenizer's output: a dict (``enc["input_ids"]``) that also reads as attributes
    (``enc.input_ids``), moves torch tensors with ``.to(device)``, and tells for every row which
    word (``word_ids(i)``) and which text of a pair (``sequence_ids(i)``) each token comes from."""

    def __init__(self, data=None, words=None, sequences=None, batched=True):
        super().__init__(data or {})
        self._words = words or []  # per row: word index or None, for every token
        self._sequences = sequences or []  # per row: 0 / 1 / None, for every token
        self._batched = batched

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key {name!r}; it holds {sorted(self)}") from None

    def __getstate__(self):
        return {"data": dict(self), "words": self._words, "sequences": self._sequences, "batched": self._batched}

    def __setstate__(self, state):
        self.update(state["data"])
        self._words, self._sequences, self._batched = state["words"], state["sequences"], state["batched"]

    def _row(self, table, i):
        if not table:
            raise ValueError("this BatchEncoding carries no word/sequence information")
        if not -len(table) <= i < len(table):
            raise IndexError(f"row {i} out of range: this batch has {len(table)} rows")
        return list(table[i])

    def word_ids(self, batch_index: int = 0) -> List[Optional[int]]:
        """Word index (within its own text) of every token of a row; None for special and padding tokens."""
        return self._row(self._words, batch_index)

    def sequence_ids(self, batch_index: int = 0) -> List[Optional[int]]:
        """0 for tokens of the first text, 1 for the second, None for special and padding tokens."""
        return self._row(self._sequences, batch_index)

    def to(self, device) -> "BatchEncoding":
        """Move every torch tensor to ``device`` (in place; returns self, as users chain it)."""
        for key, value in self.items():
            if hasattr(value, "to") and type(value).__module__.startswith("torch"):
                self[key] = value.to(device)
        return self

    def convert_to_tensors(self, tensor_type):
        for key, value in self.items():
            self[key] = to_tensor(value, tensor_type, key)
        return self


def to_tensor(rows, tensor_type: Optional[str], key: str = "values"):
    """Lists of equal-length rows -> numpy / torch / TensorFlow int64 tensor."""
    if tensor_type is None:
        return rows
    if tensor_type not in TENSOR_TYPES:
        raise ValueError(f"return_tensors must be one of {TENSOR_TYPES}, got {tensor_type!r}")
    try:
        array = np.asarray(rows, dtype=np.int64)
    except ValueError:
        raise ValueError(
            f"{key} rows have different lengths and cannot form one tensor; pass padding=True (or "
            f"padding='max_length' with max_length=) together with return_tensors={tensor_type!r}"
        ) from None
    if tensor_type == "np":
        return array
    module = {"pt": "torch", "tf": "tensorflow"}[tensor_type]
    try:
        framework = importlib.import_module(module)
    except ImportError:
        raise ImportError(f"return_tensors={tensor_type!r} needs {module}, which is not installed; use return_tensors='np'") from None
    return framework.from_numpy(array) if tensor_type == "pt" else framework.constant(array)


def _check_text(value, what):
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str (or a list of str for a batch), got {type(value).__name__}: {value!r:.60}")
    return value


class MobileBertTokenizerBase:
    """The API both tokenizers share. Subclasses implement ``_encode_texts`` and ``tokenize``."""

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
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        if model_max_length is None or int(model_max_length) < 1:
            raise ValueError(f"model_max_length must be a positive int, got {model_max_length!r}")
        self.model_max_length = int(model_max_length)
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
    def tokenize(self, text: str) -> List[str]:
        raise NotImplementedError

    def _encode_texts(self, texts: List[str]) -> List[Piece]:
        raise NotImplementedError

    # ---- ids <-> tokens -----------------------------------------------------------------------
    def convert_tokens_to_ids(self, tokens):
        """A token or a list of tokens -> id(s); unknown tokens give unk_token_id."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """An id or a list of ids -> token(s). Ids outside the vocabulary raise ValueError."""
        if _is_int(ids):
            return self._id_to_token(int(ids))
        ids = _to_list(ids)
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._id_to_token(int(i)) for i in ids if int(i) not in special]

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
            _check_text(text, "text")
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: Optional[bool] = None) -> str:
        """Ids -> text: pieces joined, "##" glued, optional clean-up of spaces before punctuation."""
        ids = _to_list(token_ids)
        if ids and isinstance(ids[0], list):
            raise ValueError("decode takes one sequence of ids; use batch_decode for a batch")
        text = self.convert_tokens_to_string(self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens))
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean else text

    def batch_decode(self, sequences, **kwargs) -> List[str]:
        return [self.decode(s, **kwargs) for s in _to_list(sequences)]

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
        padding, truncation, max_length = self._check_options(padding, truncation, max_length, stride, pad_to_multiple_of, return_tensors)
        firsts, seconds, batched = self._split_inputs(text, text_pair)
        unique = list(dict.fromkeys(firsts + [s for s in seconds if s is not None]))
        encoded = dict(zip(unique, self._encode_texts(unique)))

        rows, mapping = [], []
        for sample, (a, b) in enumerate(zip(firsts, seconds)):
            a_enc = encoded[a]
            b_enc = None if b is None else encoded[b]
            for row in self._rows(a_enc, b_enc, add_special_tokens, truncation, max_length, stride, return_overflowing_tokens):
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
        self._pad(rows, padding, max_length, pad_to_multiple_of)

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
            columns = [_to_list(encoded_inputs[k]) for k in keys]
            if columns and columns[0] and not isinstance(columns[0][0], list):
                columns = [[c] for c in columns]  # one row
            encoded_inputs = [dict(zip(keys, values)) for values in zip(*columns)]
        if not isinstance(encoded_inputs, (list, tuple)) or not encoded_inputs or not all(isinstance(r, dict) and "input_ids" in r for r in encoded_inputs):
            raise ValueError("pad takes a non-empty list of encodings (dicts with input_ids) or a dict of lists")
        padding, _, max_length = self._check_options(padding, False, max_length, 0, pad_to_multiple_of, return_tensors)
        rows = []
        for r in encoded_inputs:
            r = {k: _to_list(v) for k, v in r.items()}
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
        self._pad(rows, padding, max_length, pad_to_multiple_of)
        data = {k: [r[k] for r in rows] for k in keys}
        return BatchEncoding(data, batched=True).convert_to_tensors(return_tensors)

    # ---- the steps of __call__ ----------------------------------------------------------------
    def _check_options(self, padding, truncation, max_length, stride, pad_to_multiple_of, return_tensors):
        if padding not in PADDING_VALUES or not isinstance(padding, (bool, str)):
            raise ValueError(f"padding must be one of {PADDING_VALUES}, got {padding!r}")
        padding = {True: "longest", "do_not_pad": False}.get(padding, padding)
        if truncation is None:
            truncation = False
            if max_length is not None and padding is False:
                # max_length alone means "cut to it", as transformers reads it; say so.
                warnings.warn(
                    "max_length is given but truncation is not: cutting with truncation='longest_first'; "
                    "pass truncation=True (or another strategy) to say so explicitly",
                    UserWarning,
                    stacklevel=3,
                )
                truncation = "longest_first"
        if truncation not in TRUNCATION_VALUES or not isinstance(truncation, (bool, str)):
            raise ValueError(f"truncation must be one of {TRUNCATION_VALUES}, got {truncation!r}")
        truncation = {True: "longest_first", "do_not_truncate": False}.get(truncation, truncation)
        if max_length is not None and (not _is_int(max_length) or max_length < 1):
            raise ValueError(f"max_length must be a positive int, got {max_length!r}")
        if padding == "max_length" and max_length is None:
            raise ValueError("padding='max_length' needs max_length= (the length every row is padded to)")
        if truncation and max_length is None:
            max_length = self.model_max_length
        if not _is_int(stride) or stride < 0:
            raise ValueError(f"stride must be an int >= 0, got {stride!r}")
        if pad_to_multiple_of is not None and (not _is_int(pad_to_multiple_of) or pad_to_multiple_of < 1):
            raise ValueError(f"pad_to_multiple_of must be a positive int, got {pad_to_multiple_of!r}")
        if return_tensors not in TENSOR_TYPES:
            raise ValueError(f"return_tensors must be one of {TENSOR_TYPES}, got {return_tensors!r}")
        return padding, truncation, None if max_length is None else int(max_length)

    @staticmethod
    def _split_inputs(text, text_pair):
        """-> (first texts, second texts or None each, batched?)"""
        if isinstance(text, str):
            if text_pair is not None and not isinstance(text_pair, str):
                raise ValueError(f"text is one str, so text_pair must be one str too, got {type(text_pair).__name__}")
            return [text], [text_pair], False
        if not isinstance(text, (list, tuple)):
            _check_text(text, "text")
        if len(text) == 0:
            raise ValueError("text is an empty list; pass a str or a non-empty list of str")
        if text_pair is None:
            firsts, seconds = [], []
            for i, t in enumerate(text):
                if isinstance(t, (list, tuple)):  # a batch of (text, text_pair)
                    if len(t) != 2:
                        raise ValueError(f"text[{i}] must be a str or a (text, text_pair) pair, got {len(t)} items")
                    firsts.append(_check_text(t[0], f"text[{i}][0]"))
                    seconds.append(_check_text(t[1], f"text[{i}][1]"))
                else:
                    firsts.append(_check_text(t, f"text[{i}]"))
                    seconds.append(None)
            return firsts, seconds, True
        if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text):
            raise ValueError(
                f"text is a batch of {len(text)}, so text_pair must be a list of as many str, got {text_pair!r:.60}"
            )
        firsts = [_check_text(t, f"text[{i}]") for i, t in enumerate(text)]
        seconds = [_check_text(t, f"text_pair[{i}]") for i, t in enumerate(text_pair)]
        return firsts, seconds, True

    def _rows(self, a: Piece, b: Optional[Piece], add_special, truncation, max_length, stride, overflow):
        """The model rows of one sample: one, or several overlapping windows when overflow is asked."""
        if b is None and truncation == "only_second":
            raise ValueError("truncation='only_second' needs a pair of texts (text_pair=); use truncation=True for one text")
        specials = (2 if b is None else 3) if add_special else 0
        if not truncation or len(a[0]) + (len(b[0]) if b else 0) + specials <= max_length:
            return [self._row(a, b, add_special)]
        room = max_length - specials  # tokens of text left for the texts
        if room < 1:
            raise ValueError(
                f"max_length={max_length} leaves no room for text: {specials} special tokens "
                f"({'[CLS] a [SEP] b [SEP]' if b is not None else '[CLS] a [SEP]'}) need max_length > {specials}"
            )
        if b is None or truncation == "only_first":
            keep = room - (len(b[0]) if b else 0)  # tokens of the first text that fit
            if keep < 1:
                raise ValueError(
                    f"truncation='only_first' cannot fit max_length={max_length}: the second text alone takes "
                    f"{len(b[0])} tokens plus {specials} special tokens; use truncation='longest_first' or 'only_second'"
                )
            windows = _windows(a, keep, stride, overflow)
            return [self._row(w, b, add_special) for w in windows]
        if truncation == "only_second":
            keep = room - len(a[0])
            if keep < 1:
                raise ValueError(
                    f"truncation='only_second' cannot fit max_length={max_length}: the first text alone takes "
                    f"{len(a[0])} tokens plus {specials} special tokens; use truncation='longest_first' or 'only_first'"
                )
            return [self._row(a, w, add_special) for w in _windows(b, keep, stride, overflow)]
        if overflow:
            raise ValueError(
                "return_overflowing_tokens with a pair of texts needs truncation='only_second' (or 'only_first'): "
                "with 'longest_first' it is unclear which text the windows slide over"
            )
        # longest_first, as the `tokenizers` library (transformers' default fast tokenizer) does it:
        # the shorter text stays whole if the longer one can absorb the cut; otherwise both get
        # half the room and an odd token goes to the longer one (to the second on a tie).
        short = min(len(a[0]), len(b[0]))
        n_short, n_long = short, max(short, room - short)
        if n_short + n_long > room:
            n_short, n_long = room // 2, room // 2 + room % 2
        n_a, n_b = (n_long, n_short) if len(a[0]) > len(b[0]) else (n_short, n_long)
        return [self._row(_cut(a, 0, n_a), _cut(b, 0, n_b), add_special)]

    def _row(self, a: Piece, b: Optional[Piece], add_special: bool) -> dict:
        """[CLS] a [SEP] (b [SEP]) with segment ids, offsets, word and sequence ids."""
        cls, sep = ([self.cls_token_id], [self.sep_token_id]) if add_special else ([], [])
        s = 1 if add_special else 0
        ids = cls + a[0] + sep
        types = [0] * len(ids)
        offsets = [(0, 0)] * s + list(a[1]) + [(0, 0)] * s
        words = [None] * s + list(a[2]) + [None] * s
        seqs = [None] * s + [0] * len(a[0]) + [None] * s
        if b is not None:
            ids += b[0] + sep
            types += [1] * (len(b[0]) + s)
            offsets += list(b[1]) + [(0, 0)] * s
            words += list(b[2]) + [None] * s
            seqs += [1] * len(b[0]) + [None] * s
        special = [1 if q is None else 0 for q in seqs]
        return {
            "input_ids": ids,
            "token_type_ids": types,
            "attention_mask": [1] * len(ids),
            "special_tokens_mask": special,
            "offset_mapping": offsets,
            "word_ids": words,
            "sequence_ids": seqs,
        }

    def _pad(self, rows, padding, max_length, multiple):
        """Pad every row on the right (absolute positions) to the batch's longest or to max_length."""
        if not padding:
            return
        target = max_length if padding == "max_length" else max(len(r["input_ids"]) for r in rows)
        if multiple:
            target = -(-target // multiple) * multiple
        fill = {
            "input_ids": self.pad_token_id,
            "token_type_ids": 0,
            "attention_mask": 0,
            "special_tokens_mask": 1,
            "offset_mapping": (0, 0),
            "word_ids": None,
            "sequence_ids": None,
        }
        for r in rows:
            n = target - len(r["input_ids"])
            if n > 0:
                for key, value in fill.items():
                    if key in r:
                        r[key] = r[key] + [value] * n

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
        source = os.fspath(dir_or_repo_id)
        settings = {}
        config_path = resolve_file(source, "tokenizer_config.json", required=False, **hub)
        if config_path:
            settings.update({k: v for k, v in _read_json(config_path).items() if k in allowed and v is not None or k == "strip_accents"})
        special_path = resolve_file(source, "special_tokens_map.json", required=False, **hub)
        if special_path:
            for name, value in _read_json(special_path).items():
                if name in SPECIAL_TOKEN_NAMES:
                    settings[name] = value["content"] if isinstance(value, dict) else value
        for name in SPECIAL_TOKEN_NAMES:  # tokenizer_config may hold AddedToken dicts
            if isinstance(settings.get(name), dict):
                settings[name] = settings[name]["content"]
        vocab_path = resolve_file(source, "vocab.txt", required=False, **hub)
        vocab = None
        if vocab_path is None:
            json_path = resolve_file(source, "tokenizer.json", required=False, **hub)
            if json_path is None:
                raise FileNotFoundError(f"{source} holds neither vocab.txt nor tokenizer.json: no vocabulary to build a tokenizer from")
            vocab, json_settings = read_tokenizer_json(json_path)
            settings = {**json_settings, **settings}
        if settings.get("model_max_length", 0) > 10**9:  # transformers writes a huge int for "no limit"
            settings.pop("model_max_length")
        settings.update(kwargs)
        return cls(vocab_file=vocab_path, vocab=vocab, **settings)

    def save_pretrained(self, save_directory, **kwargs) -> Tuple[str, ...]:
        """Write vocab.txt, tokenizer_config.json, special_tokens_map.json (and tokenizer.json for
        the fast tokenizer) in the layout that transformers' AutoTokenizer reads back."""
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_pretrained needs a directory, but {save_directory} is a file")
        os.makedirs(save_directory, exist_ok=True)
        by_id = sorted(self.vocab.items(), key=lambda kv: kv[1])
        if [i for _, i in by_id] != list(range(len(by_id))):
            raise ValueError("the vocabulary ids are not 0..N-1 without gaps; vocab.txt cannot represent it")
        written = []
        path = os.path.join(save_directory, "vocab.txt")
        atomic_write_text(path, "".join(t + "\n" for t, _ in by_id))
        written.append(path)
        config = {
            "tokenizer_class": "MobileBertTokenizer",
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            **self.special_tokens,
        }
        for name, content in (("tokenizer_config.json", config), ("special_tokens_map.json", self.special_tokens)):
            path = os.path.join(save_directory, name)
            atomic_write_text(path, json.dumps(content, indent=2, ensure_ascii=False) + "\n")
            written.append(path)
        written.extend(self._save_extra(save_directory))
        return tuple(written)

    def _save_extra(self, save_directory) -> List[str]:
        return []


def read_tokenizer_json(path: str):
    """tokenizer.json (the `tokenizers` format) -> (vocab, settings) of a BERT WordPiece tokenizer."""
    data = _read_json(path)
    model = data.get("model") or {}
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise ValueError(f"{path} does not hold a WordPiece model with a vocabulary (model.type is {model.get('type')!r})")
    settings = {}
    norm = data.get("normalizer") or {}
    if norm.get("type") == "BertNormalizer":
        settings["do_lower_case"] = norm.get("lowercase", True)
        settings["strip_accents"] = norm.get("strip_accents")
        settings["tokenize_chinese_chars"] = norm.get("handle_chinese_chars", True)
    if model.get("unk_token"):
        settings["unk_token"] = model["unk_token"]
    return {str(k): int(v) for k, v in model["vocab"].items()}, settings


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def _windows(piece: Piece, size: int, stride: int, overflow: bool) -> List[Piece]:
    """The first ``size`` tokens, or with ``overflow`` every window of ``size`` tokens that
    overlaps the previous one by ``stride`` tokens until the text is covered."""
    n = len(piece[0])
    if not overflow:
        return [_cut(piece, 0, size)]
    if stride >= size:
        raise ValueError(f"stride ({stride}) must be smaller than the tokens per window ({size}) so that windows advance")
    starts = [0]
    while starts[-1] + size < n:
        starts.append(starts[-1] + size - stride)
    return [_cut(piece, s, s + size) for s in starts]


def _cut(piece: Piece, start: int, end: int) -> Piece:
    return piece[0][start:end], piece[1][start:end], piece[2][start:end]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _to_list(ids):
    """A list, tuple, numpy array or framework tensor of ids -> a Python list."""
    if hasattr(ids, "numpy") and not isinstance(ids, np.ndarray):
        ids = ids.numpy() if not hasattr(ids, "detach") else ids.detach().cpu().numpy()
    if isinstance(ids, np.ndarray):
        return ids.tolist()
    return list(ids)


def clean_up_tokenization(text: str) -> str:
    """Remove the spaces that joining word pieces puts before punctuation and contractions."""
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(before, after)
    return text
