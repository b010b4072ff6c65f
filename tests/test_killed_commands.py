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
import subprocess
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
    # A loaded machine shifts the staging window: more instants until one kill lands.
    for trial, share in enumerate((0.6, 0.75, 0.9, 0.97, 0.5, 0.85, 0.95, 0.99, 0.7, 0.8)):
        if trial >= 4 and left_behind:
            break
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


def test_a_checkout_into_the_project_root_killed_at_any_instant_is_finished_by_the_next(project):
    """Killed while it deletes or writes, a checkout into the project's root (beside the
    store) leaves the store sound, and the next one makes the root exactly the version."""
    with artifacts.init() as run:
        other = Artifact("other", "dataset")
        other.add_file(write(project / "one", b"one"), name="src/d0/f0")
        run.log_artifact(other)
    expected = {"data:v0": tree_of(project / "src"), "other:v0": {"src/d0/f0": b"one"}}
    started = time.monotonic()
    artifacts_cli(project, "checkout", "data:v0", ".")
    took = time.monotonic() - started
    for trial, share in enumerate((0.4, 0.6, 0.8, 0.95)):
        spec, then = ("other:v0", "data:v0") if trial % 2 else ("data:v0", "other:v0")
        proc = python("-m", "artifacts", "checkout", spec, ".", cwd=project)
        time.sleep(took * share)
        proc.send_signal((signal.SIGKILL, signal.SIGTERM, signal.SIGINT)[trial % 3])
        proc.communicate()
        artifacts_cli(project, "checkout", then, ".")
        artifacts_cli(project, "verify", then, ".")
        files = {p: d for p, d in tree_of(project).items() if not p.startswith(".artifacts/")}
        assert files == expected[then]
    assert fsck(Repository.open(str(project / ".artifacts"))).ok


_HOLD_EVERY_LOCK = """
import fcntl, os, sys, time
held = [os.open(os.path.join(sys.argv[1], n), os.O_RDWR) for n in os.listdir(sys.argv[1])]
for fd in held:
    fcntl.flock(fd, fcntl.LOCK_EX)
print(len(held), flush=True)
time.sleep(60)
"""


def test_locks_held_by_a_killed_process_stall_no_one(project):
    """A writer SIGKILLed inside a ref's compare-and-swap (every lock of the store held):
    the kernel drops its locks, and the next log takes its usual time."""
    holder = python("-c", _HOLD_EVERY_LOCK, str(project / ".artifacts" / "locks"), cwd=project)
    assert int(holder.stdout.readline()) > 0
    holder.kill()
    holder.communicate()
    write(project / "src" / "new", b"new")
    proc = python("-m", "artifacts", "log", "src", "--name", "data", cwd=project)
    assert wait_ok(proc, timeout=30).strip().endswith("data:v1")  # a stall fails here


# ---- temporary files beside a download's destinations ---------------------------------

REF_BYTES = b"referenced bytes"


@pytest.fixture
def piped(project: Path) -> Path:
    """``pipe:v0`` (a file ``a`` and, at ``deep/sub/ref``, a reference to a local file) and
    ``near:v0`` (a file in ``deep/sub``), written to ``out``; then the referenced file
    becomes a FIFO, so that a download of ``pipe:v0`` waits with its temporary file of
    ``deep/sub/ref`` open, until the test writes the bytes into the FIFO. Its path."""
    target = Path(write(project / "elsewhere" / "ref", REF_BYTES))
    with artifacts.init() as run:
        pipe = Artifact("pipe", "dataset")
        pipe.add_file(write(project / "elsewhere" / "a", b"a"), name="a")
        pipe.add_reference(f"file://{target}", name="deep/sub/ref")
        run.log_artifact(pipe)
        near = Artifact("near", "dataset")
        near.add_file(write(project / "elsewhere" / "near", b"near"), name="deep/sub/near")
        run.log_artifact(near)
    artifacts_cli(project, "download", "pipe:v0", "out")
    target.unlink()
    os.mkfifo(target)
    return target


def parts(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name.startswith(".part-"))


def stuck_download(project: Path, fifo: Path) -> tuple[subprocess.Popen[str], list[Path]]:
    """``download pipe:v0 out`` waiting on ``fifo``, and its temporary files by then."""
    proc = python("-m", "artifacts", "download", "pipe:v0", "out", cwd=project)
    deadline = time.monotonic() + 30
    while not (found := parts(project / "out" / "deep" / "sub")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the download never opened its temporary file"
        time.sleep(0.01)
    return proc, found


def killed_download(project: Path, fifo: Path) -> list[Path]:
    """The temporary files a ``download pipe:v0 out`` SIGKILLed mid-file leaves."""
    proc, found = stuck_download(project, fifo)
    proc.kill()
    proc.communicate()
    assert parts(project / "out") == found
    return found


def test_a_download_killed_into_a_directory_with_files_leaves_nothing_once_run_again(
    project, piped
):
    """Into a directory with files, each file is written under a temporary name beside
    its destination, here in a subdirectory; a SIGKILL leaves it. Neither verify nor
    checkout take it for the user's file, and the next download or checkout removes it."""
    killed_download(project, piped)
    piped.unlink()
    write(piped, REF_BYTES)
    artifacts_cli(project, "verify", "pipe:v0", "out")
    artifacts_cli(project, "download", "pipe:v0", "out")
    assert parts(project / "out") == []
    assert tree_of(project / "out") == {"a": b"a", "deep/sub/ref": REF_BYTES}

    piped.unlink()
    os.mkfifo(piped)
    killed_download(project, piped)
    piped.unlink()
    write(piped, REF_BYTES)
    said = artifacts_cli(project, "checkout", "pipe:v0", "out")
    assert "removed" not in said
    assert parts(project / "out") == []
    assert tree_of(project / "out") == {"a": b"a", "deep/sub/ref": REF_BYTES}


def test_a_live_download_keeps_its_temporary_files(project, piped):
    """A download or checkout into the same directory as a live download leaves the
    temporary file it is writing alone, and the live one finishes."""
    proc, found = stuck_download(project, piped)
    try:
        artifacts_cli(project, "download", "near:v0", "out")
        # --force: deep/sub/ref holds a reference's bytes, which the store does not hold
        said = artifacts_cli(project, "checkout", "near:v0", "out", "--force")
        assert parts(project / "out") == found
        assert "removed 2 other files" in said  # a and deep/sub/ref, not the .part-
        with open(piped, "wb") as feed:
            feed.write(REF_BYTES)
        wait_ok(proc)
    finally:
        proc.kill()
    assert parts(project / "out") == []
    assert tree_of(project / "out") == {"deep/sub/near": b"near", "deep/sub/ref": REF_BYTES}
