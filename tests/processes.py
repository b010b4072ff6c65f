"""Running code of ours in other processes, for tests of what separate processes do.

* :func:`python` and :func:`wait_ok`: a script as a user runs it (``python -c CODE``
  or ``python FILE``), in a fresh interpreter with this worktree's code on its path.
* :class:`Workers` and :func:`run_processes`: N processes each running a function of
  the test module, started together (each waits at a :func:`start_barrier` passed in its
  arguments), waited for with a timeout; their results come back in order, and a
  worker that fails or dies fails the test with its traceback or exit code.

The crash tests keep their zygote (tests/test_crashes.py): a different need. A warm
process forks one victim at a time, hundreds of trials in a row, and the test SIGKILLs
it at a chosen instant timed from the fork; a killed victim is the expected outcome,
not a failure, and all it reports is whether it had finished.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# forkserver: every worker is forked from a fresh server process (nothing of the threaded
# pytest process is inherited), which imported the heavy modules once: 16 workers start
# in a second, not in half a minute of imports on a loaded 2-core machine. Missing
# modules are skipped: the project, the backends, and the parts of aiobotocore that
# s3fs only imports when it makes its first client.
CONTEXT = multiprocessing.get_context("forkserver")
_PRELOAD = [
    "artifacts",
    "remotes",
    "cas.storage.s3",
    "cas.storage.gcs",
    "tests.servers",
    "aiobotocore.session",
    "aiobotocore.client",
    "aiobotocore.endpoint",
    "aiobotocore.httpsession",
]
CONTEXT.set_forkserver_preload(list(_PRELOAD))


def preload(module: str) -> None:
    """Have the server import ``module`` too, once rather than in every worker.

    A test module with workers calls it with its ``__name__`` when imported: pytest
    imports every test module before the first test starts the (one) server.
    """
    _PRELOAD.append(module)
    CONTEXT.set_forkserver_preload(list(_PRELOAD))


START_TIMEOUT = 120  # for a barrier: spawning and importing on a loaded machine is slow

Call = tuple[Callable[..., Any], tuple]


def python(*argv: str, cwd: Path) -> subprocess.Popen[str]:
    """``python ARGV`` in ``cwd``, in this process's environment as it is now."""
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ok(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """Its standard output, once it exits; fail with its standard error if it fails."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def start_barrier(parties: int) -> Any:
    """A barrier for ``parties`` workers: each calls ``.wait(START_TIMEOUT)`` to start
    together with the others, so that their writes really overlap."""
    return CONTEXT.Barrier(parties)


def _child(fn: Callable[..., Any], args: tuple, out: str, env: dict[str, str]) -> None:
    # The forkserver started with the environment of its time: take the test's, now.
    os.environ.clear()
    os.environ.update(env)
    try:
        payload = {"ok": True, "result": fn(*args)}
    except BaseException:  # noqa: BLE001 - the parent reports it
        payload = {"ok": False, "error": traceback.format_exc()}
    Path(out).write_text(json.dumps(payload))


class Workers:
    """Processes running ``fn(*args)``, one per call, started by the forkserver.

    ``fn`` must be a module-level function and its result plain JSON data.
    """

    def __init__(self, calls: list[Call], tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "xdg-cache")}  # pack-index caches
        self.outs = [tmp / f"result-{i}.json" for i in range(len(calls))]
        self.procs = [
            CONTEXT.Process(target=_child, args=(fn, args, str(out), env))
            for (fn, args), out in zip(calls, self.outs, strict=True)
        ]
        for proc in self.procs:
            proc.start()

    def wait(self, which: list[int] | None = None, timeout: float = 300) -> None:
        """Wait for the workers ``which`` (all by default) to end; fail as soon as one
        fails, rather than after the others (which may wait for it at a barrier)."""
        pending = list(range(len(self.procs))) if which is None else list(which)
        deadline = time.monotonic() + timeout
        while True:
            for i in [i for i in pending if not self.procs[i].is_alive()]:
                self.result(i)  # fail at once, with its traceback, if it failed
                pending.remove(i)
            if not pending:
                return
            left = deadline - time.monotonic()
            assert left > 0, f"workers {pending} still running after {timeout} s"
            multiprocessing.connection.wait([self.procs[i].sentinel for i in pending], left)

    def result(self, i: int) -> Any:
        out = self.outs[i]
        assert out.exists(), f"worker {i} died with exit code {self.procs[i].exitcode}"
        payload = json.loads(out.read_text())
        assert payload["ok"], f"worker {i} failed:\n{payload['error']}"
        return payload["result"]

    def kill(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join()


def run_processes(calls: list[Call], tmp: Path, timeout: float = 300) -> list[Any]:
    """Run ``fn(*args)`` for each call in a process of its own; their results, in order.

    A worker that raises fails the test with the worker's traceback.
    """
    workers = Workers(calls, tmp)
    try:
        workers.wait(timeout=timeout)
        return [workers.result(i) for i in range(len(calls))]
    finally:
        workers.kill()
