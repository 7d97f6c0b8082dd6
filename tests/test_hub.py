"""Hub resolution, tested offline against a cache directory filled in huggingface_hub's layout."""

import os

import pytest

from mobilebert_common import MobileBertConfig
from mobilebert_common.hub import resolve_file

REPO = "google/mobilebert-uncased"
COMMIT = "1f90a6c24c7879273a291d34a849033eba2dbc0f"


def fill_cache(cache_dir, commit=COMMIT, ref="main", files=None):
    """models--google--mobilebert-uncased/{refs/<ref>, snapshots/<commit>/<file>} as huggingface_hub writes it."""
    repo_dir = cache_dir / "models--google--mobilebert-uncased"
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / ref).write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (snapshot / name).write_text(text)
    return snapshot


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_local_directory(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_file(tmp_path, "config.json") == os.path.join(tmp_path, "config.json")
    assert resolve_file(tmp_path, "tokenizer.json", required=False) is None
    with pytest.raises(FileNotFoundError, match=r"vocab.txt not found in directory .* \(it holds: config.json\)"):
        resolve_file(tmp_path, "vocab.txt")


def test_cached_repo_is_found_offline(tmp_path, offline):
    config_text = MobileBertConfig(hidden_size=64, num_attention_heads=2, intra_bottleneck_size=32, embedding_size=32).to_json_string()
    snapshot = fill_cache(tmp_path, files={"config.json": config_text})
    path = resolve_file(REPO, "config.json", cache_dir=tmp_path)
    assert path == str(snapshot / "config.json")
    assert MobileBertConfig.from_pretrained(REPO, cache_dir=tmp_path).hidden_size == 64
    assert resolve_file(REPO, "tokenizer.json", cache_dir=tmp_path, required=False) is None


def test_revision_is_honoured(tmp_path, offline):
    fill_cache(tmp_path, files={"config.json": '{"hidden_size": 64, "num_attention_heads": 2, "intra_bottleneck_size": 32, "embedding_size": 32}'})
    other = "0" * 40
    fill_cache(tmp_path, commit=other, ref="v2", files={"config.json": '{"hidden_size": 128}'})
    assert MobileBertConfig.from_pretrained(REPO, cache_dir=tmp_path, revision="v2").hidden_size == 128
    assert MobileBertConfig.from_pretrained(REPO, cache_dir=tmp_path, revision=other).hidden_size == 128
    assert MobileBertConfig.from_pretrained(REPO, cache_dir=tmp_path).hidden_size == 64


def test_local_files_only_without_env(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    fill_cache(tmp_path, files={"config.json": "{}"})
    assert resolve_file(REPO, "config.json", cache_dir=tmp_path, local_files_only=True).endswith("config.json")


def test_uncached_offline_error_names_repo_and_says_how(tmp_path, offline):
    with pytest.raises(FileNotFoundError) as err:
        resolve_file(REPO, "config.json", cache_dir=tmp_path)
    message = str(err.value)
    assert "'google/mobilebert-uncased'" in message and "offline mode is on" in message
    assert "pass the path of a local directory" in message


def test_neither_directory_nor_repo_id(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither an existing local directory nor a hub repo id"):
        resolve_file(str(tmp_path / "missing" / "deep" / "dir"), "config.json")
