"""MobileBertTokenizerFast: the same tokenizer on the Rust `tokenizers` library.

The library does the text work (BertNormalizer, BertPreTokenizer, WordPiece, added tokens) and gives
ids, character offsets and word indices per text; special tokens, truncation, padding and tensors
come from the shared base, so both tokenizers behave alike. ``save_pretrained`` also writes a
complete tokenizer.json (with the [CLS] a [SEP] b [SEP] template and the added tokens) that
transformers' fast tokenizers load; ``train_new_from_iterator`` trains a new vocabulary.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

from tokenizers import AddedToken as BackendToken
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from mobilebert_common.files import atomic_path
from mobilebert_common.tokenization_added import NAMED_SPECIAL_TOKENS, AddedToken, as_added_token
from mobilebert_common.tokenization_base import BatchEncoding, MobileBertTokenizerBase, Piece

__all__ = ["MobileBertTokenizerFast", "BatchEncoding"]


class MobileBertTokenizerFast(MobileBertTokenizerBase):
    """MobileBERT's WordPiece tokenizer on the `tokenizers` library; same API as MobileBertTokenizer."""

    is_fast = True

    def __init__(self, vocab_file=None, **kwargs):
        super().__init__(vocab_file, **kwargs)
        # [CLS] / [SEP] of the row template, fixed here as in transformers' fast class (setting cls_token later
        # does not change the rows it builds); written to tokenizer.json as its post-processor
        self._template = (self.cls_token_id, self.sep_token_id)
        cls, sep = self.cls_token, self.sep_token
        if None not in (cls, sep):
            self.backend_tokenizer.post_processor = processors.TemplateProcessing(
                single=f"{cls}:0 $A:0 {sep}:0",
                pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
                special_tokens=[(cls, self._template[0]), (sep, self._template[1])],
            )

    def _start_registry(self) -> None:
        self.backend_tokenizer = self._build_backend()
        self._sync_registry()

    def _template_ids(self):
        return self._template

    def _build_backend(self) -> Tokenizer:
        tok = Tokenizer(models.WordPiece(self.vocab, unk_token=self.unk_token, max_input_chars_per_word=100))
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=self.tokenize_chinese_chars,
            strip_accents=self.strip_accents,
            lowercase=self.do_lower_case,
        )
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece(prefix="##")
        # Special tokens written in the text stay whole; they match the raw (unnormalised) text.
        named = {self._special[n] for n in NAMED_SPECIAL_TOKENS if self._special[n] in self.vocab}
        tok.add_special_tokens([BackendToken(t, special=True, normalized=False) for t in sorted(named, key=self.vocab.get)])
        return tok

    def _sync_registry(self) -> None:
        """Our registry mirrors the library's added vocabulary (it assigns the ids)."""
        self._added = {}
        for index, token in self.backend_tokenizer.get_added_tokens_decoder().items():
            self._register(index, as_added_token(token, special=token.special))

    def _restore_added_tokens(self, saved: Dict[int, AddedToken]) -> None:
        for index, token in sorted(saved.items()):
            if self._added.get(index) == token:
                continue
            self._backend_add([token], token.special)
            if self._added_id(token.content) != index:
                raise ValueError(f"added token {token.content!r} was saved with id {index} but takes id "
                                 f"{self._added_id(token.content)} here")

    def _add_tokens(self, tokens, special_tokens: bool = False) -> int:
        """As transformers' fast class: the library adds them; the count includes tokens of the vocabulary."""
        return self._backend_add([as_added_token(t, special=special_tokens) for t in tokens], special_tokens)

    def _backend_add(self, tokens: List[AddedToken], special: bool) -> int:
        backend = [BackendToken(t.content, single_word=t.single_word, lstrip=t.lstrip, rstrip=t.rstrip,
                                normalized=t.normalized, special=t.special or special) for t in tokens]
        count = self.backend_tokenizer.add_special_tokens(backend) if special else self.backend_tokenizer.add_tokens(backend)
        self._sync_registry()
        return count

    def _encode_texts(self, texts: List[str]) -> List[Piece]:
        out = []
        for enc in self.backend_tokenizer.encode_batch(texts, add_special_tokens=False):
            out.append((list(enc.ids), [tuple(o) for o in enc.offsets], list(enc.word_ids)))
        return out

    def _save_extra(self, save_directory) -> List[str]:
        path = os.path.join(save_directory, "tokenizer.json")
        with atomic_path(path) as tmp:
            self.backend_tokenizer.save(tmp)
        return [path]

    def train_new_from_iterator(self, text_iterator, vocab_size: int, length: Optional[int] = None,
                                new_special_tokens: Optional[list] = None, special_tokens_map: Optional[dict] = None,
                                **kwargs) -> "MobileBertTokenizerFast":
        """A new tokenizer of this kind (same normalisation and settings) with a WordPiece vocabulary of at most
        ``vocab_size`` entries trained on ``text_iterator`` (str or lists of str), as transformers' method:
        the special tokens come first (renamed by ``special_tokens_map``), then ``new_special_tokens``;
        other keywords go to the `tokenizers` WordPieceTrainer (min_frequency, limit_alphabet, ...)."""
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
            raise ValueError(f"vocab_size must be a positive integer, got {vocab_size!r}")
        rename = dict(special_tokens_map or {})
        specials = [BackendToken(rename.get(t.content, t.content), single_word=t.single_word, lstrip=t.lstrip,
                                 rstrip=t.rstrip, normalized=t.normalized, special=True)
                    for _, t in sorted(self._added.items()) if t.special]
        specials += [BackendToken(t, special=True, normalized=False) if isinstance(t, str) else t for t in new_special_tokens or []]
        named = {n: rename.get(v, v) for n, v in self._special.items() if v is not None}
        model = Tokenizer(models.WordPiece(unk_token=named.get("unk_token", "[UNK]"), max_input_chars_per_word=100))
        model.normalizer = self.backend_tokenizer.normalizer
        model.pre_tokenizer = self.backend_tokenizer.pre_tokenizer
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, **kwargs)
        model.train_from_iterator(text_iterator, trainer=trainer, length=length)
        return type(self)(
            vocab=model.get_vocab(with_added_tokens=False), do_lower_case=self.do_lower_case,
            strip_accents=self.strip_accents, tokenize_chinese_chars=self.tokenize_chinese_chars,
            model_max_length=self.model_max_length, clean_up_tokenization_spaces=self.clean_up_tokenization_spaces,
            additional_special_tokens=[rename.get(t, t) for t in self._additional] + [str(getattr(t, "content", t)) for t in new_special_tokens or []],
            padding_side=self.padding_side, truncation_side=self.truncation_side, **named,
        )
