"""Special and added tokens: what both tokenizers share about tokens outside the WordPiece vocabulary.

transformers' model of them, which MobileBERT users' code relies on:
- seven named special tokens (bos, eos, unk, sep, pad, cls, mask; MobileBERT sets the last five, so
  ``bos_token`` and ``eos_token`` are None) and a list of ``additional_special_tokens``;
- added tokens (``add_tokens``, ``add_special_tokens``): never split, matched before WordPiece runs,
  given the ids after the vocabulary (or their vocabulary id when they are in it); ``len(tokenizer)``
  counts them; the special ones are dropped by ``skip_special_tokens``.

The registry (id -> AddedToken) starts with the five special tokens, as transformers' does. How a
token is added differs between transformers' slow and fast classes; each subclass's ``_add_tokens``
follows its counterpart, and everything else lives here once.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

from mobilebert_common.tokenization_files import NAMED_SPECIAL_TOKENS

logger = logging.getLogger("mobilebert_common.tokenization")


@dataclass
class AddedToken:
    """A token outside the WordPiece algorithm, as transformers / `tokenizers` describe it: ``normalized``
    tokens are matched in the normalised (lower-cased) text, others as written; ``single_word`` ones only
    as whole words; ``lstrip`` / ``rstrip`` ones take the spaces beside them (no effect on BERT's ids)."""

    content: str
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool = True
    special: bool = False

    def __str__(self):
        return self.content

    def to_dict(self) -> dict:
        return asdict(self)


def as_added_token(value, special: bool, what: str = "token") -> AddedToken:
    """A str, an AddedToken (ours, transformers' or `tokenizers`'), or its JSON dict -> our AddedToken.
    A str becomes normalized unless special, as in transformers."""
    if isinstance(value, str):
        return AddedToken(value, normalized=not special, special=special)
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        fields = {k: bool(value[k]) for k in ("single_word", "lstrip", "rstrip", "normalized", "special") if k in value}
        return AddedToken(value["content"], **{"normalized": not fields.get("special", special), **fields})
    content = getattr(value, "content", None)
    if not isinstance(content, str):
        raise TypeError(f"{what} must be a str or an AddedToken, got {type(value).__name__}: {value!r:.60}")
    return AddedToken(content, **{k: bool(getattr(value, k, d)) for k, d in
                                  (("single_word", False), ("lstrip", False), ("rstrip", False),
                                   ("normalized", not special), ("special", special))})


class AddedTokensMixin:
    """Named special tokens, additional special tokens and the added-token registry. Needs ``self.vocab``
    (the WordPiece vocabulary) and, from the subclass, ``_add_tokens(tokens, special_tokens) -> int``."""

    vocab: Dict[str, int]
    verbose: bool = False

    def _init_special_tokens(self, named: Dict[str, Optional[str]]) -> None:
        self._special: Dict[str, Optional[str]] = {name: None for name in NAMED_SPECIAL_TOKENS}
        for name, value in named.items():
            self._special[name] = None if value is None else str(value)
        self._additional: List[str] = []
        self._added: Dict[int, AddedToken] = {}  # id -> token: the five specials first, as in transformers

    # ---- registry -----------------------------------------------------------------------------------
    @property
    def added_tokens_decoder(self) -> Dict[int, AddedToken]:
        """id -> AddedToken, sorted by id (the special tokens included, as transformers lists them)."""
        return dict(sorted(self._added.items()))

    @property
    def added_tokens_encoder(self) -> Dict[str, int]:
        return {t.content: i for i, t in sorted(self._added.items())}

    def get_added_vocab(self) -> Dict[str, int]:
        return self.added_tokens_encoder

    def get_vocab(self) -> Dict[str, int]:
        """The WordPiece vocabulary and the added tokens: token -> id."""
        return {**self.vocab, **self.added_tokens_encoder}

    @property
    def vocab_size(self) -> int:
        """Size of the WordPiece vocabulary, without added tokens (len(tokenizer) counts those too)."""
        return len(self.vocab)

    def __len__(self) -> int:
        """The vocabulary and the added tokens beyond it (what a model's embeddings must hold)."""
        return len(self.vocab) + sum(1 for t in self._added.values() if t.content not in self.vocab)

    def _register(self, index: int, token: AddedToken) -> None:
        self._added[index] = token
        self._added_ids = None  # content -> id, rebuilt on demand

    def _added_id(self, content: str) -> Optional[int]:
        if getattr(self, "_added_ids", None) is None:
            self._added_ids = {t.content: i for i, t in self._added.items()}
        return self._added_ids.get(content)

    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """Add tokens that are never split (str or AddedToken, one or a list); returns how many were added,
        counted as transformers' slow (tokens new to the vocabulary) or fast (tokens new to the registry)
        class counts them. Resize a model's embeddings to len(tokenizer) afterwards."""
        if not new_tokens:
            return 0
        if not isinstance(new_tokens, (list, tuple)):
            new_tokens = [new_tokens]
        tokens = []
        for token in new_tokens:
            if not isinstance(token, str) and not hasattr(token, "content"):
                raise TypeError(f"add_tokens takes str or AddedToken values, got {type(token).__name__}: {token!r:.60}")
            tokens.append(token)
        return self._add_tokens(tokens, special_tokens=special_tokens)

    def add_special_tokens(self, special_tokens_dict: dict, replace_additional_special_tokens: bool = True) -> int:
        """Set named special tokens ({"cls_token": "<cls>"}) and/or "additional_special_tokens" (a list, which
        replaces the current list unless replace_additional_special_tokens=False), adding those that are new.
        Returns how many tokens were added to the vocabulary."""
        if not isinstance(special_tokens_dict, dict):
            raise TypeError(f"add_special_tokens takes a dict of special tokens, got {type(special_tokens_dict).__name__}")
        allowed = NAMED_SPECIAL_TOKENS + ("additional_special_tokens",)
        unknown = [k for k in special_tokens_dict if k not in allowed]
        if unknown:
            raise ValueError(f"add_special_tokens got unknown key(s) {unknown}; allowed: {', '.join(allowed)}")
        to_add: List[AddedToken] = []
        for key, value in special_tokens_dict.items():
            if key == "additional_special_tokens":
                if not isinstance(value, (list, tuple)):
                    raise ValueError(f"additional_special_tokens must be a list of tokens, got {type(value).__name__}")
                tokens = [as_added_token(t, special=True, what="an additional special token") for t in value]
                if not replace_additional_special_tokens:
                    tokens = [t for t in tokens if t.content not in self._additional]
                    self._additional.extend(t.content for t in tokens)
                elif tokens:
                    self._additional = [t.content for t in tokens]
                to_add.extend(tokens)
            else:
                token = as_added_token(value, special=True, what=key)
                self._special[key] = token.content
                to_add.append(token)
        return self.add_tokens(to_add, special_tokens=True)

    # ---- the named special tokens -------------------------------------------------------------------
    def _special_token(self, name: str) -> Optional[str]:
        value = self._special[name]
        if value is None and self.verbose:
            logger.error("Using %s, but it is not set yet.", name)
        return value

    def _set_special_token(self, name: str, value) -> None:
        if value is not None and not isinstance(value, str) and not hasattr(value, "content"):
            raise ValueError(f"{name} must be a str, an AddedToken or None, got {type(value).__name__}: {value!r:.60}")
        self._special[name] = None if value is None else str(getattr(value, "content", value))

    @property
    def additional_special_tokens(self) -> List[str]:
        return list(self._additional)

    @additional_special_tokens.setter
    def additional_special_tokens(self, values) -> None:
        """Marks the tokens as special (for all_special_tokens and skip_special_tokens); adds none to the vocabulary."""
        self._additional = [str(as_added_token(v, special=True, what="an additional special token")) for v in values or []]

    @property
    def additional_special_tokens_ids(self) -> List[int]:
        return self.convert_tokens_to_ids(self._additional)

    @property
    def special_tokens_map(self) -> Dict[str, object]:
        """The special tokens that are set: {"unk_token": "[UNK]", ..., "additional_special_tokens": [...]}."""
        out: Dict[str, object] = {k: v for k, v in self._special.items() if v is not None}
        if self._additional:
            out["additional_special_tokens"] = list(self._additional)
        return out

    @property
    def all_special_tokens(self) -> List[str]:
        """Every special token once, in transformers' order (bos, eos, unk, sep, pad, cls, mask, additional)."""
        values = [v for v in self._special.values() if v is not None] + self._additional
        return list(dict.fromkeys(values))

    @property
    def all_special_ids(self) -> List[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    # ---- tokens <-> ids -------------------------------------------------------------------------------
    def convert_tokens_to_ids(self, tokens):
        """A token or a list of tokens -> id(s): added tokens first, then the vocabulary; unknown ones give unk_token_id."""
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        return [self._token_to_id(t) for t in tokens]

    def _token_to_id(self, token: str) -> Optional[int]:
        index = self._added_id(token)
        if index is None:
            index = self.vocab.get(token)
        if index is None:
            unk = self._special["unk_token"]
            index = None if unk is None else (self._added_id(unk) if self._added_id(unk) is not None else self.vocab.get(unk))
        return index


def _special_property(name: str) -> property:
    def get(self):
        return self._special_token(name)

    def set_(self, value):
        self._set_special_token(name, value)

    return property(get, set_, doc=f"The {name.replace('_', ' ')} (None when this tokenizer has none).")


def _special_id_property(name: str) -> property:
    def get(self):
        token = self._special[name]
        return None if token is None else self.convert_tokens_to_ids(token)

    def set_(self, value):
        self._set_special_token(name, None if value is None else self.convert_ids_to_tokens(value))

    return property(get, set_, doc=f"The id of the {name.replace('_', ' ')} (None when there is none).")


for _name in NAMED_SPECIAL_TOKENS:
    setattr(AddedTokensMixin, _name, _special_property(_name))
    setattr(AddedTokensMixin, _name + "_id", _special_id_property(_name))
