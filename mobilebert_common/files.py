"""Writing files safely: a temporary file in the destination directory, renamed into place.

An interrupted or failed write therefore leaves no half-written file behind, and the previous
file (if any) stays intact until the new one is complete. The file gets the mode a plain
open() would give it (0666 less the umask), not the temporary file's 0600.

Signals: Ctrl-C (SIGINT) raises KeyboardInterrupt, so an interrupted write cleans up after itself,
but SIGTERM and SIGHUP (a timeout, `kill`, a cancelled job, a closed terminal) end the process on the
spot. While a write is under way (`interruptible`) they unwind the same way, as `Interrupted`, and
the process then ends as the signal would have ended it. The few steps that must not be cut in two
(creating a temporary file and owning it, a set of renames) hold all three back (`signals_deferred`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from typing import Iterator

_UMASK_LOCK = threading.Lock()
_UNWINDING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_HELD = (signal.SIGINT, *_UNWINDING)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP (``signum``), raised where it arrived so that cleanups run as they do for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(f"{signal.Signals(signum).name} received")
        self.signum = signum


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # the only thread that runs signal handlers


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """In the block, SIGTERM and SIGHUP raise Interrupted, as SIGINT raises KeyboardInterrupt.

    Only a signal left at its default action (death without cleanup) is taken over, and only until
    the block ends: a handler of the application's, SIG_IGN (nohup) and a nested block are left alone.
    An Interrupted that leaves the block ends the process with that signal, as it would have without
    us; a caller that wants to go on (the conversion CLI, to say so and exit) catches it inside.
    """
    mine = [s for s in _UNWINDING if _main_thread() and signal.getsignal(s) is signal.SIG_DFL]
    for s in mine:
        signal.signal(s, _raise_interrupted)
    try:
        yield
    except Interrupted as err:
        if err.signum in mine:
            signal.signal(err.signum, signal.SIG_DFL)
            signal.raise_signal(err.signum)  # the cleanups have run: now the signal's own end
        raise
    finally:
        for s in mine:
            signal.signal(s, signal.SIG_DFL)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back while the block runs (main thread only), then deliver each
    one received to the handler it would have reached."""
    if not _main_thread():
        yield
        return
    received = []
    previous = {s: h for s in _HELD if (h := signal.getsignal(s)) is not None}  # None: set outside Python, not restorable
    for s in previous:
        signal.signal(s, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


def current_umask() -> int:
    """The process umask (reading it means setting it: done under a lock, restored at once)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = None
    with interruptible():
        try:
            with signals_deferred():  # no signal between creating the file and `tmp` naming it for the cleanup
                fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
                os.close(fd)
            yield tmp
            os.chmod(tmp, 0o666 & ~current_umask())
            os.replace(tmp, path)
        except BaseException:
            if tmp is not None:
                with signals_deferred(), contextlib.suppress(FileNotFoundError):
                    os.remove(tmp)
            raise


def atomic_write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
