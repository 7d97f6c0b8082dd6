"""The files a tokenizer is read from and written to, in the layout MobileBERT users' tools use:
vocab.txt (one word piece a line, the line number its id), tokenizer_config.json (settings and,
as transformers writes it, the added tokens under added_tokens_decoder), special_tokens_map.json,
added_tokens.json (the added tokens beyond the vocabulary, as older transformers wrote them), and
tokenizer.json (the `tokenizers` format; its vocabulary is read when vocab.txt is absent, its added
tokens when no other file names them).
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Tuple

from mobilebert_common.files import atomic_write_text
from mobilebert_common.hub import resolve_file

SPECIAL_TOKEN_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")  # transformers' order
DEFAULT_SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
# The settings tokenizer_config.json carries that the tokenizers' constructors take.
INIT_KEYS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "model_max_length", "clean_up_tokenization_spaces",
             "additional_special_tokens", "padding_side", "truncation_side", "model_input_names", "verbose")
# transformers' SPECIAL_TOKENS_ATTRIBUTES order: all_special_tokens lists them in this order.
NAMED_SPECIAL_TOKENS = ("bos_token", "eos_token") + SPECIAL_TOKEN_NAMES
# transformers writes int(1e30) as model_max_length for "no limit"; anything past this means that.
NO_LIMIT = 10**9


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
    if not lines:
        raise ValueError(f"vocabulary file {path} is empty; it needs one word piece per line")
    if any("\0" in line for line in lines):
        raise ValueError(f"vocabulary file {path} holds NUL characters: it is binary, not a vocab.txt of word pieces")
    vocab = {}
    for i, token in enumerate(lines):
        token = token.rstrip("\r")
        vocab.setdefault(token, i)  # a duplicate keeps its first id, as BERT's loader does
    return vocab


def read_pretrained(source: str, hub: dict) -> Tuple[Optional[str], Dict[str, int], dict]:
    """A directory or hub repo id -> (vocab.txt path or None, the vocabulary (from vocab.txt or tokenizer.json),
    constructor settings read from tokenizer_config.json, special_tokens_map.json, added_tokens.json and
    tokenizer.json, the added tokens as added_tokens_decoder)."""
    allowed = set(INIT_KEYS) | set(NAMED_SPECIAL_TOKENS)
    settings = {}
    added, added_path = None, None  # {id: AddedToken dict}, and the file it came from
    config_path = resolve_file(source, "tokenizer_config.json", required=False, **hub)
    if config_path:
        config = read_json(config_path)
        _check_unsupported(config, config_path)
        # strip_accents is kept even when null: null is a setting (follow do_lower_case)
        settings.update({k: v for k, v in config.items() if k in allowed and (v is not None or k == "strip_accents")})
        if isinstance(config.get("added_tokens_decoder"), dict):
            added, added_path = config["added_tokens_decoder"], config_path
    special_path = resolve_file(source, "special_tokens_map.json", required=False, **hub)
    if special_path:
        for name, value in read_json(special_path).items():
            if name in NAMED_SPECIAL_TOKENS or name == "additional_special_tokens":
                settings[name] = value
    for name in NAMED_SPECIAL_TOKENS:  # both files may hold AddedToken dicts {"content": "[MASK]", ...}
        if isinstance(settings.get(name), dict):
            settings[name] = settings[name].get("content")
    if added is None:
        added_path = resolve_file(source, "added_tokens.json", required=False, **hub)
        if added_path:
            specials = {settings.get(n) for n in NAMED_SPECIAL_TOKENS} | {
                t.get("content") if isinstance(t, dict) else t for t in settings.get("additional_special_tokens") or []}
            added = {str(i): {"content": t, "special": t in specials, "normalized": t not in specials}
                     for t, i in _checked_added_json(read_json(added_path), added_path).items()}
    vocab_path = resolve_file(source, "vocab.txt", required=False, **hub)
    json_path = resolve_file(source, "tokenizer.json", required=False, **hub) if vocab_path is None or added is None else None
    if vocab_path is None:
        if json_path is None:
            raise FileNotFoundError(f"{source} holds neither vocab.txt nor tokenizer.json: no vocabulary to build a tokenizer from")
        vocab, json_settings = read_tokenizer_json(json_path)
        settings = {**json_settings, **settings}
    else:
        vocab = load_vocab(vocab_path)
    if added is None and json_path is not None:
        added, added_path = {str(t["id"]): t for t in read_json(json_path).get("added_tokens") or []
                             if isinstance(t, dict) and "id" in t}, json_path
    if added:
        check_added_ids({k: v.get("content") if isinstance(v, dict) else v for k, v in added.items()}, vocab, added_path)
        settings["added_tokens_decoder"] = added
    limit = settings.get("model_max_length")
    if isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit > NO_LIMIT:
        settings.pop("model_max_length")
    return vocab_path, vocab, settings


def check_added_ids(contents: Dict, vocab: Dict[str, int], where: str) -> None:
    """Added tokens ({id: content}) against the vocabulary: a token of the vocabulary keeps its id there; the
    others take the ids after it, in order and without gaps (as transformers assigns them)."""
    ids = {}
    for key, content in contents.items():
        if isinstance(key, bool) or not (isinstance(key, int) or (isinstance(key, str) and key.isdigit())):
            raise ValueError(f"{where}: added token ids must be integers, got {key!r}")
        if not isinstance(content, str):
            raise ValueError(f"{where}: added token {key} must be a str or an AddedToken, got {content!r:.60}")
        ids[int(key)] = content
    for index, content in ids.items():
        if content in vocab and vocab[content] != index:
            raise ValueError(f"{where}: added token {content!r} has id {index}, but the vocabulary gives it id {vocab[content]}")
    beyond = sorted(i for i, content in ids.items() if content not in vocab)
    if beyond != list(range(len(vocab), len(vocab) + len(beyond))):
        raise ValueError(f"{where}: the added tokens outside the vocabulary must have the ids {len(vocab)}.. in order "
                         f"(after its {len(vocab)} entries), got {beyond}")


def _check_unsupported(config: dict, path: str) -> None:
    """Settings of transformers' slow BERT tokenizer that these tokenizers do not implement: refused, not ignored."""
    if config.get("do_basic_tokenize", True) is not True:
        raise ValueError(f"{path}: do_basic_tokenize={config['do_basic_tokenize']!r} is not supported (basic tokenization "
                         "always runs before WordPiece here, as in the fast tokenizers)")
    if config.get("never_split"):
        raise ValueError(f"{path}: never_split={config['never_split']!r} is not supported; add such words as tokens "
                         "(tokenizer.add_tokens) to keep them whole")


