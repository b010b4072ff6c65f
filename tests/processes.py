"""Running code of ours in other processes, for tests of what separate processes do.

* :func:`python` and :func:`wait_ok`: a script as a user runs it (``python -c CODE``
  or ``python FILE``), in a fresh interpreter with this worktree's code on its path.

Racing workers that run a function of the test module in processes of their own are
in tests/test_reliability_races.py (``Workers``, ``run_processes``); the crash tests
fork their victims from a zygote of their own (tests/test_crashes.py), to kill each
at a chosen instant without paying an interpreter's start every time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
