"""Resolve a local directory or a Hugging Face hub repo id to local files.

``resolve_file("path/to/dir", "config.json")`` returns the file inside the directory;
``resolve_file("google/mobilebert-uncased", "config.json")`` goes through huggingface_hub's cache,
honouring revision, cache_dir, token, local_files_only, HF_HUB_OFFLINE and HF_ENDPOINT.

An unreachable hub is found out once per process and endpoint by a short probe
(``hub_reachable``). Without it huggingface_hub retries every HEAD request with back-off
(about 23 s and five logged warnings per file, 90 s for a tokenizer's four files) before falling
back to its cache. After a failed probe every lookup is answered from the cache alone
(local_files_only), so cached files still load at once and uncached ones fail at once with a
``HubUnavailableError`` that says why.
"""

from __future__ import annotations

import functools
import os
import ssl
import threading
import urllib.error
import urllib.request
from typing import Optional

HUB_KWARGS = ("revision", "cache_dir", "token", "local_files_only", "force_download")
DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0  # a reachable hub answers a HEAD well within this; a dead network fails fast or hangs

_TRUE = {"1", "on", "yes", "true"}


class HubUnavailableError(FileNotFoundError):
    """A hub file that cannot be had now: offline mode, or the hub unreachable, and not in the cache.

    A FileNotFoundError, so callers that handle missing files keep working; callers that can do
    without the hub (the demo's random-weight fallback) catch this class alone."""

    def __init__(self, message: str, *, repo_id: str, missing_file: str, reason: str = ""):
        # Keyword-only, and not OSError's `filename`: OSError would read extra positional
        # arguments as (errno, strerror, filename) and print "[Errno None] ...".
        super().__init__(message)
        self.repo_id = repo_id
        self.missing_file = missing_file
        self.reason = reason  # e.g. "the hub at https://huggingface.co could not be reached"


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for no network access."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_endpoint() -> str:
    """HF_ENDPOINT read now (huggingface_hub reads it once, at import), without a trailing slash."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


@functools.lru_cache(maxsize=None)
def hub_reachable(endpoint: str) -> bool:
    """Whether ``endpoint`` answers HTTP at all; asked once per process (cache_clear() to ask again).

    Any HTTP answer, an error status included, or a TLS failure (a server is there; certificates are
    huggingface_hub's business) counts as reachable. Refused connections, unknown hosts and silence
    count as unreachable. The probe runs in a daemon thread so that a hanging DNS lookup, which no
    socket timeout bounds, cannot hold the caller past the timeout either.
    """
    answer = []

    def probe():
        request = urllib.request.Request(endpoint + "/", method="HEAD")
        try:
            urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S).close()  # proxies from the environment
            answer.append(True)
        except urllib.error.HTTPError:
            answer.append(True)
        except urllib.error.URLError as err:
            answer.append(isinstance(err.reason, ssl.SSLError))
        except ssl.SSLError:
            answer.append(True)
        except (OSError, ValueError):  # timeouts, resets, a malformed HF_ENDPOINT
            answer.append(False)

    thread = threading.Thread(target=probe, name="mobilebert-hub-probe", daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S + 1.0)
    return bool(answer and answer[0])


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return (
        0 < len(parts) <= 2
        and all(parts)
        and not name.startswith((".", "~"))
        and not os.path.isabs(name)
        and all(c.isalnum() or c in "-_." for part in parts for c in part)
    )


def resolve_file(
    dir_or_repo_id: str | os.PathLike,
    filename: str,
    *,
    required: bool = True,
    revision: Optional[str] = None,
    cache_dir: Optional[str] = None,
    token: Optional[str | bool] = None,
    local_files_only: bool = False,
    force_download: bool = False,
) -> Optional[str]:
    """Path of ``filename`` in a local directory or hub repo; None if absent and not ``required``.

    Raises FileNotFoundError naming the directory or repo id and the file when it cannot be had;
    HubUnavailableError (a FileNotFoundError) when the hub is offline or unreachable and the file
    is not cached. With the hub out of reach an optional file counts as absent only when the
    repo's snapshot is cached (the other files are there); otherwise nothing is known about the
    repo and the lookup fails rather than pretend the file does not exist.
    """
    source = os.fspath(dir_or_repo_id)
    if os.path.isdir(source):
        path = os.path.join(source, filename)
        if os.path.isfile(path):
            return path
        if required:
            present = ", ".join(sorted(os.listdir(source))) or "nothing"
            raise FileNotFoundError(f"{filename} not found in directory {source} (it holds: {present})")
        return None
    if not _looks_like_repo_id(source):
        raise FileNotFoundError(
            f"{source!r} is neither an existing local directory nor a hub repo id like 'google/mobilebert-uncased'"
        )
    endpoint = hub_endpoint()
    if local_files_only or hub_offline():
        why = "offline mode is on (HF_HUB_OFFLINE / local_files_only)"
    elif not hub_reachable(endpoint):
        why = f"the hub at {endpoint} could not be reached"
    else:
        why = None
    if why is not None and force_download:
        raise HubUnavailableError(
            f"force_download asks for a fresh copy of {filename} of hub repo {source!r}, but {why}",
            repo_id=source,
            missing_file=filename,
            reason=why,
        )
    try:
        path = _download(source, filename, revision, cache_dir, token, why is not None, force_download, endpoint)
    except HubUnavailableError as err:
        if not required and _snapshot_cached(source, revision, cache_dir):
            return None  # the repo is cached without this file: an optional file, absent
        if why is None:  # the probe passed, then the hub failed (5xx, a dropped connection...)
            cause = err.__cause__ or err  # LocalEntryNotFoundError, itself caused by the failed request
            detail = cause.__cause__ or cause
            why = f"the hub at {endpoint} failed to answer ({type(detail).__name__}: {str(detail)[:200]})"
        raise HubUnavailableError(
            f"cannot get {filename} of hub repo {source!r}: {why}, and it is not in the local cache. Download it "
            f"where the hub is reachable, or pass the path of a local directory that holds the model's files "
            f"(config.json, weights, vocab.txt) instead of the repo id.",
            repo_id=source,
            missing_file=filename,
            reason=why,
        ) from None
    if path is None and required:
        raise FileNotFoundError(f"hub repo {source!r} has no file {filename}")
    return path


def _download(repo_id, filename, revision, cache_dir, token, local_files_only, force_download, endpoint):
    """hf_hub_download with its errors turned into FileNotFoundError (None: the repo lacks the file)."""
    # Imported here so that `import mobilebert_common` stays light.
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
            force_download=force_download,
            endpoint=endpoint,
        )
    except LocalEntryNotFoundError as err:
        # Not in the cache, and the hub was not asked (offline) or failed to answer.
        raise HubUnavailableError(str(err), repo_id=repo_id, missing_file=filename) from err
    except EntryNotFoundError:
        return None  # the hub answered: the repo has no such file
    except RevisionNotFoundError:
        raise FileNotFoundError(f"hub repo {repo_id!r} has no revision {revision!r}") from None
    except RepositoryNotFoundError:
        raise FileNotFoundError(
            f"hub repo {repo_id!r} does not exist or is private (pass token=...), "
            f"and no local directory of that name exists"
        ) from None
    except OSError as err:  # network errors from requests/httpx are OSErrors
        raise HubUnavailableError(str(err), repo_id=repo_id, missing_file=filename) from err


def _snapshot_cached(repo_id: str, revision: Optional[str], cache_dir: Optional[str]) -> bool:
    """Whether huggingface_hub's cache holds a snapshot of the repo at this revision
    (<cache>/models--org--name/refs/<revision> naming snapshots/<commit>, or the commit itself)."""
    from huggingface_hub import constants

    repo_dir = os.path.join(os.fspath(cache_dir or constants.HF_HUB_CACHE), "models--" + repo_id.replace("/", "--"))
    revision = revision or "main"
    ref = os.path.join(repo_dir, "refs", revision)
    commit = revision
    if os.path.isfile(ref):
        with open(ref, encoding="utf-8") as f:
            commit = f.read().strip()
    return os.path.isdir(os.path.join(repo_dir, "snapshots", commit))
