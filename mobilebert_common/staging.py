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

Signals: SIGINT, SIGTERM and SIGHUP unwind the block (mobilebert_common.files.interruptible) and
are held back during the renames, so on any failure or signal the staging directory is removed and
DST is as before. SIGKILL leaves the staging directory behind: its name holds the owner's host and
pid (`.<dst name>.<host>-<pid>.<random>.partial`), and the next staging into DST removes those of
dead processes, first undoing a swap they cut short (its journal names the files).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import warnings
from typing import Iterator, List, Sequence

from mobilebert_common.files import atomic_write_text, current_umask, interruptible, signals_deferred

STAGING_SUFFIX = ".partial"
_OLD = ".old"  # inside the staging directory: the replaced files, until the swap is complete
_JOURNAL = ".swap.json"  # inside the staging directory while a swap is under way: {"new": [...], "names": [...]}


def _nearest_existing(path: str) -> str:
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _owner_prefix(dst: str) -> str:
    return f".{os.path.basename(dst)}.{socket.gethostname()}-"  # + pid: dead owners' directories are removable


def _alive(pid: int) -> bool:
    if os.name != "posix":  # no signal 0 to ask with: treat every owner as alive (nothing is removed)
        return True
    try:
        os.kill(pid, 0)  # sends nothing; says whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, under another user
        return True
    return True


def _undo_swap(stage: str, dst: str, new: Sequence[str], names: Sequence[str]) -> None:
    """Put dst back as it was, from what is on disk (not from bookkeeping an interruption could cut short):
    a name still staged was never placed; a placed one goes back into the stage; whatever was set aside
    goes back into dst. Each step reverses one rename of the swap, so an undo cut short can be run again."""
    old = os.path.join(stage, _OLD)
    for name in names:
        target = os.path.join(dst, name)
        if name in new and not os.path.lexists(os.path.join(stage, name)) and os.path.lexists(target):
            os.replace(target, os.path.join(stage, name))
        if os.path.lexists(os.path.join(old, name)):
            os.replace(os.path.join(old, name), target)


def _swap_into(stage: str, dst: str, remove: Sequence[str]) -> None:
    """Move the staged files into the existing dst, the names in `remove` out; undo everything on failure."""
    new = sorted(os.listdir(stage))
    names = new + [n for n in remove if n not in new]
    os.mkdir(os.path.join(stage, _OLD))
    journal = os.path.join(stage, _JOURNAL)
    atomic_write_text(journal, json.dumps({"new": new, "names": names}))  # for a later run, if we are killed
    try:
        for name in names:
            target = os.path.join(dst, name)
            if os.path.lexists(target):
                os.replace(target, os.path.join(stage, _OLD, name))
            if name in new:
                os.replace(os.path.join(stage, name), target)
        os.remove(journal)  # complete: nothing to undo
    except BaseException:
        _undo_swap(stage, dst, new, names)
        raise


def _remove_dead_stages(home: str, dst: str) -> List[str]:
    """Remove the staging directories for dst in `home` whose owner (this host, that pid) is gone."""
    owned = re.compile(re.escape(_owner_prefix(dst)) + r"(\d+)\.\w+" + re.escape(STAGING_SUFFIX))
    removed = []
    for entry in sorted(os.listdir(home)):
        match = owned.fullmatch(entry)
        if not match or _alive(int(match[1])):
            continue
        stage = os.path.join(home, entry)
        journal = os.path.join(stage, _JOURNAL)
        if os.path.isfile(journal):  # killed during a swap into `home`: its old files go back first
            with open(journal, encoding="utf-8") as f:
                swap = json.load(f)
            _undo_swap(stage, home, swap["new"], swap["names"])
        shutil.rmtree(stage)
        removed.append(stage)
    return removed


@contextlib.contextmanager
def staged_directory(dst, remove: Sequence[str] = ()) -> Iterator[str]:
    """Yield an empty directory to write into; its files become dst's when the block succeeds.

    ``remove``: names of dst's files that the new set makes stale (weights of an earlier save in
    another layout); they go when the new files arrive, and come back if that fails.
    """
    dst = os.path.abspath(os.fspath(dst))
    exists = os.path.isdir(dst)
    beside = _nearest_existing(os.path.dirname(dst))
    home = dst if exists else beside
    for where in dict.fromkeys([home, beside]):
        for stale in _remove_dead_stages(where, dst):
            warnings.warn(f"removed {stale}, which a killed conversion into {dst} had left", UserWarning, stacklevel=3)
    stage = None
    with interruptible():
        try:
            with signals_deferred():  # no signal between creating the directory and `stage` naming it for the cleanup
                stage = tempfile.mkdtemp(prefix=f"{_owner_prefix(dst)}{os.getpid()}.", suffix=STAGING_SUFFIX, dir=home)
            os.chmod(stage, 0o777 & ~current_umask())  # mkdtemp's 0700 would become dst's mode
            yield stage
            with signals_deferred():
                if exists:
                    _swap_into(stage, dst, remove)
                else:
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    os.rename(stage, dst)  # the whole set at once
        finally:
            if stage is not None and os.path.isdir(stage):
                with signals_deferred():
                    shutil.rmtree(stage, ignore_errors=True)
