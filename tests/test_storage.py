"""The Storage contract (tests/storage_contract.py), run by each local backend.

Then the promises only one backend makes: memory stores share nothing; a local
directory is durable across instances, replaces atomically as a concurrent reader
sees it, and has no key that escapes its root. The buckets run the contract in
tests/test_remote_backends.py.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from cas.errors import InvalidNameError, PreconditionFailedError
from cas.storage import Capabilities, IfMatch, LocalStorage, MemoryStorage, Storage
from tests.storage_contract import StorageContract, write_local_file


class TestMemory(StorageContract):
    backend = "memory"
    capabilities = Capabilities(
        atomic_create=True, conditional_update=True, durable=False, local=False
    )

    def backdoor_get(self, storage: Storage, key: str) -> bytes:
        return storage._items[key][0]  # type: ignore[attr-defined]

    def backdoor_put(self, storage: Storage, key: str, data: bytes) -> None:
        storage._items[key] = (data, -1, time.time())  # type: ignore[attr-defined]

    def test_memory_storages_share_nothing(self) -> None:
        a, b = MemoryStorage(), MemoryStorage()
        a.put("k", b"a")
        assert not b.exists("k")
        assert list(b.list()) == []


class TestLocal(StorageContract):
    backend = "local"
    capabilities = Capabilities(
        atomic_create=True, conditional_update=True, durable=True, local=True
    )

    def backdoor_get(self, storage: Storage, key: str) -> bytes:
        return Path(storage.root, key).read_bytes()  # type: ignore[attr-defined]

    def backdoor_put(self, storage: Storage, key: str, data: bytes) -> None:
        path = Path(storage.root, key)  # type: ignore[attr-defined]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def test_local_storage_is_durable_across_instances(self, storage: LocalStorage) -> None:
        storage.put("refs/x", b"1", mode="create")
        again = LocalStorage(storage.root)
        assert again.get("refs/x") == b"1"
        assert again.get_versioned("refs/x") == storage.get_versioned("refs/x")

    def test_local_file_url(self, tmp_path: Path) -> None:
        store = LocalStorage(f"file://{tmp_path / 'store'}")
        store.put("k", b"v")
        assert (tmp_path / "store" / "k").read_bytes() == b"v"

    @pytest.mark.parametrize("mode", ["overwrite", "if-match"])
    def test_local_reader_never_sees_a_half_written_value(
        self, storage: LocalStorage, mode: str
    ) -> None:
        size = 4 << 20
        old, new = b"\x01" * size, b"\x02" * size
        storage.put("big", old)
        stop = threading.Event()
        seen: list[int] = []
        torn: list[int] = []

        def read() -> None:
            while not stop.is_set():
                data = storage.get("big")
                seen.append(len(data))
                if data != old and data != new:
                    torn.append(len(data))

        readers = [threading.Thread(target=read) for _ in range(2)]
        for thread in readers:
            thread.start()
        try:
            for i in range(30):
                value = new if i % 2 == 0 else old
                if mode == "overwrite":
                    storage.put("big", value)
                else:
                    _, token = storage.get_versioned("big")
                    storage.put("big", value, mode=IfMatch(token))
        finally:
            stop.set()
            for thread in readers:
                thread.join()
        assert seen, "the readers never ran"
        assert torn == []

    def test_local_streaming_reader_keeps_its_version(self, storage: LocalStorage) -> None:
        old, new = b"a" * 100_000, b"b" * 100_000
        storage.put("k", old)
        with storage.open("k") as f:
            head = f.read(10)
            storage.put("k", new)
            rest = f.read()
        assert head + rest == old
        assert storage.get("k") == new

    def test_local_leaves_no_temporary_files(self, storage: LocalStorage, tmp_path: Path) -> None:
        storage.put("a", b"1")
        storage.put("a", b"2", mode="overwrite")
        with pytest.raises(PreconditionFailedError):
            storage.put("a", b"3", mode="create")
        _, token = storage.get_versioned("a")
        storage.put("a", b"4", mode=IfMatch(token))
        with pytest.raises(PreconditionFailedError):
            storage.put("a", b"5", mode=IfMatch(token))
        storage.put_file("b", write_local_file(tmp_path, b"file"))
        with pytest.raises(PreconditionFailedError):
            storage.put_file("b", write_local_file(tmp_path, b"file"), mode="create")
        path = storage.tempfile()
        storage.move_in("c", path)
        assert not os.path.exists(path)
        assert os.listdir(storage.tmp_dir) == []
        assert sorted(storage.list()) == ["a", "b", "c"]

    BAD_KEYS = [
        "",
        "..",
        "../x",
        "a/../b",
        "a/..",
        "/etc/passwd",
        "/abs",
        "a\\..\\b",
        "x\0y",
    ]

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_local_rejects_keys_that_escape_the_root(
        self, storage: LocalStorage, tmp_path: Path, key: str
    ) -> None:
        src = write_local_file(tmp_path, b"evil")
        before = sorted(p.name for p in tmp_path.iterdir())
        operations = [
            lambda: storage.get(key),
            lambda: storage.get_versioned(key),
            lambda: storage.put(key, b"evil"),
            lambda: storage.put(key, b"evil", mode="create"),
            lambda: storage.put_file(key, src),
            lambda: storage.open(key),
            lambda: storage.stat(key),
            lambda: storage.delete(key),
            lambda: storage.local_path(key),
            lambda: storage.exists(key),
        ]
        for operation in operations:
            with pytest.raises(InvalidNameError):
                operation()
        assert sorted(p.name for p in tmp_path.iterdir()) == before
        assert os.listdir(storage.tmp_dir) == []

    def test_local_list_does_not_escape_the_root(
        self, storage: LocalStorage, tmp_path: Path
    ) -> None:
        (tmp_path / "outside.txt").write_bytes(b"secret")
        storage.put("inside", b"x")
        try:
            listed = list(storage.list("../"))
        except InvalidNameError:
            listed = []
        assert listed == []


class TestFsspecMemory(StorageContract):
    backend = "fsspec-memory"
    # Generic fsspec: preconditions are checked, then written; not atomic.
    capabilities = Capabilities(
        atomic_create=False, conditional_update=False, durable=True, local=False
    )


class TestFsspecFile(StorageContract):
    backend = "fsspec-file"
    capabilities = Capabilities(
        atomic_create=False, conditional_update=False, durable=True, local=False
    )


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def test_a_lock_held_by_a_stopped_process_is_waited_for_a_bounded_time_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A compare-and-swap waited on a ref's lock forever, silently, while another process
    # held it: one stopped (Ctrl-Z, a debugger) between taking it and renaming.
    import subprocess
    import sys

    from cas.errors import StorageError
    from cas.storage import local

    monkeypatch.setattr(local, "LOCK_TOLD", 0.2)
    monkeypatch.setattr(local, "LOCK_PATIENCE", 1.0)
    storage = LocalStorage(str(tmp_path / "store"))
    storage.put("refs/x", b"1")
    _, token = storage.get_versioned("refs/x")
    storage.put("refs/x", b"2", mode=IfMatch(token))  # makes the key's lock file
    (lock,) = (tmp_path / "store" / "locks").iterdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        _, token = storage.get_versioned("refs/x")
        start = time.monotonic()
        with caplog.at_level("INFO", logger="cas.storage"):
            with pytest.raises(StorageError, match="refs/x .*stayed locked by another process"):
                storage.put("refs/x", b"3", mode=IfMatch(token))
        assert 1.0 <= time.monotonic() - start < 5
        assert any("waiting for refs/x" in r.getMessage() for r in caplog.records)
    finally:
        holder.kill()
        holder.wait()
    storage.put("refs/x", b"3", mode=IfMatch(token))  # the holder gone, the lock is free
    assert storage.get("refs/x") == b"3"
