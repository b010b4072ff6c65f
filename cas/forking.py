"""Forking only where it is safe: in a process that runs no other thread.

``fork()`` copies the calling thread alone. A lock another thread held at that
instant (the lock of a module it was importing, a stream's while it waited in
a read or a write, a lock inside a C library) stays held in the child, by no
one, and a child that needs it waits forever: the log hangs, saying nothing.
This is a library: it runs inside training scripts full of threads (data
loaders, progress bars, uploaders, fsspec's event loop). So before forking it
asks :func:`alone`; when other threads run, the work goes to a fresh process
instead (:func:`call_alone`: fork and exec copy no lock), which is alone and may
fork in turn. Python 3.12 warns of such forks, and 3.14 no longer forks by
default for this reason.

Not multiprocessing's "forkserver" or "spawn": both run the caller's ``__main__``
script again in every worker (an unguarded training script would train again).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from .errors import CasError

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where `cas` is found
_HELPER = f"import sys; sys.path = [{_ROOT!r}, *filter(None, sys.path)]; "
_HELPER += "from cas.forking import _serve; _serve()"  # without '' (cwd) on the path
_SETTLE_MS = 20  # measured here: 0.3 ms at the median, 3.5 ms at most, once loaded


def alone() -> bool:
    """Is this the process's only thread? C libraries' threads count too (an OpenMP
    pool, a client's I/O thread): where /proc is, their locks are as dangerous."""
    try:
        for _ in range(_SETTLE_MS):
            if len(os.listdir("/proc/self/task")) == 1:
                return True
            if threading.active_count() > 1:
                return False
            # Threads just joined (a pool shut down, blake3's) take a moment to leave.
            time.sleep(0.001)
        return False
    except OSError:  # no /proc: Python's own threads are all that can be seen
        return threading.active_count() == 1


def call_alone(
    function: Callable[..., Any], args: tuple, on_message: Callable[[Any], object]
) -> Any:
    """``function(*args, send)`` run in a fresh process; each ``send(x)`` there is
    ``on_message(x)`` here. Returns what it returns, raises what it raises.

    ``function`` and everything passed must pickle (a module-level function does).
    The process has a session of its own, so the terminal's Ctrl-C reaches this one
    only: interrupted, it kills the helper and whatever the helper forked."""
    helper = subprocess.Popen(
        [sys.executable, "-c", _HELPER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        with contextlib.suppress(BrokenPipeError):  # it died: said below, its replies ended
            with helper.stdin:  # type: ignore[union-attr]
                pickle.dump((function, args), helper.stdin)
        while True:
            try:
                kind, value = pickle.load(helper.stdout)  # type: ignore[arg-type]
            except Exception:  # it died (its traceback is on stderr), or its error is unreadable
                raise CasError(f"a helper process failed (exit status {helper.wait()})") from None
            if kind == "message":
                on_message(value)
            elif kind == "error":
                raise value
            else:
                return value
    except BaseException:
        with contextlib.suppress(ProcessLookupError):  # its group: the helper and its workers
            os.killpg(helper.pid, signal.SIGKILL)
        raise
    finally:
        helper.stdout.close()  # type: ignore[union-attr]
        helper.wait()


def _serve() -> None:
    """The helper: a call on stdin, its messages and then its result on stdout."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what anything prints goes to stderr, not among the replies
    function, args = pickle.load(sys.stdin.buffer)

    def send(kind: str, value: object) -> None:
        pickle.dump((kind, value), replies)
        replies.flush()

    try:
        result = function(*args, partial(send, "message"))
    except Exception as error:  # noqa: BLE001 - raised again by the caller
        send("error", error)
    else:
        send("done", result)
