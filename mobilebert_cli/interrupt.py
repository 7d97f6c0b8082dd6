"""Ctrl-C in the `mobilebert` commands: one line on stderr and exit status 130, no traceback.

Inside ``handled(prog)`` Ctrl-C (SIGINT) raises KeyboardInterrupt, as Python's own handler does, so
that cleanups (finally blocks, temporary directories) run while it unwinds; the handler also notes
that it fired, because extension code may turn the KeyboardInterrupt into another error on the way
(an interrupted `import numpy` raises ImportError "Importing the numpy C-extensions failed"). Any
error that follows a Ctrl-C therefore counts as the interrupt. Once unwound, the process ends with
os._exit(130): after a KeyboardInterrupt inside some extensions' start-up code, CPython would
otherwise end itself by SIGINT at exit (status -2 to a parent process) instead of 130.

Not covered: Python's own start-up (site-packages hooks), before any of this code runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

EXIT_STATUS = 130  # 128 + SIGINT: what a shell reports for a command that Ctrl-C ended

_received = False  # a Ctrl-C arrived inside handled()


def _on_sigint(signum, frame):
    global _received
    _received = True
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    """For an error handler that reports and goes on: an error caused by a Ctrl-C is the interrupt."""
    if _received:
        raise KeyboardInterrupt


def _exit(prog: str):
    print(f"{prog}: interrupted", file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):  # os._exit skips the interpreter's own flush
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or file
            pass
    os._exit(EXIT_STATUS)


@contextlib.contextmanager
def handled(prog: str):
    """Ctrl-C anywhere in the block ends the process as described in the module docstring. A
    SIGINT that is ignored (`nohup`, a background job) or handled by the application stays so."""
    previous = signal.getsignal(signal.SIGINT)
    # Only the main thread may set handlers (and Python runs them there only).
    mine = previous in (signal.default_int_handler, _on_sigint) and threading.current_thread() is threading.main_thread()
    if mine:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    except BaseException:
        if not (mine and _received):
            raise
        _exit(prog)
    finally:
        if mine:
            signal.signal(signal.SIGINT, previous)
