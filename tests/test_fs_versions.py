"""One ``artifacts://`` call over ``:latest`` or an alias reads one version, while
another process logs a new one in the middle of the call."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import artifacts
from artifacts.fs import ArtifactsFileSystem

ROOT = Path(__file__).resolve().parent.parent
OLD = {"a.txt": b"old a\n", "c.txt": b"old c\n", "sub/b.txt": b"old b\n"}
NEW = {"a.txt": b"new a\n", "c.txt": b"new c\n", "sub/b.txt": b"new b\n"}

WRITER = """
import sys
import artifacts

with artifacts.init(entity="e", project="p", store=sys.argv[1]) as run:
    ds = artifacts.Artifact("ds", "dataset")
    ds.add_dir(sys.argv[2])
    run.log_artifact(ds, aliases=["best"])
"""


def _write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


class WriterMidCall(ArtifactsFileSystem):
    """Once the first file of a call is opened, ``writer`` runs (then never again)."""

    writer: Callable[[], None] | None = None

    def _open(self, path: str, *args: Any, **kwargs: Any) -> Any:
        opened = super()._open(path, *args, **kwargs)
        writer, self.writer = self.writer, None
        if writer is not None:
            writer()
        return opened


@pytest.fixture
def fs(tmp_path: Path) -> WriterMidCall:
    """e/p/ds v0 (OLD, alias best), and a filesystem on which another process logs v1
    (NEW, alias best moved to it) right after the first file a call opens."""
    store = str(tmp_path / "store")
    with artifacts.init(entity="e", project="p", store=store) as run:
        ds = artifacts.Artifact("ds", "dataset")
        ds.add_dir(str(_write(tmp_path / "old", OLD)))
        run.log_artifact(ds, aliases=["best"])
    new = _write(tmp_path / "new", NEW)

    def log_new_version() -> None:
        subprocess.run(
            [sys.executable, "-c", WRITER, store, str(new)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
            timeout=60,
        )

    fs = WriterMidCall(store=store, skip_instance_cache=True)
    fs.writer = log_new_version
    return fs


def test_a_recursive_get_of_latest_downloads_one_version(fs: WriterMidCall, tmp_path: Path) -> None:
    log, seen = fs.writer, []
    assert log is not None

    def log_then_read_in_another_thread() -> None:
        log()
        with ThreadPoolExecutor(1) as pool:  # the same instance: the get's version is its own
            seen.append(pool.submit(fs.cat_file, "e/p/ds:latest/a.txt").result())

    fs.writer = log_then_read_in_another_thread
    fs.get("artifacts://e/p/ds:latest/", str(tmp_path / "out"), recursive=True)
    assert seen == [NEW["a.txt"]]  # v1 was logged during the get
    assert _tree(tmp_path / "out") == OLD  # v0 exactly, not a mix with v1
    assert fs.cat_file("e/p/ds:latest/sub/b.txt") == NEW["sub/b.txt"]  # a later call: v1


def test_a_glob_get_of_an_alias_downloads_one_version(fs: WriterMidCall, tmp_path: Path) -> None:
    fs.get("e/p/ds:best/*.txt", str(tmp_path / "out") + "/")
    assert fs.writer is None
    assert _tree(tmp_path / "out") == {n: OLD[n] for n in ("a.txt", "c.txt")}
    assert fs.cat("e/p/ds:best/c.txt") == NEW["c.txt"]


def test_a_cat_of_many_files_of_latest_reads_one_version(fs: WriterMidCall) -> None:
    paths = [f"e/p/ds/{n}" for n in OLD]  # no version: latest
    assert fs.cat(paths) == {f"e/p/ds/{n}": data for n, data in OLD.items()}
    assert fs.writer is None
    assert fs.cat(paths) == {f"e/p/ds/{n}": data for n, data in NEW.items()}  # a later call
