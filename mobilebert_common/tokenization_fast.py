"""MobileBertTokenizerFast: the same tokenizer on the Rust `tokenizers` library.

The library does the text work (BertNormalizer, BertPreTokenizer, WordPiece) and gives ids,
character offsets and word indices per text; special tokens, truncation, padding and tensors
come from the shared base, so both tokenizers behave alike. ``save_pretrained`` also writes a
complete tokenizer.json (with the [CLS] a [SEP] b [SEP] template) that transformers' fast
tokenizers load.
"""

from __future__ import annotations

import os
from typing import List

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from mobilebert_common.files import atomic_path
from mobilebert_common.tokenization_base import BatchEncoding, MobileBertTokenizerBase, Piece

__all__ = ["MobileBertTokenizerFast", "BatchEncoding"]


class MobileBertTokenizerFast(MobileBertTokenizerBase):
    """MobileBERT's WordPiece tokenizer on the `tokenizers` library; same API as MobileBertTokenizer."""

    is_fast = True

    def __init__(self, vocab_file=None, **kwargs):
        super().__init__(vocab_file, **kwargs)
        self.backend_tokenizer = self._build_backend()

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
        cls, sep = self.cls_token, self.sep_token
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0",
            pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, self.cls_token_id), (sep, self.sep_token_id)],
        )
        # Special tokens written in the text stay whole; they match the raw (unnormalised) text.
        ordered = sorted(set(self.special_tokens.values()), key=lambda t: self.vocab[t])
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ordered])
        return tok

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
