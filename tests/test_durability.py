"""What survives a power loss: every file a ref reaches is on disk before the ref.

A process crash loses nothing the kernel has been given; a power loss loses
whatever was not fsynced. So the test records, at the OS level, every file
installed in the store (``os.link``, ``os.replace``) and every ``os.fsync``, in
every process (the log's workers write packs of their own), and checks the
order: a file and each directory above it were synced after the file was put
in place and before the ref reaching it was.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import artifacts
from artifacts import Artifact
from cas import Repository, forking, ingest
from cas.keys import content_key, loose_key
from cas.objects import encode_header
from cas.storage import LocalStorage
from cas.store import LOOSE_THRESHOLD
from cas.walk import reachable


class OsEvents:
    """``os.fsync`` and the renames and links into the store, appended to a file.

    One ``O_APPEND`` write per event: the order holds across forked workers.
    """

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        fsync, link, replace, unlink = os.fsync, os.link, os.replace, os.unlink

        def record(kind: str, target: str) -> None:
            line = f"{kind} {os.stat(target).st_ino} {os.path.realpath(target)}\n"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)

        def recording_fsync(fd: int) -> None:
            fsync(fd)
            record("synced", f"/proc/self/fd/{fd}")

        def recording_link(src: str, dst: str, **kw: object) -> None:
            link(src, dst, **kw)
            record("installed", dst)

        def recording_replace(src: str, dst: str, **kw: object) -> None:
            replace(src, dst, **kw)
            record("installed", dst)

        def recording_unlink(path: str, **kw: object) -> None:
            if os.path.exists(path):
                record("deleting", path)
            unlink(path, **kw)

        monkeypatch.setattr(os, "fsync", recording_fsync)
        monkeypatch.setattr(os, "unlink", recording_unlink)
        monkeypatch.setattr(os, "link", recording_link)
        monkeypatch.setattr(os, "replace", recording_replace)

    def read(self) -> list[tuple[str, int, str]]:
        rows = [line.split(" ", 2) for line in self.path.read_text().splitlines()]
        return [(kind, int(ino), path) for kind, ino, path in rows]


def files_reached(repo: Repository, target: bytes) -> set[str]:
    """The store files holding every object reachable from ``target``."""
    store = repo.objects
    keys = set()
    for object_id, _ in reachable(store, [target]):
        pack = store.pack_of(object_id)
        if pack is not None:
            keys |= {f"packs/{pack}.pack", f"packs/{pack}.idx"}
        else:
            key = store.loose_location(object_id)
            assert key in (content_key(object_id), loose_key(object_id))
            keys.add(key)
    return {os.path.realpath(repo.storage.local_path(key)) for key in keys}


def directories_above(path: str, root: str) -> list[str]:
    """Every directory from ``path``'s own up to ``root``, which holds their entries."""
    parents = []
    while (path := os.path.dirname(path)).startswith(root):
        parents.append(path)
    return parents


Events = list[tuple[str, int, str]]


def not_on_disk(events: Events, paths: set[str], before: int, root: str) -> list[str]:
    """Which of ``paths`` (files of the store at ``root``) a power loss at event
    ``before`` could take away.

    A file's bytes are on disk once its inode was synced, under any name (a
    temporary file synced before it was linked in counts); its name is, once
    every directory above it was synced after it was put in place.
    """
    synced_inodes = {ino for kind, ino, _ in events[:before] if kind == "synced"}
    problems = []
    for path in sorted(paths):
        if os.stat(path).st_ino not in synced_inodes:
            problems.append(path)
        put_at = max(
            i for i, (kind, _, p) in enumerate(events[:before]) if (kind, p) == ("installed", path)
        )
        synced = {p for kind, _, p in events[put_at + 1 : before] if kind == "synced"}
        problems += [
            f"{d} (holding {path})" for d in directories_above(path, root) if d not in synced
        ]
    return problems


def refs_reaching_what_is_not_on_disk(repo: Repository, events: Events) -> list[str]:
    """What a power loss just after the refs were written, or just after the log
    returned, could take away."""
    root = os.path.realpath(repo.url)
    problems = []
    for name, target in repo.refs.list().items():
        ref = os.path.realpath(repo.storage.local_path(f"refs/{name}"))
        ref_at = max(i for i, (kind, _, p) in enumerate(events) if (kind, p) == ("installed", ref))
        problems += [
            f"{p}, before ref {name}"
            for p in not_on_disk(events, files_reached(repo, target), ref_at, root)
        ]
        problems += [f"ref {p}" for p in not_on_disk(events, {ref}, len(events), root)]
    return problems


@pytest.fixture
def events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> OsEvents:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return OsEvents(tmp_path / "events.log", monkeypatch)


def write_dataset(root: Path, small: int) -> None:
    for i in range(small):
        path = root / f"d{i % 4}" / f"f{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {i}")
    (root / "big.bin").write_bytes(os.urandom(LOOSE_THRESHOLD + 1))


@pytest.mark.parametrize("workers", [False, True], ids=["one-process", "workers"])
def test_every_file_a_ref_reaches_is_synced_before_the_ref(
    tmp_path: Path, events: OsEvents, monkeypatch: pytest.MonkeyPatch, workers: bool
) -> None:
    if workers:  # the log's worker processes write the packs, forked from this one
        monkeypatch.setattr(ingest, "PARALLEL_MIN_FILES", 10)
        monkeypatch.setattr(forking, "alone", lambda: True)  # even beside pytest's threads
    write_dataset(tmp_path / "data", small=40)
    with artifacts.init(store=str(tmp_path / "store")) as run:
        artifact = Artifact("data", "dataset")
        artifact.add_dir(str(tmp_path / "data"))
        run.log_artifact(artifact)
        repo = run.registry.repo
        assert refs_reaching_what_is_not_on_disk(repo, events.read()) == []


def test_what_replaces_a_deleted_file_is_on_disk_before_the_deletion(
    tmp_path: Path, events: OsEvents
) -> None:
    """As gc does: an object is packed, then its loose copy is deleted."""
    repo = Repository(LocalStorage(str(tmp_path / "store")))
    object_id = repo.objects.put_raw(b"".join([encode_header("blob", 5), b"hello"]))
    with repo.objects.writer() as writer:
        writer.add_raw(repo.objects.get_raw(object_id), force=True)
    pack = repo.objects.pack_of(object_id)
    repo.objects.delete_loose(object_id)
    history = events.read()
    loose = os.path.realpath(repo.storage.local_path(loose_key(object_id)))
    deleted_at = history.index(("deleting", *next(e[1:] for e in history if e[2] == loose)))
    packed = {
        os.path.realpath(repo.storage.local_path(f"packs/{pack}.{ext}")) for ext in ("pack", "idx")
    }
    assert not_on_disk(history, packed, deleted_at, os.path.realpath(repo.url)) == []
