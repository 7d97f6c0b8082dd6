"""Hub resolution, tested offline against a cache directory filled in huggingface_hub's layout."""

import http.server
import logging
import os
import socket
import threading
import time

import pytest

import mobilebert_common.hub as hub
from mobilebert_common import MobileBertConfig, MobileBertTokenizerFast
from mobilebert_common.hub import HubUnavailableError, resolve_file
from tests.harness.hub import REPO, fill_cache

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


# ------------------------------------------------------------------ an unreachable hub (HF_HUB_OFFLINE unset)

TINY_VOCAB = "".join(t + "\n" for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s"])


def closed_port() -> int:
    """A local port nothing listens on (bound, then released): connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unreachable(monkeypatch):
    """The hub endpoint is a closed local port and offline mode is off: huggingface_hub would retry
    each HEAD with back-off (about 23 s a file) unless the suite notices the hub is out of reach."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    hub.hub_reachable.cache_clear()
    yield endpoint
    hub.hub_reachable.cache_clear()


def test_unreachable_hub_still_serves_cached_files_fast_and_quietly(tmp_path, unreachable, caplog, capfd):
    fill_cache(tmp_path, files={"vocab.txt": TINY_VOCAB, "config.json": "{}"})
    started = time.perf_counter()
    with caplog.at_level(logging.DEBUG, logger="huggingface_hub"):
        tok = MobileBertTokenizerFast.from_pretrained(REPO, cache_dir=tmp_path)
        assert resolve_file(REPO, "config.json", cache_dir=tmp_path).endswith("config.json")
        # the snapshot is cached, so a file it lacks is absent (not "cannot be had")
        assert resolve_file(REPO, "tokenizer.json", cache_dir=tmp_path, required=False) is None
    assert time.perf_counter() - started < 5
    assert tok("hello worlds")["input_ids"] == [2, 5, 6, 7, 3]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "Retrying" not in capfd.readouterr().err
    assert hub.hub_reachable.cache_info().misses == 1  # probed once for all the files


def test_unreachable_hub_uncached_says_so_fast(tmp_path, unreachable):
    started = time.perf_counter()
    with pytest.raises(HubUnavailableError) as err:
        MobileBertTokenizerFast.from_pretrained(REPO, cache_dir=tmp_path)
    assert time.perf_counter() - started < 5
    message = str(err.value)
    assert f"hub repo '{REPO}'" in message and f"the hub at {unreachable} could not be reached" in message
    assert "pass the path of a local directory" in message
    assert "neither vocab.txt nor tokenizer.json" not in message
    assert err.value.repo_id == REPO
    # an optional file of a repo with nothing cached is "cannot be had", never "absent"
    with pytest.raises(HubUnavailableError, match="could not be reached"):
        resolve_file(REPO, "tokenizer.json", cache_dir=tmp_path, required=False)
    with pytest.raises(HubUnavailableError, match="force_download"):
        fill_cache(tmp_path, files={"config.json": "{}"})
        resolve_file(REPO, "config.json", cache_dir=tmp_path, force_download=True)


def test_offline_optional_file_of_uncached_repo_is_not_absent(tmp_path, offline):
    with pytest.raises(HubUnavailableError, match="offline mode is on"):
        resolve_file(REPO, "tokenizer_config.json", cache_dir=tmp_path, required=False)
    with pytest.raises(FileNotFoundError, match="offline mode is on"):
        MobileBertTokenizerFast.from_pretrained(REPO, cache_dir=tmp_path)


class RecordingHub(http.server.BaseHTTPRequestHandler):
    """A local stand-in for the hub: the root answers, every repo file is "entry not found" (404)
    or, with file_status set otherwise, that HTTP error."""

    seen = []  # (path, Authorization header) of every request
    file_status = 404

    def do_HEAD(self):
        RecordingHub.seen.append((self.path, self.headers.get("Authorization")))
        if self.path == "/":
            self.send_response(200)
        else:
            self.send_response(self.file_status)
            if self.file_status == 404:
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("X-Error-Message", "Entry not found")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args):
        pass


@pytest.fixture
def local_hub(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RecordingHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    # huggingface_hub reads HF_HUB_OFFLINE once, at import, which an earlier offline test may have done
    monkeypatch.setattr(pytest.importorskip("huggingface_hub.constants"), "HF_HUB_OFFLINE", False)
    hub.hub_reachable.cache_clear()
    RecordingHub.seen.clear()
    yield endpoint
    server.shutdown()
    server.server_close()
    hub.hub_reachable.cache_clear()


def test_reachable_hub_gets_the_token_and_absent_means_absent(tmp_path, local_hub):
    assert resolve_file(REPO, "tokenizer.json", cache_dir=tmp_path, token="hf_secret", required=False) is None
    file_requests = [auth for path, auth in RecordingHub.seen if path != "/"]
    assert file_requests and set(file_requests) == {"Bearer hf_secret"}
    assert any(path.endswith("/google/mobilebert-uncased/resolve/main/tokenizer.json") for path, _ in RecordingHub.seen)
    with pytest.raises(FileNotFoundError, match=f"hub repo '{REPO}' has no file config.json") as err:
        resolve_file(REPO, "config.json", cache_dir=tmp_path, token="hf_secret")
    assert not isinstance(err.value, HubUnavailableError)


def test_hub_that_answers_then_fails_names_the_failure(tmp_path, local_hub, monkeypatch):
    # Up (the root answers), every file refused. (A 5xx would do as well, after huggingface_hub's
    # own retries of about 23 s, which are right for a hub that is there but busy.)
    monkeypatch.setattr(RecordingHub, "file_status", 403)
    with pytest.raises(HubUnavailableError, match=rf"the hub at {local_hub} failed to answer \(.*403"):
        resolve_file(REPO, "config.json", cache_dir=tmp_path)
