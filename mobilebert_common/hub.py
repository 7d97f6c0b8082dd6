"""Resolve a local directory or a Hugging Face hub repo id to local files.

``resolve_file("path/to/dir", "config.json")`` returns the file inside the directory;
``resolve_file("google/mobilebert-uncased", "config.json")`` goes through huggingface_hub's cache,
honouring revision, cache_dir, token, local_files_only and the HF_HUB_OFFLINE environment variable.
"""

from __future__ import annotations

import os
from typing import Optional

HUB_KWARGS = ("revision", "cache_dir", "token", "local_files_only", "force_download")

_TRUE = {"1", "on", "yes", "true"}


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for no network access."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


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

    Raises FileNotFoundError naming the directory or repo id and the file when it cannot be had.
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
    return _download(source, filename, required, revision, cache_dir, token, local_files_only or hub_offline(), force_download)


def _download(repo_id, filename, required, revision, cache_dir, token, local_files_only, force_download):
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
        )
    except LocalEntryNotFoundError:
        # Not in the cache, and the hub was not asked (offline) or could not be reached.
        if not required:
            return None
        how = "offline mode is on (HF_HUB_OFFLINE / local_files_only)" if local_files_only else "the hub could not be reached"
        raise FileNotFoundError(
            f"cannot get {filename} of hub repo {repo_id!r}: {how} and it is not in the local cache. "
            f"Download it where the hub is reachable, or pass the path of a local directory that holds "
            f"config.json and the weights instead of the repo id."
        ) from None
    except EntryNotFoundError:
        if required:
            raise FileNotFoundError(f"hub repo {repo_id!r} has no file {filename}") from None
        return None
    except RevisionNotFoundError:
        raise FileNotFoundError(f"hub repo {repo_id!r} has no revision {revision!r}") from None
    except RepositoryNotFoundError:
        raise FileNotFoundError(
            f"hub repo {repo_id!r} does not exist or is private (pass token=...), "
            f"and no local directory of that name exists"
        ) from None
    except OSError as err:  # network errors from requests/httpx are OSErrors
        if not required:
            return None
        raise FileNotFoundError(
            f"cannot get {filename} of hub repo {repo_id!r}: {err}. Pass the path of a local directory instead."
        ) from None

