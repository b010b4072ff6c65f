"""The Storage contract, run against every backend (see the ``storage`` fixture).

Then the promises only a local directory makes: atomic replacement seen from a
concurrent reader, and keys that cannot escape the store's root.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cas.errors import (
    CasError,
    InvalidNameError,
    KeyNotFoundError,
    NotFoundError,
    PreconditionFailedError,
)
from cas.storage import Capabilities, IfMatch, LocalStorage, MemoryStorage, Stat, Storage

EXPECTED_CAPABILITIES = {
    "memory": Capabilities(atomic_create=True, conditional_update=True, durable=False, local=False),
    "local": Capabilities(atomic_create=True, conditional_update=True, durable=True, local=True),
    "s3-moto": Capabilities(atomic_create=True, conditional_update=True, durable=True, local=False),
    "s3-seaweed": Capabilities(
        atomic_create=True, conditional_update=True, durable=True, local=False
    ),
    "gcs": Capabilities(atomic_create=True, conditional_update=True, durable=True, local=False),
    # Generic fsspec: preconditions are checked, then written; not atomic.
    "fsspec-memory": Capabilities(
        atomic_create=False, conditional_update=False, durable=True, local=False
    ),
    "fsspec-file": Capabilities(
        atomic_create=False, conditional_update=False, durable=True, local=False
    ),
}

ALL_BYTES = bytes(range(256)) * 4


def write_local_file(tmp_path: Path, data: bytes, name: str = "src.bin") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# ---- capabilities --------------------------------------------------------


def test_capabilities_are_declared_as_data(storage: Storage, backend: str) -> None:
    caps = storage.capabilities
    assert isinstance(caps, Capabilities)
    for name in ("atomic_create", "conditional_update", "durable", "local"):
        assert isinstance(getattr(caps, name), bool), name
    assert caps == EXPECTED_CAPABILITIES[backend]
    assert isinstance(storage.url, str) and storage.url


def test_local_path_only_on_local_backends(storage: Storage) -> None:
    storage.put("a/b", b"x")
    path = storage.local_path("a/b")
    if storage.capabilities.local:
        assert path is not None
        with open(path, "rb") as f:
            assert f.read() == b"x"
    else:
        assert path is None


# ---- get / put -----------------------------------------------------------


def test_put_get_round_trip(storage: Storage) -> None:
    values = {"k/empty": b"", "k/hello": b"hello\n", "k/binary": ALL_BYTES}
    for key, data in values.items():
        storage.put(key, data)
    for key, data in values.items():
        got = storage.get(key)
        assert isinstance(got, bytes)
        assert got == data, key


def test_put_overwrites_by_default(storage: Storage) -> None:
    storage.put("k", b"one")
    storage.put("k", b"two")
    assert storage.get("k") == b"two"
    storage.put("k", b"three", mode="overwrite")
    assert storage.get("k") == b"three"


def test_keys_are_independent(storage: Storage) -> None:
    storage.put("a/b/c", b"1")
    storage.put("a/b/d", b"2")
    storage.put("a/bc", b"3")
    assert (storage.get("a/b/c"), storage.get("a/b/d"), storage.get("a/bc")) == (
        b"1",
        b"2",
        b"3",
    )


RANGES = [(0, 10), (3, 7), (3, None), (None, 4), (0, None), (250, 256), (1000, 1024), (1020, 5000)]


def test_range_get(storage: Storage) -> None:
    storage.put("r", ALL_BYTES)
    for start, end in RANGES:
        assert storage.get("r", start, end) == ALL_BYTES[start:end], (start, end)


def test_get_versioned_returns_content_and_token(storage: Storage) -> None:
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


def test_create_on_new_key_succeeds(storage: Storage) -> None:
    storage.put("c", b"new", mode="create")
    assert storage.get("c") == b"new"


def test_create_on_existing_key_fails_and_changes_nothing(storage: Storage) -> None:
    storage.put("c", b"original")
    with pytest.raises(PreconditionFailedError) as info:
        storage.put("c", b"intruder", mode="create")
    assert info.value.key == "c"
    assert isinstance(info.value, CasError)
    assert storage.get("c") == b"original"


def test_if_match_fresh_token_succeeds(storage: Storage) -> None:
    storage.put("m", b"v1")
    _, token = storage.get_versioned("m")
    storage.put("m", b"v2", mode=IfMatch(token))
    assert storage.get("m") == b"v2"


def test_if_match_stale_token_fails_and_changes_nothing(storage: Storage) -> None:
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


def test_if_match_on_a_deleted_key_fails(storage: Storage) -> None:
    storage.put("m", b"v1")
    _, token = storage.get_versioned("m")
    storage.delete("m")
    with pytest.raises(PreconditionFailedError):
        storage.put("m", b"v2", mode=IfMatch(token))
    assert not storage.exists("m")


def test_if_match_never_creates(storage: Storage) -> None:
    storage.put("other", b"x")
    _, token = storage.get_versioned("other")
    with pytest.raises(PreconditionFailedError):
        storage.put("missing", b"v", mode=IfMatch(token))
    assert not storage.exists("missing")


def test_if_match_with_a_bogus_token_fails(storage: Storage) -> None:
    storage.put("m", b"v1")
    with pytest.raises(PreconditionFailedError):
        storage.put("m", b"v2", mode=IfMatch('"not-a-real-version"'))
    assert storage.get("m") == b"v1"


def test_only_one_concurrent_create_wins(storage: Storage) -> None:
    if not storage.capabilities.atomic_create:
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


def test_only_one_concurrent_if_match_wins(storage: Storage) -> None:
    if not storage.capabilities.conditional_update:
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


def test_put_file(storage: Storage, tmp_path: Path) -> None:
    src = write_local_file(tmp_path, ALL_BYTES)
    storage.put_file("f/x", src)
    assert storage.get("f/x") == ALL_BYTES
    with open(src, "rb") as f:
        assert f.read() == ALL_BYTES  # put_file leaves the source alone


def test_put_file_create_on_existing_fails(storage: Storage, tmp_path: Path) -> None:
    storage.put("f", b"original")
    with pytest.raises(PreconditionFailedError):
        storage.put_file("f", write_local_file(tmp_path, b"intruder"), mode="create")
    assert storage.get("f") == b"original"


def test_put_file_if_match(storage: Storage, tmp_path: Path) -> None:
    storage.put("f", b"v1")
    _, token = storage.get_versioned("f")
    storage.put_file("f", write_local_file(tmp_path, b"v2", "a"), mode=IfMatch(token))
    assert storage.get("f") == b"v2"
    with pytest.raises(PreconditionFailedError):
        storage.put_file("f", write_local_file(tmp_path, b"v3", "b"), mode=IfMatch(token))
    assert storage.get("f") == b"v2"


@pytest.mark.parametrize("source", ["storage-tempfile", "elsewhere"])
def test_move_in(storage: Storage, tmp_path: Path, source: str) -> None:
    if source == "storage-tempfile":
        path = storage.tempfile()
        with open(path, "wb") as f:
            f.write(ALL_BYTES)
    else:
        path = write_local_file(tmp_path, ALL_BYTES)
    storage.move_in("moved/x", path)
    assert storage.get("moved/x") == ALL_BYTES


def test_move_in_create_on_existing_fails(storage: Storage) -> None:
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


def test_tempfile_is_fresh_and_empty(storage: Storage) -> None:
    a, b = storage.tempfile(), storage.tempfile()
    try:
        assert a != b
        assert os.path.getsize(a) == 0
    finally:
        for path in (a, b):
            if os.path.exists(path):
                os.unlink(path)


def test_open_streams_the_value(storage: Storage) -> None:
    data = ALL_BYTES * 64
    storage.put("o", data)
    chunks = []
    with storage.open("o") as f:
        while chunk := f.read(1000):
            chunks.append(chunk)
    assert b"".join(chunks) == data


def test_stat(storage: Storage) -> None:
    storage.put("s", ALL_BYTES)
    st = storage.stat("s")
    assert isinstance(st, Stat)
    assert st.size == len(ALL_BYTES)
    assert isinstance(st.mtime, float)
    assert abs(st.mtime - time.time()) < 3600
    storage.put("empty", b"")
    assert storage.stat("empty").size == 0


# ---- delete, exists, list ------------------------------------------------


def test_exists(storage: Storage) -> None:
    assert not storage.exists("e")
    storage.put("e/f", b"")
    assert storage.exists("e/f")
    assert not storage.exists("e/g")


def test_delete(storage: Storage) -> None:
    storage.put("d", b"x")
    storage.put("keep", b"y")
    storage.delete("d")
    assert not storage.exists("d")
    with pytest.raises(KeyNotFoundError):
        storage.get("d")
    assert storage.get("keep") == b"y"
    storage.delete("d")  # deleting a missing key is not an error
    storage.delete("never/was")


def test_delete_then_create(storage: Storage) -> None:
    storage.put("d", b"x", mode="create")
    storage.delete("d")
    storage.put("d", b"y", mode="create")
    assert storage.get("d") == b"y"


def test_list_by_prefix(storage: Storage) -> None:
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


def test_list_shows_only_keys_after_every_kind_of_write(storage: Storage, tmp_path: Path) -> None:
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


def test_list_after_delete(storage: Storage) -> None:
    storage.put("l/1", b"")
    storage.put("l/2", b"")
    storage.delete("l/1")
    assert list(storage.list("l/")) == ["l/2"]


# ---- missing keys --------------------------------------------------------


def test_missing_key_raises_key_not_found(storage: Storage) -> None:
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


def test_context_manager(storage: Storage) -> None:
    with storage as s:
        assert s is storage
        s.put("cm", b"x")


# ---- memory only ---------------------------------------------------------


def test_memory_storages_share_nothing() -> None:
    a, b = MemoryStorage(), MemoryStorage()
    a.put("k", b"a")
    assert not b.exists("k")
    assert list(b.list()) == []


# ---- local only ----------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(str(tmp_path / "store"))


def test_local_storage_is_durable_across_instances(local: LocalStorage) -> None:
    local.put("refs/x", b"1", mode="create")
    again = LocalStorage(local.root)
    assert again.get("refs/x") == b"1"
    assert again.get_versioned("refs/x") == local.get_versioned("refs/x")


def test_local_file_url(tmp_path: Path) -> None:
    store = LocalStorage(f"file://{tmp_path / 'store'}")
    store.put("k", b"v")
    assert (tmp_path / "store" / "k").read_bytes() == b"v"


@pytest.mark.parametrize("mode", ["overwrite", "if-match"])
def test_local_reader_never_sees_a_half_written_value(local: LocalStorage, mode: str) -> None:
    size = 4 << 20
    old, new = b"\x01" * size, b"\x02" * size
    local.put("big", old)
    stop = threading.Event()
    seen: list[int] = []
    torn: list[int] = []

    def read() -> None:
        while not stop.is_set():
            data = local.get("big")
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
                local.put("big", value)
            else:
                _, token = local.get_versioned("big")
                local.put("big", value, mode=IfMatch(token))
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert seen, "the readers never ran"
    assert torn == []


def test_local_streaming_reader_keeps_its_version(local: LocalStorage) -> None:
    old, new = b"a" * 100_000, b"b" * 100_000
    local.put("k", old)
    with local.open("k") as f:
        head = f.read(10)
        local.put("k", new)
        rest = f.read()
    assert head + rest == old
    assert local.get("k") == new


def test_local_leaves_no_temporary_files(local: LocalStorage, tmp_path: Path) -> None:
    local.put("a", b"1")
    local.put("a", b"2", mode="overwrite")
    with pytest.raises(PreconditionFailedError):
        local.put("a", b"3", mode="create")
    _, token = local.get_versioned("a")
    local.put("a", b"4", mode=IfMatch(token))
    with pytest.raises(PreconditionFailedError):
        local.put("a", b"5", mode=IfMatch(token))
    local.put_file("b", write_local_file(tmp_path, b"file"))
    with pytest.raises(PreconditionFailedError):
        local.put_file("b", write_local_file(tmp_path, b"file"), mode="create")
    path = local.tempfile()
    local.move_in("c", path)
    assert not os.path.exists(path)
    assert os.listdir(local.tmp_dir) == []
    assert sorted(local.list()) == ["a", "b", "c"]


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
    local: LocalStorage, tmp_path: Path, key: str
) -> None:
    src = write_local_file(tmp_path, b"evil")
    before = sorted(p.name for p in tmp_path.iterdir())
    operations = [
        lambda: local.get(key),
        lambda: local.get_versioned(key),
        lambda: local.put(key, b"evil"),
        lambda: local.put(key, b"evil", mode="create"),
        lambda: local.put_file(key, src),
        lambda: local.open(key),
        lambda: local.stat(key),
        lambda: local.delete(key),
        lambda: local.local_path(key),
        lambda: local.exists(key),
    ]
    for operation in operations:
        with pytest.raises(InvalidNameError):
            operation()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert os.listdir(local.tmp_dir) == []


def test_local_list_does_not_escape_the_root(local: LocalStorage, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_bytes(b"secret")
    local.put("inside", b"x")
    try:
        listed = list(local.list("../"))
    except InvalidNameError:
        listed = []
    assert listed == []
