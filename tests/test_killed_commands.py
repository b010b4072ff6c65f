"""The command line in a project directory, killed at any instant, as users run it.

A project keeps its store in ``.artifacts/`` and its files beside it; commands are
killed by Ctrl-C, a CI timeout (SIGTERM) or the OOM killer (SIGKILL). Whatever
instant that lands, the next run of the command must finish the job and leave nothing
of the killed one behind, and the store must stay sound.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

import artifacts
from artifacts import Artifact
from cas import Repository
from cas.fsck import fsck
from tests.helpers import tree_of, workspace, write
from tests.processes import python, wait_ok

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with one version of 600 small files and a 4 MiB one, ``data:v0``."""
    root = workspace(tmp_path / "project", monkeypatch)
    for i in range(600):
        write(root / "src" / f"d{i % 12}" / f"f{i}", os.urandom(64 + i))
    write(root / "src" / "big", os.urandom(4 << 20))
    artifact = Artifact("data", "dataset")
    artifact.add_dir("src")
    with artifacts.init() as run:
        run.log_artifact(artifact)
    return root


def artifacts_cli(project: Path, *argv: str) -> str:
    return wait_ok(python("-m", "artifacts", *argv, cwd=project))


def leftovers(project: Path) -> list[str]:
    return sorted(name for name in os.listdir(project) if ".part-" in name)


def test_a_download_killed_while_staging_leaves_nothing_once_run_again(project):
    """Into a new directory, a download writes a hidden staging directory beside it; a
    kill that no cleanup survives (SIGKILL, SIGTERM) leaves it behind. The next
    download beside it removes it."""
    started = time.monotonic()
    artifacts_cli(project, "download", "data:v0", "out")
    took = time.monotonic() - started
    expected = tree_of(project / "out")
    left_behind = 0
    for trial, share in enumerate((0.5, 0.6, 0.7, 0.8, 0.9, 0.95)):
        shutil.rmtree(project / "out", ignore_errors=True)
        proc = python("-m", "artifacts", "download", "data:v0", "out", cwd=project)
        time.sleep(took * share)
        proc.send_signal(signal.SIGKILL if trial % 2 else signal.SIGTERM)
        proc.communicate()
        left_behind += bool(leftovers(project))
        artifacts_cli(project, "download", "data:v0", "out")
        assert leftovers(project) == []
        assert tree_of(project / "out") == expected
    assert left_behind, "no kill landed while the download was staging: slow it down"
    assert fsck(Repository.open(str(project / ".artifacts"))).ok


def test_a_staging_directory_in_use_is_left_alone(project):
    """Another download staging beside the same root holds its directory's lock: only
    an abandoned staging directory is removed."""
    busy = project / ".out.part-busy1234"
    write(busy / "half", b"half")
    lock = os.open(busy, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        artifacts_cli(project, "download", "data:v0", "out")
        assert (busy / "half").read_bytes() == b"half"
    finally:
        os.close(lock)
    shutil.rmtree(project / "out")
    artifacts_cli(project, "download", "data:v0", "out")
    assert leftovers(project) == []
