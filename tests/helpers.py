"""Helpers shared by the test modules: one definition of each, imported everywhere.

Fixtures live in conftest.py; these are plain functions and classes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import remotes
from artifacts import Artifact, snapshot
from artifacts.refpolicy import ARTIFACT_REFS
from cas import ObjectStore, Repository, Tree
from cas.objects import ObjectId
from cas.storage import Storage

ENTITY, PROJECT = "team", "proj"


def workspace(root: Path, monkeypatch: pytest.MonkeyPatch, project: str = PROJECT) -> Path:
    """Make ``root`` the working directory of a project with its own ``.artifacts/`` store."""
    root.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(root)
    monkeypatch.setenv("ARTIFACTS_ENTITY", ENTITY)
    monkeypatch.setenv("ARTIFACTS_PROJECT", project)
    monkeypatch.delenv("ARTIFACTS_STORE", raising=False)
    (root / ".artifacts").mkdir()  # never pick up a store above ``root``
    return root


# ---- files -------------------------------------------------------------------


def write(path: str | Path, data: bytes | str) -> str:
    """Write ``data`` (text as UTF-8) to ``path``, making its directories; the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Make ``root`` hold exactly ``files`` (path -> contents)."""
    if root.exists():
        shutil.rmtree(root)
    for name, data in files.items():
        write(root / name, data)
    return root


def tree_of(root: str | Path) -> dict[str, bytes]:
    """Every file below ``root``: its relative POSIX path -> its contents."""
    root = Path(root)
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def contents(artifact: Artifact, root: str) -> dict[str, bytes]:
    """The files of ``artifact``, downloaded to ``root``."""
    return tree_of(artifact.download(root))


def remove_deep(top: Path) -> None:
    """``shutil.rmtree`` without recursion."""
    stack = [str(top)]
    while stack:
        with os.scandir(stack[-1]) as it:
            entries = list(it)
        subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        if subdirs:
            stack.extend(subdirs)
            continue
        for entry in entries:
            os.unlink(entry.path)
        os.rmdir(stack.pop())


# ---- damage ------------------------------------------------------------------


def flip(data: bytes, position: int) -> bytes:
    """``data`` with one bit of the byte at ``position`` flipped."""
    changed = bytearray(data)
    changed[position] ^= 0x01
    return bytes(changed)


def corrupt(storage: Storage, object_id: ObjectId, at: Callable[[int], int]) -> None:
    """Flip one bit of an object where it is stored, loose or packed, behind the store's back.

    ``at(length)`` picks the byte, counted from the start of the object's stored bytes.
    Corrupting the same byte again puts the object back.
    """
    store = ObjectStore(storage)
    store.refresh_packs()
    pack = store.pack_of(object_id)
    if pack is None:
        key = store.loose_location(object_id)
        assert key is not None
        data = storage.get(key)
        storage.put(key, flip(data, at(len(data))))
        return
    offset, length = next((o, n) for i, o, n in store.pack_entries(pack) if i == object_id)
    key = f"packs/{pack}.pack"
    storage.put(key, flip(storage.get(key), offset + at(length)))


# ---- observing the code under test -------------------------------------------


def files_stored(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths every log from now on reads and stores (the stat cache vouches for the rest)."""
    stored: list[str] = []
    real = snapshot.store_files

    def recording(store, paths, *args):
        stored.extend(os.path.basename(path) for path, _ in paths)
        return real(store, paths, *args)

    monkeypatch.setattr(snapshot, "store_files", recording)
    return stored


class CountingStore(ObjectStore):
    """The same storage, recording the trees read (a real store, not a mock)."""

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)
        self.trees_read: list[bytes] = []

    def get_tree(self, object_id: bytes) -> Tree:
        self.trees_read.append(object_id)
        return super().get_tree(object_id)


def append_after_fstat(monkeypatch: Any, path: Path) -> None:
    """Make ``path`` grow right after the next os.fstat of any file: another writer
    appending just after a reader looked at its size."""
    real_fstat = os.fstat

    def fstat_before_the_append(fd: int) -> os.stat_result:
        result = real_fstat(fd)
        with open(path, "ab") as f:
            f.write(b"more")
        return result

    monkeypatch.setattr(os, "fstat", fstat_before_the_append)


def pushed_and_cloned(ws: Path) -> tuple[Repository, Repository]:
    """The workspace's store pushed to ``ws/remote`` (as its origin), and a clone of
    that remote in ``ws/other``: two stores to edit on both sides."""
    local = Repository.open(str(ws / ".artifacts"))
    remotes.add_remote(local, "origin", str(ws / "remote"))
    remotes.push(local, "origin", policy=ARTIFACT_REFS)
    return local, remotes.clone(str(ws / "remote"), str(ws / "other"), policy=ARTIFACT_REFS)
