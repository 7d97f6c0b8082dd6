"""All-or-nothing output directories: a conversion's files appear together, or not at all.

    with staged_directory(dst, remove=["model.safetensors"]) as stage:
        ...write every file into `stage`...
    # here dst holds the new files (and no longer the names in `remove`)

Every file is written into a staging directory first. When DST does not exist, the staging
directory is created beside it (in its nearest existing ancestor, so nothing else is created
on failure) and renamed to DST at the end: one atomic rename. When DST exists (--force, or a
directory without conflicting files), the staging directory lies inside DST, the new set is
complete before any old file is touched, and the files are then swapped in with renames, the
old ones kept aside until the end; if that swap is interrupted, the old files are put back.
Ctrl-C during the swap is deferred until it is done. On any failure, KeyboardInterrupt
included, the staging directory is removed and DST is as before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from typing import Iterator, Sequence

from mobilebert_common.files import current_umask

STAGING_SUFFIX = ".partial"
_OLD = ".old"  # inside the staging directory: the replaced files, until the swap is complete


def _nearest_existing(path: str) -> str:
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C back for a few renames (main thread only), then deliver it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and previous is not signal.SIG_IGN:
            raise KeyboardInterrupt


def _swap_into(stage: str, dst: str, remove: Sequence[str]) -> None:
    """Move the staged files into the existing dst, the names in `remove` out; undo everything on failure."""
    new = sorted(n for n in os.listdir(stage) if n != _OLD)
    names = new + [n for n in remove if n not in new]
    old = os.path.join(stage, _OLD)
    os.mkdir(old)
    try:
        for name in names:
            target = os.path.join(dst, name)
            if os.path.lexists(target):
                os.replace(target, os.path.join(old, name))
            if name in new:
                os.replace(os.path.join(stage, name), target)
    except BaseException:
        # Undo from what is on disk (not from bookkeeping an interruption could cut short): a name still
        # staged was never placed; a placed one is removed; whatever was set aside goes back.
        for name in names:
            target = os.path.join(dst, name)
            if name in new and not os.path.lexists(os.path.join(stage, name)) and os.path.lexists(target):
                os.remove(target)
            if os.path.lexists(os.path.join(old, name)):
                os.replace(os.path.join(old, name), target)
        raise


@contextlib.contextmanager
def staged_directory(dst, remove: Sequence[str] = ()) -> Iterator[str]:
    """Yield an empty directory to write into; its files become dst's when the block succeeds.

    ``remove``: names of dst's files that the new set makes stale (weights of an earlier save in
    another layout); they go when the new files arrive, and come back if that fails.
    """
    dst = os.path.abspath(os.fspath(dst))
    exists = os.path.isdir(dst)
    home = dst if exists else _nearest_existing(os.path.dirname(dst))
    stage = tempfile.mkdtemp(prefix=f".{os.path.basename(dst)}.", suffix=STAGING_SUFFIX, dir=home)
    os.chmod(stage, 0o777 & ~current_umask())  # mkdtemp's 0700 would become dst's mode
    try:
        yield stage
        with _sigint_deferred():
            if exists:
                _swap_into(stage, dst, remove)
            else:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.rename(stage, dst)  # the whole set at once
    finally:
        if os.path.isdir(stage):
            shutil.rmtree(stage, ignore_errors=True)
