"""The object store over every backend: loose objects, packs, verification.

Corruption is injected through the storage itself (the "backdoor"): the store
under test never knows the bytes were changed behind its back.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path

import blake3
import pytest

from cas import _fastio, ingest
from cas import packs as packs_module
from cas.errors import (
    CorruptObjectError,
    InvalidObjectError,
    NotFoundError,
    ObjectNotFoundError,
    UsageError,
)
from cas.ids import resolve_id
from cas.keys import content_key, loose_key
from cas.objects import Blob, Commit, Tree, TreeEntry, encode_header
from cas.packs import INDEX_MAGIC, LOOSE_THRESHOLD, PACK_MAGIC, decode_index
from cas.packset import SMALL_PACK
from cas.storage import LocalStorage, MemoryStorage, Storage
from cas.store import InOrderVerifier, ObjectStore
from tests.helpers import append_after_fstat, corrupt, flip


@pytest.fixture
def store(storage: Storage) -> ObjectStore:
    return ObjectStore(storage)


def sample_objects() -> tuple[Blob, Blob, Tree, Commit]:
    a, b = Blob(b"alpha\n"), Blob(b"beta\n" * 100)
    tree = Tree((TreeEntry("a.txt", "blob", a.id, 6), TreeEntry("b.txt", "blob", b.id, 500)))
    commit = Commit(tree=tree.id, meta={"message": "hi"})
    return a, b, tree, commit


def pack_keys(storage: Storage) -> list[str]:
    return sorted(storage.list("packs/"))


def big_file(tmp_path: Path, size: int = LOOSE_THRESHOLD + 17) -> tuple[str, bytes]:
    data = os.urandom(size)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    return str(path), data


# ---- put / get -------------------------------------------------------------


def test_put_get_round_trip(store: ObjectStore) -> None:
    for obj in sample_objects():
        object_id = store.put(obj)
        assert object_id == obj.id
        assert store.get(object_id) == obj
        assert store.get_raw(object_id) == obj.to_bytes()
    a, _, tree, commit = sample_objects()
    assert store.read_blob(a.id) == b"alpha\n"
    assert store.get_tree(tree.id) == tree
    assert store.get_commit(commit.id) == commit
    assert (store.kind(a.id), store.kind(tree.id), store.kind(commit.id)) == (
        "blob",
        "tree",
        "commit",
    )


def test_loose_layout(store: ObjectStore) -> None:
    blob = Blob(b"hello\n")
    store.put(blob)
    hex_id = blob.id.hex()
    key = f"objects/{hex_id[:2]}/{hex_id[2:]}"
    assert loose_key(blob.id) == key
    assert list(store.storage.list("objects/")) == [key]
    assert store.storage.get(key) == blob.to_bytes()


def test_put_is_idempotent(store: ObjectStore) -> None:
    blob = Blob(b"same")
    assert store.put(blob) == store.put(blob) == store.put_raw(blob.to_bytes())
    assert len(list(store)) == 1


def test_put_raw_refuses_non_objects(store: ObjectStore) -> None:
    for data in (b"", b"hello", encode_header("blob", 3) + b"ab"):
        with pytest.raises(InvalidObjectError):
            store.put_raw(data)
    assert list(store.storage.list("")) == []


def test_missing_object(store: ObjectStore) -> None:
    missing = Blob(b"never stored").id
    with pytest.raises(ObjectNotFoundError) as info:
        store.get(missing)
    assert info.value.object_id == missing
    assert missing.hex() in str(info.value)
    assert isinstance(info.value, NotFoundError) and isinstance(info.value, LookupError)
    with pytest.raises(ObjectNotFoundError):
        store.copy_blob_to(missing, io.BytesIO())
    assert not store.has(missing)
    assert missing not in store


def test_kind_confusion_through_the_store(store: ObjectStore) -> None:
    a, _, tree, _ = sample_objects()
    store.put(a)
    store.put(tree)
    with pytest.raises(InvalidObjectError, match=a.id.hex()):
        store.get_tree(a.id)
    with pytest.raises(InvalidObjectError, match=tree.id.hex()):
        store.get_commit(tree.id)
    with pytest.raises(InvalidObjectError):
        store.read_blob(tree.id)
    with pytest.raises(InvalidObjectError):
        store.copy_blob_to(tree.id, io.BytesIO())


def test_hostile_object_is_refused_on_read(store: ObjectStore) -> None:
    payload = b"\xdd\xff\xff\xff\xff" + b"\x00" * 5  # an array of 4 Gi items, in 10 bytes
    object_id = store.put_raw(encode_header("tree", len(payload)) + payload)
    with pytest.raises(InvalidObjectError, match=object_id.hex()):
        store.get(object_id)


# ---- has / iteration -----------------------------------------------------------


def test_has_and_has_many(store: ObjectStore) -> None:
    a, b, tree, commit = sample_objects()
    store.put(a)
    with store.writer() as writer:
        writer.add(tree)
    missing = commit.id
    assert store.has(a.id) and store.has(tree.id)
    assert not store.has(b.id)
    assert a.id in store and missing not in store
    assert store.has_many([a.id, b.id, tree.id, missing]) == {a.id, tree.id}
    assert store.has_many([]) == set()


def test_has_many_with_many_ids(store: ObjectStore) -> None:
    # More than 64 unknown ids: remote backends answer from one listing instead.
    present = [store.put(Blob(f"loose {i}".encode())) for i in range(40)]
    with store.writer() as writer:
        present += [writer.add(Blob(f"packed {i}".encode())) for i in range(20)]
    absent = [Blob(f"absent {i}".encode()).id for i in range(40)]
    fresh = ObjectStore(store.storage)
    assert fresh.has_many(present + absent) == set(present)


def test_iteration_yields_loose_and_packed_ids(store: ObjectStore) -> None:
    a, b, tree, commit = sample_objects()
    store.put(a)
    store.put(b)
    with store.writer() as writer:
        writer.add(tree)
        writer.add(commit)
        writer.add(a)  # packed and loose: still yielded once
    ids = list(store)
    assert sorted(ids) == sorted({a.id, b.id, tree.id, commit.id})
    assert sorted(ObjectStore(store.storage)) == sorted(ids)
    assert sorted(store.iter_loose()) == sorted([a.id, b.id])


def test_an_id_is_resolved_in_full_or_by_a_unique_prefix() -> None:
    store = ObjectStore(MemoryStorage())
    by_prefix: dict[str, Blob] = {}
    for i in range(100_000):  # two blobs whose ids share their first 4 hex digits
        blob = Blob(str(i).encode())
        twin = by_prefix.setdefault(blob.id.hex()[:4], blob)
        if twin is not blob:
            break
    store.put(twin)
    store.put(blob)
    for object_id in (twin.id, blob.id):
        assert resolve_id(store, object_id.hex().upper()) == object_id
    with pytest.raises(UsageError, match="ambiguous"):
        resolve_id(store, blob.id.hex()[:4].upper())
    assert resolve_id(store, blob.id.hex()[:12].upper()) == blob.id
    assert resolve_id(store, "ab" * 32) == bytes.fromhex("ab" * 32)  # a full id is not looked up
    with pytest.raises(NotFoundError, match="no object id starts with"):
        resolve_id(store, ("ff" if blob.id.hex()[:2] != "ff" else "00") * 6)
    for bad in ("abc", "xyz!", "g" * 64, "a" * 65):
        with pytest.raises(UsageError, match="not an object id"):
            resolve_id(store, bad)


# ---- packs -------------------------------------------------------------------


def test_pack_writer_publishes_on_close(store: ObjectStore) -> None:
    objs = sample_objects()
    other = ObjectStore(store.storage)
    writer = store.writer()
    ids = [writer.add(obj) for obj in objs]
    assert pack_keys(store.storage) == []  # nothing visible before close
    assert other.has_many(ids) == set()
    writer.close()
    keys = pack_keys(store.storage)
    assert len(keys) == 2
    name = keys[0][len("packs/") : -len(".idx")]
    assert keys == [f"packs/{name}.idx", f"packs/{name}.pack"]
    assert other.has_many(ids) == set(ids)
    for obj in objs:
        assert other.get(obj.id) == obj
    assert store.packs() == {name}
    assert list(store.iter_loose()) == []
    assert writer.objects_written == len(objs)
    with pytest.raises(UsageError):
        writer.add(Blob(b"after close"))


def test_pack_and_index_bytes(store: ObjectStore) -> None:
    objs = sample_objects()
    with store.writer() as writer:
        for obj in objs:
            writer.add(obj)
    (name,) = store.packs()
    pack = store.storage.get(f"packs/{name}.pack")
    assert pack[:8] == PACK_MAGIC == b"CASPACK1"
    assert blake3.blake3(pack).hexdigest() == name
    assert pack[8:] == b"".join(obj.to_bytes() for obj in objs)  # in order, back to back
    index = store.storage.get(f"packs/{name}.idx")
    assert index[:8] == INDEX_MAGIC == b"CASIDX01"
    (count,) = struct.unpack(">I", index[8:12])
    assert count == len(objs) and len(index) == 12 + 44 * count
    entries = [struct.unpack(">32sQI", index[12 + 44 * i : 56 + 44 * i]) for i in range(count)]
    assert [e[0] for e in entries] == sorted(obj.id for obj in objs)
    for object_id, offset, length in entries:
        assert blake3.blake3(pack[offset : offset + length]).digest() == object_id
    assert decode_index(index, name) == entries


def test_pack_example_of_the_format_doc(format_vectors: dict[str, dict[str, bytes]]) -> None:
    storage = MemoryStorage()
    store = ObjectStore(storage)
    with store.writer() as writer:
        for obj in (Tree(()), Blob(b"hello\n"), Blob(b"")):
            writer.add(obj)
    (name,) = store.packs()
    pack, idx = format_vectors["pack-example"], format_vectors["idx-example"]
    assert name == pack["id"].hex()
    assert storage.get(f"packs/{name}.pack") == pack["bytes"]
    assert storage.get(f"packs/{name}.idx") == idx["bytes"]


def test_pack_writer_publishes_nothing_on_exception(store: ObjectStore) -> None:
    objs = sample_objects()
    with pytest.raises(RuntimeError, match="boom"):
        with store.writer() as writer:
            for obj in objs:
                writer.add(obj)
            raise RuntimeError("boom")
    assert pack_keys(store.storage) == []
    assert store.packs() == set()
    assert store.has_many(obj.id for obj in objs) == set()
    assert ObjectStore(store.storage).has_many(obj.id for obj in objs) == set()
    with pytest.raises(UsageError):
        writer.add(Blob(b"after discard"))
    if isinstance(store.storage, LocalStorage):
        assert os.listdir(store.storage.tmp_dir) == []


def test_pack_writer_discard(store: ObjectStore) -> None:
    writer = store.writer()
    blob_id = writer.add(Blob(b"abandoned"))
    writer.discard()
    writer.close()  # closing a discarded writer publishes nothing
    assert pack_keys(store.storage) == []
    assert not store.has(blob_id)


def test_empty_pack_writer_publishes_nothing(store: ObjectStore) -> None:
    with store.writer():
        pass
    assert pack_keys(store.storage) == []


def test_pack_writer_skips_duplicates(store: ObjectStore) -> None:
    blob = Blob(b"dup")
    with store.writer() as writer:
        writer.add(blob)
        writer.add(blob)
        writer.add_blob(b"dup")
    assert writer.objects_written == 1
    with store.writer() as again:
        again.add(blob)  # already packed: nothing new
    assert again.objects_written == 0
    assert len(store.packs()) == 1


def test_pack_writer_rolls_over_past_the_limit(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packs_module, "PACK_LIMIT", 200)
    blobs = [Blob(bytes([i]) * 90) for i in range(6)]
    with store.writer() as writer:
        for blob in blobs:
            writer.add(blob)
    assert len(store.packs()) >= 3
    fresh = ObjectStore(store.storage)
    for blob in blobs:
        assert fresh.get(blob.id) == blob


def test_second_store_sees_packs_published_by_the_first(storage: Storage) -> None:
    first, second = ObjectStore(storage), ObjectStore(storage)
    assert second.packs() == set()  # second has looked, and cached that nothing is there
    objs = sample_objects()
    with first.writer() as writer:
        for obj in objs:
            writer.add(obj)
    for obj in objs:  # found on a miss, without an explicit refresh
        assert second.get(obj.id) == obj
    with first.writer() as writer:
        later = writer.add(Blob(b"later"))
    assert second.has(later)
    second.refresh_packs()
    assert second.packs() == first.packs()
    assert len(second.packs()) == 2


def test_objects_of_big_and_small_packs_are_found_and_forgotten(storage: Storage) -> None:
    """Small packs share one lookup dict and big ones are searched in place: both kinds
    must answer, and a forgotten pack's objects must go from either."""
    writer_store = ObjectStore(storage)
    many = [Blob(f"big pack {i}".encode()) for i in range(SMALL_PACK + 1)]
    with writer_store.writer() as writer:
        for blob in many:
            writer.add(blob)
    (big_pack,) = writer_store.packs()
    few = []
    for i in range(3):
        with writer_store.writer() as writer:
            few.append(writer.add(Blob(f"small pack {i}".encode())))
    reader = ObjectStore(storage)
    reader.refresh_packs()
    assert all(reader.get(blob.id) == blob for blob in many[:: SMALL_PACK // 8])
    assert all(reader.has(blob_id) for blob_id in few)
    assert reader.has_many([b.id for b in many[:5]] + few) == {b.id for b in many[:5]} | set(few)
    storage.delete(f"packs/{big_pack}.pack")
    storage.delete(f"packs/{big_pack}.idx")
    reader.forget_pack(big_pack)
    assert not reader.has(many[0].id)
    assert all(reader.has(blob_id) for blob_id in few)


def test_adopt_pack_publishes_another_stores_pack_as_it_is(storage: Storage, tmp_path) -> None:
    source = ObjectStore(LocalStorage(str(tmp_path / "source")))
    blobs = [Blob(f"blob {i}".encode() * 10) for i in range(50)]
    with source.writer() as writer:
        for blob in blobs:
            writer.add(blob)
    (name,) = source.packs()
    data, entries = source.storage.get(f"packs/{name}.pack"), source.pack_entries(name)
    store = ObjectStore(storage)
    assert store.adopt_pack(data, entries) == name  # same bytes, same name
    assert store.packs() == {name}
    assert all(ObjectStore(storage).get(blob.id) == blob for blob in blobs)


def test_adopt_pack_checks_every_object_and_publishes_nothing_bad(storage: Storage) -> None:
    blobs = [Blob(f"blob {i}".encode()) for i in range(5)]
    entries, body = [], bytearray(PACK_MAGIC)
    for blob in blobs:
        raw = blob.to_bytes()
        entries.append((blob.id, len(body), len(raw)))
        body += raw
    store = ObjectStore(storage)
    damaged = bytearray(body)
    damaged[entries[3][1] + entries[3][2] - 1] ^= 1  # the last byte of the fourth blob
    with pytest.raises(CorruptObjectError) as caught:
        store.adopt_pack(bytes(damaged), entries)
    assert caught.value.object_id == blobs[3].id
    beyond = [*entries[:4], (blobs[4].id, len(body) - 3, 10)]
    with pytest.raises(InvalidObjectError, match="out of range"):
        store.adopt_pack(bytes(body), beyond)
    with pytest.raises(InvalidObjectError, match="not a pack"):
        store.adopt_pack(b"XX" + bytes(body), entries)
    assert store.packs() == set() and not list(storage.list(""))


def test_pack_index_cache_dir(storage: Storage, tmp_path: Path) -> None:
    cache = tmp_path / "index-cache"
    objs = sample_objects()
    writer_store = ObjectStore(storage)
    with writer_store.writer() as writer:
        for obj in objs:
            writer.add(obj)
    (name,) = writer_store.packs()
    index = storage.get(f"packs/{name}.idx")

    cached_store = ObjectStore(storage, cache_dir=str(cache))
    assert cached_store.get(objs[0].id) == objs[0]
    assert (cache / f"{name}.idx").read_bytes() == index
    assert sorted(os.listdir(cache)) == [f"{name}.idx"]  # no temporary files left

    # Spoil the index in storage: a store with the cache still reads, one without cannot.
    storage.put(f"packs/{name}.idx", b"garbage")
    again = ObjectStore(storage, cache_dir=str(cache))
    for obj in objs:
        assert again.get(obj.id) == obj
    with pytest.warns(UserWarning, match="bad header"), pytest.raises(NotFoundError):
        ObjectStore(storage).get(objs[0].id)


def test_two_readers_caching_one_index_at_once_both_read_it(
    storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads of one process (a command's reader beside its writer) fetch the
    same index into the cache together: neither may fail for the other's file."""
    objs = sample_objects()
    with ObjectStore(storage).writer() as writer:
        for obj in objs:
            writer.add(obj)
    cache = tmp_path / "index-cache"
    first, second = (ObjectStore(storage, cache_dir=str(cache)) for _ in "ab")
    real_replace = os.replace
    raced: list[bool] = []

    def replace_after_another_reader(src: str, dst: str) -> None:
        if not raced:  # the other reader fetches and caches the index meanwhile
            raced.append(True)
            assert second.get(objs[0].id) == objs[0]
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_another_reader)
    assert first.get(objs[1].id) == objs[1]
    assert raced and len(os.listdir(cache)) == 1  # the index, no temporary file left


# ---- large blobs -------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2], ids=["buffer-copy", "kernel-copy"])
def test_large_blob_goes_loose_and_streams_back(
    store: ObjectStore, tmp_path: Path, threads: int
) -> None:
    path, data = big_file(tmp_path)
    object_id, size = store.put_blob_file(path, hash_threads=threads)
    assert size == len(data)
    assert object_id == Blob(data).id
    # Kept as the file's bytes exactly: no header, nothing under objects/.
    assert store.storage.get(content_key(object_id)) == data
    assert not store.storage.exists(loose_key(object_id))
    assert store.loose_location(object_id) == content_key(object_id)
    out = io.BytesIO()
    assert store.copy_blob_to(object_id, out) == len(data)
    assert out.getvalue() == data
    assert store.read_blob(object_id) == data
    # Storing it again is a no-op with the same answer.
    assert store.put_blob_file(path) == (object_id, size)
    if isinstance(store.storage, LocalStorage):
        assert os.listdir(store.storage.tmp_dir) == []


def test_a_large_blob_of_the_older_whole_bytes_form_still_reads(
    store: ObjectStore, tmp_path: Path
) -> None:
    """Stores written before large blobs were kept as content alone hold them whole
    under objects/: every read, listing and deletion still finds them."""
    blob = Blob(os.urandom(LOOSE_THRESHOLD + 5))
    store.storage.put(loose_key(blob.id), blob.to_bytes())
    assert store.loose_location(blob.id) == loose_key(blob.id)
    assert store.has(blob.id) and list(store.iter_loose()) == [blob.id]
    assert store.read_blob(blob.id) == blob.data
    out = io.BytesIO()
    assert store.copy_blob_to(blob.id, out) == len(blob.data)
    assert out.getvalue() == blob.data
    corrupt(store.storage, blob.id, lambda n: n - 1)
    with pytest.raises(CorruptObjectError):
        store.copy_blob_to(blob.id, io.BytesIO())
    store.delete_loose(blob.id)
    assert not store.has(blob.id)


def test_blob_ranges_and_their_in_order_check(store: ObjectStore, tmp_path: Path) -> None:
    path, data = big_file(tmp_path)
    object_id, size = store.put_blob_file(path)
    small = Blob(b"0123456789")
    store.put(small)
    assert store.read_blob_range(object_id, 5, 9) == data[5:9]
    assert store.read_blob_range(object_id, size - 3, size) == data[-3:]
    assert store.read_blob_range(small.id, 2, 5) == b"234"
    whole = Blob(os.urandom(LOOSE_THRESHOLD + 5))  # the older whole-bytes form
    store.storage.put(loose_key(whole.id), whole.to_bytes())
    assert store.read_blob_range(whole.id, 1, 4) == whole.data[1:4]
    # Ranges read in order from the start are checked once they reach the end.
    verifier = InOrderVerifier(object_id, size)
    for start in range(0, size, 300_000):
        verifier.feed(start, data[start : start + 300_000])
    damaged = InOrderVerifier(object_id, size)
    damaged.feed(0, data[:10])
    damaged.feed(5, flip(data, 20)[5:-1])  # overlaps what was fed, damaged after it
    with pytest.raises(CorruptObjectError):
        damaged.feed(size - 1, data[-1:])
    with pytest.raises(CorruptObjectError):  # and so is every read after that
        damaged.feed(0, data[:10])
    # A blob shorter than the range asked for is corrupt, not a short read.
    store.storage.put(content_key(object_id), data[:-10])
    with pytest.raises(CorruptObjectError):
        store.read_blob_range(object_id, size - 20, size)


def test_a_file_is_copied_in_user_space_where_the_kernel_cannot(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """copy_file_range fails across some filesystems (EXDEV) and on some kernels."""
    path, data = big_file(tmp_path, 3 * LOOSE_THRESHOLD + 1)
    calls = []

    def refuse(*args: object) -> int:
        calls.append(args)
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    object_id, size = store.put_blob_file(path, hash_threads=2)
    assert calls and (object_id, size) == (Blob(data).id, len(data))
    assert store.read_blob(object_id) == data


@pytest.mark.parametrize("kernel", [False, True], ids=["buffer-copy", "kernel-copy"])
def test_a_file_rewritten_while_stored_is_refused_and_nothing_stored(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: bool
) -> None:
    """Another writer rewrites the file in place (same size) part-way through the
    copy: the bytes copied mix the file before and after, which it never held at
    once. Its times moved: refused, and nothing is stored under any id."""
    path, data = big_file(tmp_path, 3 * LOOSE_THRESHOLD)
    new_data = os.urandom(len(data))
    real_readv, real_copy = os.readv, os.copy_file_range

    def rewrite() -> None:
        with open(path, "r+b") as f:
            f.write(new_data)

    def readv_then_rewrite(fd: int, buffers: list[bytearray]) -> int:
        n = real_readv(fd, buffers)
        if n:
            rewrite()
        return n

    def copy_then_rewrite(*args: int) -> int:
        if not kernel:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        n = real_copy(*args)
        if n:
            rewrite()
        return n

    monkeypatch.setattr(os, "readv", readv_then_rewrite)
    monkeypatch.setattr(os, "copy_file_range", copy_then_rewrite)
    before = set(store.storage.list(""))
    with pytest.raises(UsageError, match="was written to while it was being read"):
        store.put_blob_file(path)
    monkeypatch.undo()
    assert set(store.storage.list("")) == before


@pytest.mark.parametrize("kernel", [False, True], ids=["buffer-copy", "kernel-copy"])
def test_a_file_that_changes_size_while_stored_is_refused(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: bool
) -> None:
    path, _ = big_file(tmp_path)
    append_after_fstat(monkeypatch, path)
    if not kernel:
        monkeypatch.setattr(os, "copy_file_range", refuse_kernel_copy)
    with pytest.raises(UsageError, match="changed size"):
        store.put_blob_file(path)
    monkeypatch.undo()
    assert list(store.iter_loose()) == []
    if isinstance(store.storage, LocalStorage):
        assert os.listdir(store.storage.tmp_dir) == []


def refuse_kernel_copy(*args: object) -> int:
    raise OSError(errno.EXDEV, "Invalid cross-device link")


def test_pack_writer_sends_large_blobs_loose(store: ObjectStore, tmp_path: Path) -> None:
    path, data = big_file(tmp_path, LOOSE_THRESHOLD)  # exactly the threshold: loose
    small = Blob(b"small")
    raw_big = Blob(os.urandom(LOOSE_THRESHOLD))
    with store.writer() as writer:
        file_id, size = writer.add_file(path)
        raw_id = writer.add(raw_big)
        writer.add(small)
    assert size == LOOSE_THRESHOLD
    assert sorted(store.iter_loose()) == sorted([file_id, raw_id])
    assert store.storage.get(content_key(raw_id)) == raw_big.data  # either way in: content alone
    assert store.storage.get(content_key(file_id)) == data
    (name,) = store.packs()
    assert [e[0] for e in store.pack_entries(name)] == [small.id]
    out = io.BytesIO()
    store.copy_blob_to(file_id, out)
    assert out.getvalue() == data
    assert store.get(raw_id) == raw_big


def test_small_file_through_pack_writer(store: ObjectStore, tmp_path: Path) -> None:
    path = tmp_path / "small.txt"
    path.write_bytes(b"small file\n")
    with store.writer() as writer:
        object_id, size = writer.add_file(str(path))
    assert (object_id, size) == (Blob(b"small file\n").id, 11)
    assert list(store.iter_loose()) == []
    out = io.BytesIO()
    assert store.copy_blob_to(object_id, out) == 11
    assert out.getvalue() == b"small file\n"


def test_empty_file(store: ObjectStore, tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    object_id, size = store.put_blob_file(str(path))
    assert (object_id, size) == (Blob(b"").id, 0)
    out = io.BytesIO()
    assert store.copy_blob_to(object_id, out) == 0
    assert out.getvalue() == b""


# ---- corruption ----------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 3, 10, -1], ids=["header", "kind", "payload", "last"])
def test_corrupt_loose_object_is_detected(store: ObjectStore, position: int) -> None:
    a, b, tree, commit = sample_objects()
    for obj in (a, tree, commit):
        store.put(obj)
        corrupt(store.storage, obj.id, lambda n: position % n)
        with pytest.raises(CorruptObjectError) as info:
            store.get(obj.id)
        assert info.value.object_id == obj.id
        assert obj.id.hex() in str(info.value)
        with pytest.raises(CorruptObjectError):
            store.get_raw(obj.id)


@pytest.mark.parametrize("position", [0, 3, 10, -1], ids=["header", "kind", "payload", "last"])
def test_corrupt_packed_object_is_detected(store: ObjectStore, position: int) -> None:
    a, b, tree, commit = sample_objects()
    with store.writer() as writer:
        for obj in (a, b, tree, commit):
            writer.add(obj)
    corrupt(store.storage, tree.id, lambda n: position % n)
    for reader in (store, ObjectStore(store.storage)):
        with pytest.raises(CorruptObjectError) as info:
            reader.get(tree.id)
        assert info.value.object_id == tree.id
        assert tree.id.hex() in str(info.value)
        # Its neighbours in the same pack are intact.
        assert reader.get(a.id) == a and reader.get(b.id) == b and reader.get(commit.id) == commit


def test_copy_blob_to_detects_a_corrupt_large_blob(store: ObjectStore, tmp_path: Path) -> None:
    path, data = big_file(tmp_path)
    object_id, _ = store.put_blob_file(path)
    for position in (100, len(data) // 2, -1):
        corrupt(store.storage, object_id, lambda n, at=position: at % n)
        with pytest.raises(CorruptObjectError) as info:
            store.copy_blob_to(object_id, io.BytesIO())
        assert info.value.object_id == object_id
        corrupt(store.storage, object_id, lambda n, at=position: at % n)  # flip it back
        out = io.BytesIO()
        store.copy_blob_to(object_id, out)
        assert out.getvalue() == data


def test_copy_blob_to_detects_a_truncated_blob(store: ObjectStore, tmp_path: Path) -> None:
    path, _ = big_file(tmp_path)
    object_id, _ = store.put_blob_file(path)
    key = content_key(object_id)
    store.storage.put(key, store.storage.get(key)[:-1])
    with pytest.raises(CorruptObjectError):
        store.copy_blob_to(object_id, io.BytesIO())


def test_copy_blob_to_detects_a_corrupt_packed_blob(store: ObjectStore) -> None:
    a, b, _, _ = sample_objects()
    with store.writer() as writer:
        writer.add(a)
        writer.add(b)
    corrupt(store.storage, b.id, lambda n: 20)
    with pytest.raises(CorruptObjectError) as info:
        store.copy_blob_to(b.id, io.BytesIO())
    assert info.value.object_id == b.id


@pytest.mark.parametrize("position", [0, 1, 3], ids=["array", "version", "kind"])
def test_copy_blob_to_reports_a_corrupt_header_as_corruption(
    store: ObjectStore, position: int
) -> None:
    blob = Blob(b"hello world")
    store.put(blob)
    corrupt(store.storage, blob.id, lambda n: position % n)
    with pytest.raises(CorruptObjectError):
        store.copy_blob_to(blob.id, io.BytesIO())


# A Ctrl-C landing while the pool starts its workers (here: after the first one).
INTERRUPTED_POOL = """
import os, signal, sys
from concurrent.futures import process
from cas import Repository, ingest

real_spawn = process.ProcessPoolExecutor._spawn_process
def spawn_then_interrupt(self):
    real_spawn(self)
    if len(self._processes) == 1:
        os.kill(os.getpid(), signal.SIGINT)
process.ProcessPoolExecutor._spawn_process = spawn_then_interrupt

root = sys.argv[1]
files = []
for i in range(ingest.PARALLEL_MIN_FILES + 10):
    path = os.path.join(root, f"f{i}")
    with open(path, "w") as f:
        f.write(str(i))
    files.append((path, len(str(i))))
repo = Repository.open(os.path.join(root, "store"))
try:
    with repo.writing():
        ingest.store_files(repo.objects, files)
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.skipif(ingest.CORES < 2, reason="the pool needs two cores")
def test_an_interrupt_while_the_pool_starts_leaves_no_worker_behind(tmp_path: Path) -> None:
    """Workers ignore Ctrl-C; interrupted before the pool could stop them, they would
    wait for work forever, holding the terminal's pipes (seen: a hung `artifacts log`)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_POOL, str(tmp_path)],
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = proc.communicate(timeout=30)  # a worker left behind keeps the pipes open
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err


def test_a_file_copied_in_short_unaligned_pieces_is_named_by_its_bytes(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel may copy less than asked: every piece is hashed from wherever it
    starts, mapped from the page below it."""
    path, data = big_file(tmp_path, 3 * LOOSE_THRESHOLD + 7)
    real_copy = os.copy_file_range

    def short(src: int, dst: int, count: int, *rest: int) -> int:
        return real_copy(src, dst, min(count, 123_457), *rest)

    monkeypatch.setattr(os, "copy_file_range", short)
    object_id, size = store.put_blob_file(path, hash_threads=2)
    assert (object_id, size) == (Blob(data).id, len(data))
    assert store.read_blob(object_id) == data


def test_a_kernel_copy_that_fails_half_way_starts_again_in_user_space(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = big_file(tmp_path, 3 * LOOSE_THRESHOLD)
    real_copy = os.copy_file_range
    calls = []

    def fail_second(src: int, dst: int, count: int, *rest: int) -> int:
        calls.append(count)
        if len(calls) > 1:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_copy(src, dst, min(count, LOOSE_THRESHOLD), *rest)

    monkeypatch.setattr(os, "copy_file_range", fail_second)
    object_id, size = store.put_blob_file(path, hash_threads=2)
    assert len(calls) == 2 and (object_id, size) == (Blob(data).id, len(data))
    assert store.read_blob(object_id) == data


def test_a_copy_runs_only_a_few_segments_ahead_of_its_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashed while still in the page cache: a copy far ahead of a slower hash would
    have the hash read a huge file back from the disk."""
    store = ObjectStore(LocalStorage(str(tmp_path / "store")))  # any store: the same copy
    path, data = big_file(tmp_path, 3 * LOOSE_THRESHOLD)
    monkeypatch.setattr(_fastio, "SEGMENT", LOOSE_THRESHOLD // 8)  # 24 segments
    real_copy, real_hash = os.copy_file_range, _fastio._hash_range
    copies, hashes, lead = [], [], []

    def counted_copy(*args: int) -> int:
        copies.append(1)
        return real_copy(*args)

    def slow_hash(*args: object) -> None:
        lead.append(len(copies) - len(hashes))
        threading.Event().wait(0.01)
        real_hash(*args)  # type: ignore[arg-type]
        hashes.append(1)

    monkeypatch.setattr(os, "copy_file_range", counted_copy)
    monkeypatch.setattr(_fastio, "_hash_range", slow_hash)
    object_id, _ = store.put_blob_file(path, hash_threads=1)
    assert object_id == Blob(data).id and len(hashes) == 24
    assert max(lead) <= _fastio.AHEAD + 1


def test_an_interrupted_copy_waits_for_no_queued_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C lands in the copy: the hash running finishes, the ones queued never start."""
    store = ObjectStore(LocalStorage(str(tmp_path / "store")))  # any store: the same copy
    path, _ = big_file(tmp_path, 3 * LOOSE_THRESHOLD)
    monkeypatch.setattr(_fastio, "SEGMENT", LOOSE_THRESHOLD // 8)
    real_copy = os.copy_file_range
    copies, hashes = [], []
    interrupted = threading.Event()

    def copy_then_interrupt(*args: int) -> int:
        copies.append(1)
        if len(copies) == 3:
            interrupted.set()
            raise KeyboardInterrupt
        return real_copy(*args)

    def held_hash(*args: object) -> None:
        interrupted.wait(10)  # the first is running when the interrupt lands
        hashes.append(args)

    monkeypatch.setattr(os, "copy_file_range", copy_then_interrupt)
    monkeypatch.setattr(_fastio, "_hash_range", held_hash)
    with pytest.raises(KeyboardInterrupt):
        store.put_blob_file(path, hash_threads=1)
    assert len(hashes) == 1
