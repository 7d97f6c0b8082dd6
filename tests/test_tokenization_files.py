"""The tokenizers' files: from_pretrained (directories, tokenizer.json alone, the hub cache) and
save_pretrained (read back by transformers' AutoTokenizer), and the errors of bad files and settings."""

from __future__ import annotations

import json

import pytest

from mobilebert_common import MobileBertTokenizerFast
from tests.harness.tokenization import CLASSES, SMALL, corpus, ids_of, write_tokens


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_save_pretrained_is_read_back_by_transformers_autotokenizer(cls, toks, tmp_path):
    transformers = pytest.importorskip("transformers")
    tok = toks[cls]
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "MobileBertTokenizer" and config["do_lower_case"] is True
    assert (tmp_path / "tokenizer.json").exists() == (cls is MobileBertTokenizerFast)
    texts = corpus(40, seed=4)
    for use_fast in (False, True):
        auto = transformers.AutoTokenizer.from_pretrained(str(tmp_path), use_fast=use_fast)
        assert type(auto).__name__.startswith("MobileBertTokenizer")
        assert auto(texts, padding=True)["input_ids"] == tok(texts, padding=True)["input_ids"]
        assert auto.model_max_length == 512 and auto.mask_token_id == 103
    again = cls.from_pretrained(tmp_path)
    assert again(texts)["input_ids"] == tok(texts)["input_ids"]
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").split("\n")[:3] == ["[PAD]", "[unused0]", "[unused1]"]


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_from_pretrained_reads_settings_and_tokenizer_json_alone(cls, tmp_path):
    transformers = pytest.importorskip("transformers")
    only_vocab = tmp_path / "only_vocab"
    only_vocab.mkdir()
    write_tokens(only_vocab, SMALL)
    tok = cls.from_pretrained(only_vocab)
    assert tok.do_lower_case and tok.tokenize("Hello World") == ["hello", "world"]
    cased = cls.from_pretrained(str(only_vocab), do_lower_case=False, model_max_length=64)
    assert cased.tokenize("Hello World") == ["Hello", "World"] and cased.model_max_length == 64

    # tokenizer_config.json and special_tokens_map.json as users' directories hold them
    (only_vocab / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "model_max_length": 128, "tokenizer_class": "BertTokenizer"}))
    (only_vocab / "special_tokens_map.json").write_text(json.dumps({"mask_token": {"content": "[MASK]", "lstrip": False}, "unk_token": "[UNK]"}))
    tok = cls.from_pretrained(only_vocab)
    assert tok.tokenize("Hello World") == ["Hello", "World"] and tok.model_max_length == 128

    # a directory with tokenizer.json alone (as transformers' fast tokenizer writes it)
    only_json = tmp_path / "only_json"
    only_json.mkdir()
    ref = transformers.BertTokenizerFast(str(only_vocab / "vocab.txt"), do_lower_case=False)
    ref.backend_tokenizer.save(str(only_json / "tokenizer.json"))
    tok = cls.from_pretrained(only_json)
    assert tok.do_lower_case is False and tok.get_vocab() == ref.get_vocab()
    for text in ["Hello World!", "hello cafés", "北京 [MASK]"]:
        assert tok(text)["input_ids"] == ref(text)["input_ids"]


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_from_pretrained_reads_a_hub_repo_from_the_cache_offline(cls, tmp_path, monkeypatch):
    from tests.harness.hub import REPO, fill_cache

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fill_cache(tmp_path, files={"vocab.txt": "\n".join(SMALL) + "\n", "tokenizer_config.json": json.dumps({"do_lower_case": False})})
    tok = cls.from_pretrained(REPO, cache_dir=tmp_path, local_files_only=True)
    assert tok.tokenize("Hello World") == ["Hello", "World"] and tok.vocab_size == len(SMALL)
    with pytest.raises(FileNotFoundError, match="google/other-model"):
        cls.from_pretrained("google/other-model", cache_dir=tmp_path)



# ---- bad files and settings ------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_bad_files_raise_clear_errors(cls, tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        cls(str(tmp_path / "vocab.txt"))
    with pytest.raises(FileNotFoundError, match="neither vocab.txt nor tokenizer.json"):
        cls.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"lacks the special token\(s\) \['\[MASK\]'\]"):
        cls(str(write_tokens(tmp_path, [t for t in SMALL if t != "[MASK]"])))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("\n".join(SMALL).encode("utf-8") + "\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        cls(str(latin1))
    (tmp_path / "vocab.txt").unlink()
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="tokenizer.json is not valid JSON"):
        cls.from_pretrained(tmp_path)
    with pytest.raises(TypeError, match="unknown keyword"):
        cls.from_pretrained(tmp_path, do_lowercase=True)


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
@pytest.mark.parametrize("special", ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"])
def test_vocab_without_a_special_token_is_refused(cls, special, tmp_path):
    path = write_tokens(tmp_path, [t for t in SMALL if t != special])
    with pytest.raises(ValueError, match=rf"lacks the special token\(s\) \['\{special}'\]; a MobileBERT vocabulary holds"):
        cls(str(path))
    with pytest.raises(ValueError, match=rf"lacks the special token\(s\) \['\{special}'\]"):
        cls.from_pretrained(tmp_path)


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_strip_accents_and_chinese_chars_are_read_from_tokenizer_config(cls, tmp_path):
    write_tokens(tmp_path, SMALL)
    default = cls.from_pretrained(tmp_path)
    # lower-casing strips accents by default; CJK ideographs are words of their own
    assert default.tokenize("Café 北京") == ["cafe", "北", "京"]
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": True, "strip_accents": False, "tokenize_chinese_chars": False})
    )
    tok = cls.from_pretrained(tmp_path)
    assert tok.strip_accents is False and tok.tokenize_chinese_chars is False
    # accents kept; "北京" is one word, and "##京" is not in the vocabulary: [UNK]
    assert tok.tokenize("Café 北京") == ["café", "[UNK]"]
    tok.save_pretrained(tmp_path / "again")
    again = cls.from_pretrained(tmp_path / "again")
    assert (again.strip_accents, again.tokenize_chinese_chars) == (False, False)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "strip_accents": True}))
    assert cls.from_pretrained(tmp_path).tokenize("Café") == ["[UNK]"]  # "Cafe": cased, no such piece


@pytest.mark.parametrize("cls", CLASSES, ids=ids_of)
def test_bad_settings_name_the_field_and_what_is_allowed(cls, tmp_path):
    path = str(write_tokens(tmp_path, SMALL))
    for value in ("yes", 1, "true"):
        with pytest.raises(ValueError, match=r"strip_accents must be None \(follow do_lower_case\), True or False, got"):
            cls(path, strip_accents=value)
    for value in ("x", "512", 0, -3, None, 2.5, True):
        with pytest.raises(ValueError, match="model_max_length must be a positive integer"):
            cls(path, model_max_length=value)
    assert cls(path, model_max_length=128.0).model_max_length == 128
    with pytest.raises(ValueError, match="do_lower_case must be True or False, got 'no'"):
        cls(path, do_lower_case="no")
    for settings, field in (({"strip_accents": "yes"}, "strip_accents"), ({"model_max_length": "x"}, "model_max_length")):
        (tmp_path / "tokenizer_config.json").write_text(json.dumps(settings))
        with pytest.raises(ValueError, match=field):
            cls.from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 1000000000000000019884624838656}))
    assert cls.from_pretrained(tmp_path).model_max_length == 512  # transformers' "no limit": our default
