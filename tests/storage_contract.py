"""The Storage contract: what every backend promises, as one class of tests.

A backend runs it by subclassing :class:`StorageContract` (tests/test_storage.py for
the local ones, tests/test_remote_backends.py for the buckets), as dulwich's
ObjectStoreTests and zarr's StoreTests are run. The subclass says

* ``backend``: its name in tests/backends.py, which makes a fresh store of it;
* ``capabilities``: what it promises; tests of an atomicity it does not promise skip;
* ``backdoor_get`` / ``backdoor_put``: the stored bytes under a key, read or written
  without the code under test, to check that a key holds what was written and that
  what is there is what is read (fsspec's own client by default);

and adds the tests of what only it promises.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import pytest

from cas.errors import CasError, KeyNotFoundError, NotFoundError, PreconditionFailedError
from cas.storage import Capabilities, IfMatch, Stat, Storage
from tests.backends import make_storage

ALL_BYTES = bytes(range(256)) * 4
RANGES = [(0, 10), (3, 7), (3, None), (None, 4), (0, None), (250, 256), (1000, 1024), (1020, 5000)]


def write_local_file(tmp_path: Path, data: bytes, name: str = "src.bin") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


class StorageContract:
    backend: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @pytest.fixture
    def storage(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
        """A fresh, empty store of this backend."""
        store = make_storage(request, self.backend, tmp_path)
        try:
            yield store
        finally:
            store.close()

    def backdoor_get(self, storage: Storage, key: str) -> bytes:
        """The bytes stored under ``key``, read without ``storage``'s code."""
        return storage.fs.cat_file(f"{storage.root}/{key}")  # type: ignore[attr-defined]

    def backdoor_put(self, storage: Storage, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` without ``storage``'s code."""
        path = f"{storage.root}/{key}"  # type: ignore[attr-defined]
        storage.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)  # type: ignore[attr-defined]
        storage.fs.pipe_file(path, data)  # type: ignore[attr-defined]

    # ---- the bytes under a key, seen from behind the store -------------------

    def test_a_put_value_is_stored_under_its_key(self, storage: Storage) -> None:
        storage.put("a/b/c", ALL_BYTES)
        storage.put("a/empty", b"")
        assert self.backdoor_get(storage, "a/b/c") == ALL_BYTES
        assert self.backdoor_get(storage, "a/empty") == b""

    def test_a_value_stored_from_behind_is_read_listed_and_replaced(self, storage: Storage) -> None:
        self.backdoor_put(storage, "x/y", ALL_BYTES)
        assert storage.get("x/y") == ALL_BYTES
        assert storage.get("x/y", 3, 7) == ALL_BYTES[3:7]
        assert list(storage.list("x/")) == ["x/y"]
        with pytest.raises(PreconditionFailedError):
            storage.put("x/y", b"intruder", mode="create")
        _, token = storage.get_versioned("x/y")
        storage.put("x/y", b"next", mode=IfMatch(token))
        assert self.backdoor_get(storage, "x/y") == b"next"

    # ---- capabilities --------------------------------------------------------

    def test_capabilities_are_declared_as_data(self, storage: Storage) -> None:
        caps = storage.capabilities
        assert isinstance(caps, Capabilities)
        for name in ("atomic_create", "conditional_update", "durable", "local"):
            assert isinstance(getattr(caps, name), bool), name
        assert caps == self.capabilities
        assert isinstance(storage.url, str) and storage.url

    def test_local_path_only_on_local_backends(self, storage: Storage) -> None:
        storage.put("a/b", b"x")
        path = storage.local_path("a/b")
        if storage.capabilities.local:
            assert path is not None
            with open(path, "rb") as f:
                assert f.read() == b"x"
        else:
            assert path is None

    # ---- get / put -----------------------------------------------------------

    def test_put_get_round_trip(self, storage: Storage) -> None:
        values = {"k/empty": b"", "k/hello": b"hello\n", "k/binary": ALL_BYTES}
        for key, data in values.items():
            storage.put(key, data)
        for key, data in values.items():
            got = storage.get(key)
            assert isinstance(got, bytes)
            assert got == data, key

    def test_put_overwrites_by_default(self, storage: Storage) -> None:
        storage.put("k", b"one")
        storage.put("k", b"two")
        assert storage.get("k") == b"two"
        storage.put("k", b"three", mode="overwrite")
        assert storage.get("k") == b"three"

    def test_keys_are_independent(self, storage: Storage) -> None:
        storage.put("a/b/c", b"1")
        storage.put("a/b/d", b"2")
        storage.put("a/bc", b"3")
        assert (storage.get("a/b/c"), storage.get("a/b/d"), storage.get("a/bc")) == (
            b"1",
            b"2",
            b"3",
        )

    def test_range_get(self, storage: Storage) -> None:
        storage.put("r", ALL_BYTES)
        for start, end in RANGES:
            assert storage.get("r", start, end) == ALL_BYTES[start:end], (start, end)

    def test_get_versioned_returns_content_and_token(self, storage: Storage) -> None:
        storage.put("v", b"first")
        data, token = storage.get_versioned("v")
        assert data == b"first"
        assert isinstance(token, str) and token
        # Reading again without a write names the same version.
        assert storage.get_versioned("v") == (b"first", token)
        storage.put("v", b"second")
        data2, token2 = storage.get_versioned("v")
        assert data2 == b"second"
        assert token2 != token

    # ---- preconditions -------------------------------------------------------

    def test_create_on_new_key_succeeds(self, storage: Storage) -> None:
        storage.put("c", b"new", mode="create")
        assert storage.get("c") == b"new"

    def test_create_on_existing_key_fails_and_changes_nothing(self, storage: Storage) -> None:
        storage.put("c", b"original")
        with pytest.raises(PreconditionFailedError) as info:
            storage.put("c", b"intruder", mode="create")
        assert info.value.key == "c"
        assert isinstance(info.value, CasError)
        assert storage.get("c") == b"original"

    def test_if_match_fresh_token_succeeds(self, storage: Storage) -> None:
        storage.put("m", b"v1")
        _, token = storage.get_versioned("m")
        storage.put("m", b"v2", mode=IfMatch(token))
        assert storage.get("m") == b"v2"

    def test_if_match_stale_token_fails_and_changes_nothing(self, storage: Storage) -> None:
        storage.put("m", b"v1")
        _, stale = storage.get_versioned("m")
        storage.put("m", b"v2")
        with pytest.raises(PreconditionFailedError):
            storage.put("m", b"v3", mode=IfMatch(stale))
        assert storage.get("m") == b"v2"
        # The token of the current version still works.
        _, fresh = storage.get_versioned("m")
        storage.put("m", b"v3", mode=IfMatch(fresh))
        assert storage.get("m") == b"v3"

    def test_if_match_on_a_deleted_key_fails(self, storage: Storage) -> None:
        storage.put("m", b"v1")
        _, token = storage.get_versioned("m")
        storage.delete("m")
        with pytest.raises(PreconditionFailedError):
            storage.put("m", b"v2", mode=IfMatch(token))
        assert not storage.exists("m")

    def test_if_match_never_creates(self, storage: Storage) -> None:
        storage.put("other", b"x")
        _, token = storage.get_versioned("other")
        with pytest.raises(PreconditionFailedError):
            storage.put("missing", b"v", mode=IfMatch(token))
        assert not storage.exists("missing")

    def test_if_match_with_a_bogus_token_fails(self, storage: Storage) -> None:
        storage.put("m", b"v1")
        with pytest.raises(PreconditionFailedError):
            storage.put("m", b"v2", mode=IfMatch('"not-a-real-version"'))
        assert storage.get("m") == b"v1"

    def test_only_one_concurrent_create_wins(self, storage: Storage) -> None:
        if not self.capabilities.atomic_create:
            pytest.skip("this backend does not promise an atomic create")
        n = 8
        barrier = threading.Barrier(n)

        def attempt(i: int) -> bool:
            barrier.wait()
            try:
                storage.put("race", f"writer-{i}".encode(), mode="create")
                return True
            except PreconditionFailedError:
                return False

        with ThreadPoolExecutor(n) as pool:
            results = list(pool.map(attempt, range(n)))
        assert results.count(True) == 1
        assert storage.get("race") == f"writer-{results.index(True)}".encode()

    def test_only_one_concurrent_if_match_wins(self, storage: Storage) -> None:
        if not self.capabilities.conditional_update:
            pytest.skip("this backend does not promise an atomic if-match")
        storage.put("race", b"start")
        _, token = storage.get_versioned("race")
        n = 8
        barrier = threading.Barrier(n)

        def attempt(i: int) -> bool:
            barrier.wait()
            try:
                storage.put("race", f"writer-{i}".encode(), mode=IfMatch(token))
                return True
            except PreconditionFailedError:
                return False

        with ThreadPoolExecutor(n) as pool:
            results = list(pool.map(attempt, range(n)))
        assert results.count(True) == 1
        assert storage.get("race") == f"writer-{results.index(True)}".encode()

    # ---- files ---------------------------------------------------------------

    def test_put_file(self, storage: Storage, tmp_path: Path) -> None:
        src = write_local_file(tmp_path, ALL_BYTES)
        storage.put_file("f/x", src)
        assert storage.get("f/x") == ALL_BYTES
        with open(src, "rb") as f:
            assert f.read() == ALL_BYTES  # put_file leaves the source alone

    def test_put_file_create_on_existing_fails(self, storage: Storage, tmp_path: Path) -> None:
        storage.put("f", b"original")
        with pytest.raises(PreconditionFailedError):
            storage.put_file("f", write_local_file(tmp_path, b"intruder"), mode="create")
        assert storage.get("f") == b"original"

    def test_put_file_if_match(self, storage: Storage, tmp_path: Path) -> None:
        storage.put("f", b"v1")
        _, token = storage.get_versioned("f")
        storage.put_file("f", write_local_file(tmp_path, b"v2", "a"), mode=IfMatch(token))
        assert storage.get("f") == b"v2"
        with pytest.raises(PreconditionFailedError):
            storage.put_file("f", write_local_file(tmp_path, b"v3", "b"), mode=IfMatch(token))
        assert storage.get("f") == b"v2"

    @pytest.mark.parametrize("source", ["storage-tempfile", "elsewhere"])
    def test_move_in(self, storage: Storage, tmp_path: Path, source: str) -> None:
        if source == "storage-tempfile":
            path = storage.tempfile()
            with open(path, "wb") as f:
                f.write(ALL_BYTES)
        else:
            path = write_local_file(tmp_path, ALL_BYTES)
        storage.move_in("moved/x", path)
        assert storage.get("moved/x") == ALL_BYTES

    def test_move_in_create_on_existing_fails(self, storage: Storage) -> None:
        storage.put("moved", b"original")
        path = storage.tempfile()
        with open(path, "wb") as f:
            f.write(b"intruder")
        try:
            with pytest.raises(PreconditionFailedError):
                storage.move_in("moved", path, mode="create")
        finally:
            if os.path.exists(path):
                os.unlink(path)
        assert storage.get("moved") == b"original"

    def test_tempfile_is_fresh_and_empty(self, storage: Storage) -> None:
        a, b = storage.tempfile(), storage.tempfile()
        try:
            assert a != b
            assert os.path.getsize(a) == 0
        finally:
            for path in (a, b):
                if os.path.exists(path):
                    os.unlink(path)

    def test_open_streams_the_value(self, storage: Storage) -> None:
        data = ALL_BYTES * 64
        storage.put("o", data)
        chunks = []
        with storage.open("o") as f:
            while chunk := f.read(1000):
                chunks.append(chunk)
        assert b"".join(chunks) == data

    def test_stat(self, storage: Storage) -> None:
        storage.put("s", ALL_BYTES)
        st = storage.stat("s")
        assert isinstance(st, Stat)
        assert st.size == len(ALL_BYTES)
        assert isinstance(st.mtime, float)
        assert abs(st.mtime - time.time()) < 3600
        storage.put("empty", b"")
        assert storage.stat("empty").size == 0

    # ---- delete, exists, list ------------------------------------------------

    def test_exists(self, storage: Storage) -> None:
        assert not storage.exists("e")
        storage.put("e/f", b"")
        assert storage.exists("e/f")
        assert not storage.exists("e/g")

    def test_delete(self, storage: Storage) -> None:
        storage.put("d", b"x")
        storage.put("keep", b"y")
        storage.delete("d")
        assert not storage.exists("d")
        with pytest.raises(KeyNotFoundError):
            storage.get("d")
        assert storage.get("keep") == b"y"
        storage.delete("d")  # deleting a missing key is not an error
        storage.delete("never/was")

    def test_delete_then_create(self, storage: Storage) -> None:
        storage.put("d", b"x", mode="create")
        storage.delete("d")
        storage.put("d", b"y", mode="create")
        assert storage.get("d") == b"y"

    def test_list_by_prefix(self, storage: Storage) -> None:
        keys = ["a/b/1", "a/b/2", "a/c", "ab", "b", "objects/ab/cd"]
        for key in keys:
            storage.put(key, key.encode())
        assert sorted(storage.list("")) == sorted(keys)
        assert sorted(storage.list()) == sorted(keys)
        assert sorted(storage.list("a/")) == ["a/b/1", "a/b/2", "a/c"]
        assert sorted(storage.list("a/b/")) == ["a/b/1", "a/b/2"]
        assert sorted(storage.list("a")) == ["a/b/1", "a/b/2", "a/c", "ab"]
        assert sorted(storage.list("a/b/1")) == ["a/b/1"]
        assert sorted(storage.list("objects/")) == ["objects/ab/cd"]
        assert list(storage.list("nothing/")) == []
        assert list(storage.list("a/z")) == []

    def test_list_stats_gives_each_listed_key_its_stat(self, storage: Storage) -> None:
        for key in ["s/1", "s/22", "s/t/333", "sx"]:
            storage.put(key, b"x" * len(key))
        listed = dict(storage.list_stats("s/"))
        sizes = {key: stat.size for key, stat in listed.items()}
        assert sizes == {"s/1": 3, "s/22": 4, "s/t/333": 7}
        # gc ages what it lists against the store's clock, a stat-ed time: the same times.
        assert listed == {key: storage.stat(key) for key in listed}
        assert list(storage.list_stats("nothing/")) == []

    def test_list_shows_only_keys_after_every_kind_of_write(
        self, storage: Storage, tmp_path: Path
    ) -> None:
        # Conditional writes and moves may use temporary files and locks: never keys.
        storage.put("x/create", b"1", mode="create")
        _, token = storage.get_versioned("x/create")
        storage.put("x/create", b"2", mode=IfMatch(token))
        with pytest.raises(PreconditionFailedError):
            storage.put("x/create", b"3", mode=IfMatch(token))
        storage.put_file("x/file", write_local_file(tmp_path, b"f"))
        path = storage.tempfile()
        storage.move_in("x/moved", path)
        storage.delete("x/gone")
        assert sorted(storage.list("")) == ["x/create", "x/file", "x/moved"]

    def test_list_after_delete(self, storage: Storage) -> None:
        storage.put("l/1", b"")
        storage.put("l/2", b"")
        storage.delete("l/1")
        assert list(storage.list("l/")) == ["l/2"]

    # ---- missing keys --------------------------------------------------------

    def test_missing_key_raises_key_not_found(self, storage: Storage) -> None:
        storage.put("present", b"x")
        calls = {
            "get": lambda: storage.get("no/such/key"),
            "range": lambda: storage.get("no/such/key", 0, 1),
            "get_versioned": lambda: storage.get_versioned("no/such/key"),
            "open": lambda: storage.open("no/such/key"),
            "stat": lambda: storage.stat("no/such/key"),
        }
        for op, call in calls.items():
            with pytest.raises(KeyNotFoundError) as info:
                call()
            error = info.value
            assert error.key == "no/such/key", op
            assert isinstance(error, NotFoundError) and isinstance(error, LookupError), op
            assert isinstance(error, CasError), op
            assert "no/such/key" in str(error), op

    def test_context_manager(self, storage: Storage) -> None:
        with storage as s:
            assert s is storage
            s.put("cm", b"x")

    def test_put_get_stat_delete(self, storage: Storage) -> None:
        data = bytes(range(256)) * 4
        storage.put("objects/ab/cdef", data)
        assert storage.get("objects/ab/cdef") == data
        assert storage.get("objects/ab/cdef", 10, 20) == data[10:20]
        assert storage.get("objects/ab/cdef", 1000) == data[1000:]
        assert storage.get("objects/ab/cdef", 0, 1) == data[:1]
        assert storage.stat("objects/ab/cdef").size == len(data)
        assert storage.stat("objects/ab/cdef").mtime > 0
        assert storage.exists("objects/ab/cdef")
        with storage.open("objects/ab/cdef") as f:
            assert f.read() == data

        storage.put("objects/ab/cdef", b"new")  # overwrite is the default
        assert storage.get("objects/ab/cdef") == b"new"
        storage.put("empty", b"")
        assert storage.get("empty") == b""

        storage.delete("objects/ab/cdef")
        storage.delete("objects/ab/cdef")  # deleting a missing key is fine
        assert not storage.exists("objects/ab/cdef")
        with pytest.raises(KeyNotFoundError):
            storage.get("objects/ab/cdef")
        with pytest.raises(KeyNotFoundError):
            storage.get_versioned("objects/ab/cdef")
        with pytest.raises(KeyNotFoundError):
            storage.stat("objects/ab/cdef")

    def test_if_match_through_a_version_history(self, storage: Storage) -> None:
        storage.put("ref", b"v1")
        _, t1 = storage.get_versioned("ref")
        storage.put("ref", b"v2", mode=IfMatch(t1))
        data, t2 = storage.get_versioned("ref")
        assert data == b"v2"

        with pytest.raises(PreconditionFailedError):
            storage.put("ref", b"stale", mode=IfMatch(t1))
        assert storage.get("ref") == b"v2"

        storage.put("ref", b"v3", mode=IfMatch(t2))
        assert storage.get("ref") == b"v3"

        with pytest.raises(PreconditionFailedError):
            storage.put("ref", b"bogus", mode=IfMatch("not-a-real-token"))
        storage.delete("ref")
        with pytest.raises(PreconditionFailedError):
            storage.put("ref", b"gone", mode=IfMatch(t2))
        assert not storage.exists("ref")

    def test_put_file_creates_then_replaces_if_matched(
        self, storage: Storage, tmp_path: Path
    ) -> None:
        src = tmp_path / "blob"
        src.write_bytes(b"file contents" * 1000)
        storage.put_file("blobs/1", str(src), mode="create")
        assert storage.get("blobs/1") == src.read_bytes()
        with pytest.raises(PreconditionFailedError):
            storage.put_file("blobs/1", str(src), mode="create")
        _, token = storage.get_versioned("blobs/1")
        src.write_bytes(b"changed")
        storage.put_file("blobs/1", str(src), mode=IfMatch(token))
        assert storage.get("blobs/1") == b"changed"
        with pytest.raises(PreconditionFailedError):
            storage.put_file("blobs/1", str(src), mode=IfMatch(token))
        storage.put_file("blobs/1", str(src))
        assert storage.get("blobs/1") == b"changed"