def _checked_added_json(data: dict, path: str) -> Dict[str, int]:
    bad = {k: v for k, v in data.items() if isinstance(v, bool) or not isinstance(v, int)}
    if bad:
        raise ValueError(f"{path} must map each added token to its integer id, got {bad}")
    return data


def write_pretrained(save_directory: str, vocab: Dict[str, int], config: dict, special_tokens: dict,
                     added: Optional[Dict[str, int]] = None) -> List[str]:
    """Write vocab.txt, tokenizer_config.json, special_tokens_map.json and, when ``added`` names tokens beyond
    the vocabulary, added_tokens.json (each atomically)."""
    if os.path.isfile(save_directory):
        raise ValueError(f"save_pretrained needs a directory, but {save_directory} is a file")
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError("the vocabulary ids are not 0..N-1 without gaps; vocab.txt cannot represent it")
    os.makedirs(save_directory, exist_ok=True)
    path = os.path.join(save_directory, "vocab.txt")
    atomic_write_text(path, "".join(t + "\n" for t, _ in by_id))
    written = [path]
    files = [("tokenizer_config.json", config), ("special_tokens_map.json", special_tokens)]
    if added:
        files.append(("added_tokens.json", added))
    for name, content in files:
        path = os.path.join(save_directory, name)
        atomic_write_text(path, json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        written.append(path)
    return written


def read_tokenizer_json(path: str):
    """tokenizer.json (the `tokenizers` format) -> (vocab, settings) of a BERT WordPiece tokenizer."""
    data = read_json(path)
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


def read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data
