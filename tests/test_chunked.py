"""Large files stored as content-defined chunks (docs/format.md, 4.2): the chunk list
format, storing a file as chunks, and reading it back, whole or a range, verified."""

from __future__ import annotations

import functools
import io
import json
import os
import random
import struct
import time
from pathlib import Path
from typing import Any

import blake3
import pytest

from cas import Repository, chunked, chunklists, keys
from cas.errors import CorruptObjectError, InvalidObjectError, UsageError
from cas.fsck import fsck
from cas.gc import gc
from cas.objects import Blob, Commit, Tree, TreeEntry
from cas.packs import pack_name
from cas.repair import repair
from cas.storage import Storage
from cas.store import InOrderVerifier, ObjectStore
from cas.walk import reachable
from remotes import transfer
from tests.helpers import append_after_fstat, corrupt
from tests.processes import python
from tests.servers import open_storage_from_spec

THRESHOLD = 1 << 20
GRACE = 3600.0


@pytest.fixture
def store(storage: Storage) -> ObjectStore:
    store = ObjectStore(storage)
    store.chunk_threshold = THRESHOLD
    return store


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def noise(size: int) -> bytes:
    """The same bytes on every run: where an edit's chunks end again depends on them (a
    run of chunks cut at their greatest length ends only at a content-defined cut)."""
    return random.Random(size).randbytes(size)


def stored_bytes(store: ObjectStore) -> int:
    return sum(store.storage.stat(k).size for k in store.storage.list(""))


# ---- the format ------------------------------------------------------------------


def test_the_chunk_list_vector_of_the_format_doc(format_vectors):
    hello, world = Blob(b"hello "), Blob(b"world\n")
    data = chunklists.encode([hello.id, world.id], [6, 6])
    assert format_vectors["chunklist-example"]["bytes"] == data
    assert chunklists.decode(data, "x") == chunklists.ChunkList(12, (hello.id, world.id), (6, 6))
    assert Blob(b"hello world\n").id.hex().startswith("20b421d2")


def test_the_chunk_cuts_vector_of_the_format_doc(format_vectors):
    data = blake3.blake3(b"cas chunking").digest(length=1 << 20)
    cuts = b"".join(struct.pack(">I", n) for n in chunked.cut_points(data))
    assert format_vectors["chunk-cuts"]["bytes"] == cuts


def test_a_chunk_list_of_many_blocks_has_fences_and_reads_back():
    rng = random.Random(1)
    lengths = [rng.randrange(1, 5000) for _ in range(2 * chunklists.BLOCK + 7)]
    ids = [rng.randbytes(32) for _ in lengths]
    data = chunklists.encode(ids, lengths)
    head = chunklists.decode_head(data, "x")
    assert head.fences == (sum(lengths[:1024]), sum(lengths[:2048]))
    assert head.block_of(0) == 0 and head.block_of(head.fences[0]) == 1
    decoded = chunklists.decode(data, "x")
    assert decoded.ids == tuple(ids) and decoded.lengths == tuple(lengths)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[:-1],  # truncated
        lambda d: d + b"\0",  # trailing bytes
        lambda d: b"CASCHNK2" + d[8:],  # another magic
        lambda d: d[:8] + struct.pack(">Q", 1) + d[16:],  # a size the lengths do not make
        lambda d: d[:20] + struct.pack(">Q", 0) + d[28:],  # a fence that does not rise
        lambda d: d[:-4] + struct.pack(">I", 0),  # an empty chunk
    ],
)
def test_a_damaged_chunk_list_is_refused(damage):
    lengths = [100] * (chunklists.BLOCK + 1)
    data = chunklists.encode([bytes(32)] * len(lengths), lengths)
    with pytest.raises(InvalidObjectError):
        chunklists.decode(damage(data), "x")


# ---- storing and reading -----------------------------------------------------------


def test_a_large_file_is_stored_as_chunks_under_its_blob_id(store, tmp_path):
    data = random.Random(2).randbytes(3 * THRESHOLD + 5)
    object_id, size = store.put_blob_file(write(tmp_path / "f", data))
    assert (object_id, size) == (Blob(data).id, len(data))
    assert store.loose_location(object_id) == keys.chunked_key(object_id)
    assert not store.storage.exists(keys.content_key(object_id))
    chunks = store.chunk_list(object_id)
    assert chunks is not None and chunks.size == len(data)
    assert all(chunked.MIN_CHUNK <= n <= chunked.MAX_CHUNK for n in chunks.lengths[:-1])
    assert all(store.pack_of(i) is not None for i in chunks.ids)  # every chunk is packed
    assert b"".join(store.read_blob(i) for i in chunks.ids) == data
    out = io.BytesIO()
    assert store.copy_blob_to(object_id, out) == len(data)
    assert out.getvalue() == data
    assert store.read_blob(object_id) == data
    assert object_id in store and object_id in set(store)


def test_each_pack_of_chunks_is_named_by_the_hash_of_its_bytes(store, tmp_path, monkeypatch):
    # The packs are hashed in a thread of their own while they are written.
    monkeypatch.setattr(chunked, "CHUNK_PACK_LIMIT", THRESHOLD)
    monkeypatch.setattr(chunked, "_WINDOW", 3 * THRESHOLD // 2)
    data = random.Random(20).randbytes(6 * THRESHOLD)
    store.put_blob_file(write(tmp_path / "f", data))
    names = store.packs()
    assert len(names) >= 5
    assert all(pack_name(store.read_pack(name)) == name for name in names)


def test_a_range_reads_only_the_chunks_covering_it(store, tmp_path):
    data = random.Random(3).randbytes(4 * THRESHOLD)
    object_id, _ = store.put_blob_file(write(tmp_path / "f", data))
    fetched: list[int] = []
    get = store.storage.get

    def counting_get(key, start=None, end=None):
        got = get(key, start, end)
        fetched.append(len(got))
        return got

    store.storage.get = counting_get  # type: ignore[method-assign]
    rng = random.Random(4)
    for _ in range(20):
        start = rng.randrange(len(data))
        end = min(len(data), start + rng.randrange(1, 300_000))
        fetched.clear()
        assert store.read_blob_range(object_id, start, end) == data[start:end]
        assert sum(fetched) <= (end - start) + 2 * chunked.MAX_CHUNK + 8192
    verifier = InOrderVerifier(object_id, len(data))
    for start in range(0, len(data), 700_000):
        end = min(len(data), start + 700_000)
        verifier.feed(start, store.read_blob_range(object_id, start, end))


def test_an_edit_in_the_middle_stores_only_the_chunks_around_it(store, tmp_path):
    data = random.Random(5).randbytes(6 * THRESHOLD)
    store.put_blob_file(write(tmp_path / "f", data))
    before = stored_bytes(store)
    edited = data[: 3 * THRESHOLD] + noise(1000) + data[3 * THRESHOLD + 1000 :]
    object_id, _ = store.put_blob_file(write(tmp_path / "f", edited))
    grown = stored_bytes(store) - before
    assert grown < 3 * chunked.MAX_CHUNK + 10_000  # the chunks around it, the list, an index
    assert store.read_blob(object_id) == edited


def test_bytes_inserted_at_the_start_store_only_a_chunk_or_two(store, tmp_path):
    data = random.Random(6).randbytes(6 * THRESHOLD)
    store.put_blob_file(write(tmp_path / "f", data))
    before = stored_bytes(store)
    inserted = noise(100) + data
    object_id, _ = store.put_blob_file(write(tmp_path / "f", inserted))
    assert stored_bytes(store) - before < 2 * chunked.MAX_CHUNK + 10_000
    assert store.read_blob(object_id) == inserted


def test_a_file_already_stored_whole_is_not_chunked_again(store, tmp_path):
    path = write(tmp_path / "f", random.Random(7).randbytes(2 * THRESHOLD))
    store.chunk_threshold = None
    object_id, _ = store.put_blob_file(path)
    store.chunk_threshold = THRESHOLD
    packs = set(store.storage.list("packs/"))
    assert store.put_blob_file(path)[0] == object_id
    assert set(store.storage.list("packs/")) == packs  # nothing cut, nothing packed
    assert not store.storage.exists(keys.chunked_key(object_id))


def test_a_file_that_changes_size_while_it_is_read_is_refused(store, tmp_path, monkeypatch):
    path = write(tmp_path / "f", random.Random(8).randbytes(2 * THRESHOLD))
    append_after_fstat(monkeypatch, path)
    with pytest.raises(UsageError, match="changed size"):
        store.put_blob_file(path)
    monkeypatch.undo()
    assert not list(store.storage.list(keys.CHUNKED_PREFIX))


@pytest.mark.parametrize("threads", [1, 2, 5])
@pytest.mark.parametrize("window", [200_000, 1 << 20])
def test_windows_cut_in_threads_cut_as_the_whole_file_at_once(
    store, tmp_path, monkeypatch, window, threads
):
    # Each segment of a window is cut alone in a thread, then joined to the cuts before.
    monkeypatch.setattr(chunked, "_WINDOW", window)
    data = random.Random(10).randbytes(5 * THRESHOLD + 12345)
    object_id, _ = store.put_blob_file(write(tmp_path / "f", data), hash_threads=threads)
    chunks = store.chunk_list(object_id)
    assert chunks is not None and list(chunks.lengths) == list(chunked.cut_points(data))
    assert store.read_blob(object_id) == data


def test_a_damaged_chunk_is_caught_by_its_own_id(store, tmp_path):
    data = random.Random(9).randbytes(3 * THRESHOLD)
    object_id, _ = store.put_blob_file(write(tmp_path / "f", data))
    chunks = store.chunk_list(object_id)
    assert chunks is not None
    victim = chunks.ids[5]
    corrupt(store.storage, victim, lambda n: n - 1)
    fresh = ObjectStore(store.storage)
    with pytest.raises(CorruptObjectError) as caught:
        fresh.copy_blob_to(object_id, io.BytesIO())
    assert caught.value.object_id == victim
    start = sum(chunks.lengths[:5])
    with pytest.raises(CorruptObjectError):
        fresh.read_blob_range(object_id, start, start + 10)
    assert fresh.read_blob_range(object_id, 0, 10) == data[:10]  # other chunks read fine


def test_a_chunk_list_naming_other_chunks_fails_the_whole_id(store, tmp_path):
    a = random.Random(10).randbytes(2 * THRESHOLD)
    b = random.Random(11).randbytes(2 * THRESHOLD)
    id_a, _ = store.put_blob_file(write(tmp_path / "a", a))
    id_b, _ = store.put_blob_file(write(tmp_path / "b", b))
    store.storage.put(keys.chunked_key(id_a), store.storage.get(keys.chunked_key(id_b)))
    with pytest.raises(CorruptObjectError):
        store.copy_blob_to(id_a, io.BytesIO())
    with pytest.raises(CorruptObjectError):
        store.read_blob(id_a)


# ---- walk, gc, fsck, repair ------------------------------------------------------


def log_files(
    repo: Repository, ref: str, files: dict[str, bytes], tmp_path: Path, whole: bool = False
) -> Commit:
    """Store ``files`` (chunked when large, unless ``whole``) under one tree, and point
    ``ref`` at a commit of it."""
    repo.objects.chunk_threshold = None if whole else THRESHOLD
    entries = []
    for name, data in files.items():
        object_id, size = repo.objects.put_blob_file(write(tmp_path / name, data))
        entries.append(TreeEntry(name, "blob", object_id, size))
    tree = Tree(tuple(entries))
    commit = Commit(tree.id, meta={"ref": ref})
    repo.objects.put(tree)
    repo.objects.put(commit)
    repo.update_ref(ref, lambda old: commit.id)
    return commit


def edited(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + b"an edit" * 100 + data[middle + 700 :]


def age(root: Path, seconds: float) -> None:
    then = time.time() - seconds
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def test_a_walk_reaches_the_chunks_of_a_chunked_file(repo, tmp_path):
    data = random.Random(12).randbytes(2 * THRESHOLD)
    commit = log_files(repo, "a", {"a.bin": data}, tmp_path)
    file_id = Blob(data).id
    chunks = repo.objects.chunk_list(file_id)
    assert chunks is not None
    walked = {i for i, _ in reachable(repo.objects, [commit.id])}
    assert set(chunks.ids) | {file_id, commit.id, commit.tree} == walked


def test_gc_keeps_the_chunks_a_reachable_file_shares_and_moves_the_rest(tmp_path):
    repo = Repository.open(str(tmp_path / "store"))
    repo.set_lease_seconds(60)
    a = random.Random(13).randbytes(4 * THRESHOLD)
    b = edited(a)
    log_files(repo, "a", {"a.bin": a}, tmp_path)
    log_files(repo, "b", {"b.bin": b}, tmp_path)
    id_a, id_b = Blob(a).id, Blob(b).id
    chunks_a, chunks_b = repo.objects.chunk_list(id_a), repo.objects.chunk_list(id_b)
    assert chunks_a is not None and chunks_b is not None
    only_a = set(chunks_a.ids) - set(chunks_b.ids)
    assert only_a and set(chunks_a.ids) & set(chunks_b.ids)
    commit_a = repo.refs.read("a")
    repo.refs.delete_if_equals("a", commit_a)
    age(tmp_path / "store", 2 * GRACE)

    gc(repo, grace_seconds=GRACE)
    fresh = Repository.open(str(tmp_path / "store"))
    assert fsck(fresh).ok
    assert fresh.objects.read_blob(id_b) == b
    assert not fresh.storage.exists(keys.chunked_key(id_a))  # the list went, referrer first
    assert fresh.objects.has_many(only_a) == set()
    assert fresh.objects.has_many(chunks_b.ids) == set(chunks_b.ids)  # shared ones stay

    # Reached again: the next gc restores the list and its chunks, chunks first.
    fresh.refs.set_if_equals("a", None, commit_a)
    age(tmp_path / "store" / "fossils", 200)
    gc(fresh, grace_seconds=GRACE)
    again = Repository.open(str(tmp_path / "store"))
    assert again.objects.has_many(chunks_a.ids) == set(chunks_a.ids)
    assert again.storage.exists(keys.chunked_key(id_a))
    assert again.objects.read_blob(id_a) == a and fsck(again).ok

    # Unreached for good: moved, then deleted, and the shared chunks still stay.
    again.refs.delete_if_equals("a", commit_a)
    age(tmp_path / "store", 2 * GRACE)
    gc(again, grace_seconds=GRACE)
    age(tmp_path / "store" / "fossils", 200)
    gc(again, grace_seconds=GRACE)
    last = Repository.open(str(tmp_path / "store"))
    assert last.objects.fossils.has_many(only_a) == set()
    assert not last.storage.exists("fossils/" + keys.chunked_key(id_a))
    assert last.objects.read_blob(id_b) == b and fsck(last).ok


def _held_both_ways_unreached(tmp_path: Path, seed: int) -> tuple[Path, Repository, bytes, Commit]:
    """A store whose one file, logged as chunks, is also held whole beside them, its
    version no longer reached, all of it older than the grace."""
    root = tmp_path / "store"
    repo = Repository.open(str(root))
    repo.set_lease_seconds(60)
    content = random.Random(seed).randbytes(3 * THRESHOLD)
    commit = log_files(repo, "a", {"a.bin": content}, tmp_path)
    repo.storage.put(keys.content_key(Blob(content).id), content)  # whole, beside its chunks
    repo.refs.delete_if_equals("a", commit.id)
    age(root, 2 * GRACE)
    return root, repo, content, commit


def test_gc_keeps_the_chunks_of_a_file_held_both_whole_and_as_chunks(tmp_path):
    """One file's content held whole and as chunks (logged before and after the
    threshold changed, or a whole fossil restored beside its chunks): the chunk list
    gc keeps keeps its chunks, in the store, through both of gc's steps."""
    root, repo, a, _ = _held_both_ways_unreached(tmp_path, 17)
    file_id = Blob(a).id
    chunks = repo.objects.chunk_list(file_id)
    assert chunks is not None
    for key in (keys.content_key(file_id), keys.chunked_key(file_id)):
        os.utime(root / key)  # logged again just now: within the grace, its old chunks too

    gc(repo, grace_seconds=GRACE)
    age(root / "fossils", 200)  # past two leases: the second gc deletes old fossils
    gc(repo, grace_seconds=GRACE)
    fresh = Repository.open(str(root))
    assert fresh.storage.exists(keys.chunked_key(file_id))
    assert fresh.objects.has_many(chunks.ids) == set(chunks.ids)
    fresh.storage.delete(keys.content_key(file_id))  # read through the chunks alone
    assert fresh.objects.read_blob(file_id) == a


def test_gc_keeps_the_chunks_of_a_file_held_both_packed_and_as_chunks(tmp_path):
    # A file under the loose threshold chunked (a store with a low chunk threshold),
    # then packed whole: the pack's copy must not hide what its chunk list reaches.
    root = tmp_path / "store"
    repo = Repository.open(str(root))
    repo.set_lease_seconds(60)
    repo.objects.chunk_threshold = 256 << 10
    data = random.Random(19).randbytes(900 << 10)
    file_id, _ = repo.objects.put_blob_file(write(tmp_path / "f", data))
    chunks = repo.objects.chunk_list(file_id)
    assert chunks is not None
    age(root, 2 * GRACE)  # its chunks' pack is old
    with repo.objects.writer() as writer:
        writer.add_blob(data)  # the same file packed whole, now
    os.utime(root / keys.chunked_key(file_id))

    gc(repo, grace_seconds=GRACE)
    age(root / "fossils", 200)
    gc(repo, grace_seconds=GRACE)
    fresh = Repository.open(str(root))
    assert fresh.storage.exists(keys.chunked_key(file_id))
    assert fresh.objects.has_many(chunks.ids) == set(chunks.ids)


def test_gc_moves_a_file_held_both_ways_without_leaving_a_chunk_list_broken(tmp_path):
    root, repo, a, commit = _held_both_ways_unreached(tmp_path, 18)
    file_id = Blob(a).id

    gc(repo, grace_seconds=GRACE)
    fresh = Repository.open(str(root))
    assert fresh.objects.loose_location(file_id) is None  # every form moved aside
    fresh.refs.set_if_equals("a", None, commit.id)  # reached again: the next gc restores it
    age(root / "fossils", 200)
    gc(fresh, grace_seconds=GRACE)
    again = Repository.open(str(root))
    assert again.objects.read_blob(file_id) == a and fsck(again).ok


def test_fsck_names_a_damaged_chunk_with_the_files_using_it_and_repair_fixes_it(repo, tmp_path):
    a = random.Random(14).randbytes(3 * THRESHOLD)
    files = {"a.bin": a, "b.bin": edited(a)}
    log_files(repo, "v", files, tmp_path)
    chunks = repo.objects.chunk_list(Blob(a).id)
    assert chunks is not None
    shared = chunks.ids[1]
    corrupt(repo.storage, shared, lambda n: n - 1)
    damaged = Repository(repo.storage)
    report = fsck(damaged)
    assert [(p.problem, p.object_id) for p in report.problems] == [("corrupt", shared.hex())]
    assert sorted(report.problems[0].used_by) == ["a.bin", "b.bin"]
    assert report.problems[0].where.startswith("packs/")

    copy = Repository.open(str(tmp_path / "copy"))
    log_files(copy, "v", files, tmp_path)
    result = repair(damaged, copy.objects)
    assert result.ok and shared.hex() in result.repaired
    assert damaged.objects.read_blob(Blob(a).id) == a


def test_fsck_names_a_missing_chunk(repo, tmp_path):
    a = random.Random(15).randbytes(2 * THRESHOLD)
    log_files(repo, "v", {"a.bin": a}, tmp_path)
    chunks = repo.objects.chunk_list(Blob(a).id)
    assert chunks is not None
    # A chunk list naming a chunk no store holds (as a hostile or damaged store might).
    ids = [*chunks.ids]
    ids[0] = bytes(32)
    repo.storage.put(keys.chunked_key(Blob(a).id), chunklists.encode(ids, [*chunks.lengths]))
    report = fsck(Repository(repo.storage))
    assert [(p.problem, p.object_id, p.used_by) for p in report.problems] == [
        ("missing", bytes(32).hex(), ["a.bin"])
    ]


# ---- copies between stores -------------------------------------------------------


def test_a_copy_sends_only_the_chunks_the_other_side_lacks(repo, tmp_path):
    src = Repository.open(str(tmp_path / "src"))
    a = random.Random(16).randbytes(6 * THRESHOLD)
    first = log_files(src, "v", {"f.bin": a}, tmp_path)
    ids = transfer.missing(src.objects, repo.objects, [first.id])
    sent = transfer.copy_objects(src.objects, repo.objects, ids)
    assert sent.bytes >= len(a)
    dst = Repository(repo.storage)
    assert dst.storage.exists(keys.chunked_key(Blob(a).id))
    assert dst.objects.read_blob(Blob(a).id) == a

    second = log_files(src, "v", {"f.bin": edited(a)}, tmp_path)
    ids = transfer.missing(src.objects, dst.objects, [second.id])
    sent = transfer.copy_objects(src.objects, dst.objects, ids)
    assert sent.bytes < 3 * chunked.MAX_CHUNK + 20_000  # the new chunks and the list
    dst.update_ref("v", lambda old: second.id)
    assert fsck(Repository(repo.storage)).ok

    # Back the other way, into a new local store: verified there against the file's id.
    back = Repository.open(str(tmp_path / "back"))
    transfer.copy_objects(
        dst.objects, back.objects, transfer.missing(dst.objects, back.objects, [second.id])
    )
    assert back.objects.read_blob(Blob(edited(a)).id) == edited(a)


def test_a_fetched_chunk_list_naming_other_chunks_is_refused(tmp_path):
    src = Repository.open(str(tmp_path / "src"))
    a, b = random.Random(17).randbytes(2 * THRESHOLD), random.Random(18).randbytes(2 * THRESHOLD)
    commit = log_files(src, "a", {"a.bin": a}, tmp_path)
    log_files(src, "b", {"b.bin": b}, tmp_path)
    lying = src.storage.get(keys.chunked_key(Blob(b).id))
    src.storage.put(keys.chunked_key(Blob(a).id), lying)  # a hostile remote's list
    dst = Repository.open(str(tmp_path / "dst"))
    with pytest.raises(CorruptObjectError):
        transfer.copy_objects(
            src.objects, dst.objects, transfer.missing(src.objects, dst.objects, [commit.id])
        )
    assert not dst.storage.exists(keys.chunked_key(Blob(a).id))


KILLED_COPY = """
import json, os, signal, sys
import cas.chunked, cas.store
from cas import Repository
from remotes import transfer

from tests.servers import open_storage_from_spec

src, dst = Repository.open(sys.argv[1]), json.loads(sys.argv[2])
dst = Repository(open_storage_from_spec(dst)) if isinstance(dst, dict) else Repository.open(dst)
root = bytes.fromhex(sys.argv[3])
cas.chunked.CHUNK_PACK_LIMIT = int(sys.argv[4])  # many packs of chunks, cut on the way
real_publish = cas.store.ObjectStore.publish_pack
published = 0

def publish(self, *args):
    global published
    real_publish(self, *args)
    published += 1
    if published == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of the file

cas.store.ObjectStore.publish_pack = publish
with dst.writing():  # its chunking setting applies
    ids = transfer.missing(src.objects, dst.objects, [root])
    transfer.copy_objects(src.objects, dst.objects, ids)
"""


@pytest.mark.parametrize("held", ["as chunks", "whole"])
def test_a_copy_killed_in_the_middle_of_a_file_resumes_from_the_chunks_it_sent(
    tmp_path, monkeypatch, held, make_spec
):
    monkeypatch.setattr(chunked, "CHUNK_PACK_LIMIT", THRESHOLD)  # many packs of chunks
    src = Repository.open(str(tmp_path / "src"))
    # Held whole, it is cut on the way into a bucket, which keeps large files as chunks.
    dst: Any = make_spec("s3-moto") if held == "whole" else str(tmp_path / "dst")
    open_dst = functools.partial(open_repo, dst)
    open_dst().set_chunking("changed", THRESHOLD)
    data = random.Random(19).randbytes(8 * THRESHOLD)
    commit = log_files(src, "v", {"f.bin": data}, tmp_path, whole=held == "whole")
    assert src.storage.exists(keys.content_key(Blob(data).id)) == (held == "whole")
    src_url, root = str(tmp_path / "src"), commit.id.hex()
    argv = (src_url, json.dumps(dst), root, str(THRESHOLD))
    killed = python("-c", KILLED_COPY, *argv, cwd=tmp_path)
    killed.communicate(timeout=120)
    assert killed.returncode == -9
    resumed = open_dst()
    assert len(resumed.objects.packs()) == 3 and not resumed.storage.exists(
        keys.chunked_key(Blob(data).id)
    )

    resumed.writing()  # its chunking setting applies
    ids = transfer.missing(src.objects, resumed.objects, [commit.id])
    sent = transfer.copy_objects(src.objects, resumed.objects, ids)
    assert sent.bytes < len(data) - 2 * THRESHOLD  # three packs of about 1 MiB were kept
    resumed.update_ref("v", lambda old: commit.id)
    assert fsck(open_dst()).ok
    assert open_dst().objects.read_blob(Blob(data).id) == data


def open_repo(where: str | dict[str, Any]) -> Repository:
    """A repository at a local path, or at a spec (a bucket, see tests/backends.py)."""
    if isinstance(where, str):
        return Repository.open(where)
    return Repository(open_storage_from_spec(where))


# ---- the store's setting ------------------------------------------------------------


def _logged_twice(ws: Path, data: bytes, edited: bytes) -> tuple[Repository, int]:
    """``data`` logged as v0 and ``edited`` as v1 by the API, each in a new process's
    way (a store opened afresh); the repository and the bytes v1 added."""
    import artifacts

    def log(content: bytes) -> None:
        (ws / "weights.bin").write_bytes(content)
        with artifacts.init(store=str(ws / "store"), job_type="train") as run:
            model = artifacts.Artifact("model", "model")
            model.add_file(str(ws / "weights.bin"))
            run.log_artifact(model)

    log(data)
    before = stored_bytes(Repository.open(str(ws / "store")).objects)
    log(edited)
    repo = Repository.open(str(ws / "store"))
    return repo, stored_bytes(repo.objects) - before


def test_a_store_set_to_chunk_stores_its_large_files_as_chunks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = random.Random(7).randbytes(4 * THRESHOLD)
    edited = data[: 2 * THRESHOLD] + noise(1000) + data[2 * THRESHOLD + 1000 :]
    Repository.open(str(tmp_path / "store")).set_chunking("always", THRESHOLD)
    repo, grown = _logged_twice(tmp_path, data, edited)
    assert grown < 4 * chunked.MAX_CHUNK + 20_000  # the chunks around the edit, not the file
    ids = [Blob(content).id for content in (data, edited)]
    for object_id, content in zip(ids, (data, edited), strict=True):
        assert repo.storage.exists(keys.chunked_key(object_id))
        assert repo.objects.read_blob(object_id) == content


def test_a_store_set_never_to_chunk_stores_large_files_whole(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = random.Random(8).randbytes(4 * THRESHOLD)
    Repository.open(str(tmp_path / "store")).set_chunking("always", THRESHOLD)
    Repository.open(str(tmp_path / "store")).set_chunking("never")
    _, grown = _logged_twice(tmp_path, data, data[:-1] + b"\0")
    assert grown >= len(data)


def test_a_chunk_threshold_too_small_or_malformed_is_refused_in_one_line(tmp_path):
    repo = Repository.open(str(tmp_path / "store"))
    with pytest.raises(UsageError, match="at least 256 KiB"):
        repo.set_chunking("always", 1000)
    repo.update_config(lambda config: config.update(chunks={"threshold": "16MiB"}))
    with pytest.raises(UsageError, match="artifacts init --chunks") as refused:
        Repository.open(str(tmp_path / "store")).writing()
    assert "\n" not in str(refused.value)


def test_cli_init_chunks_sets_and_clears_the_threshold(tmp_path):
    from tests.test_cli import make_cli

    cli = make_cli(tmp_path, tmp_path / "store")
    assert "16.0 MiB and more are stored as chunks" in cli("init", "--chunks", "16MiB").ok().out
    assert Repository.open(str(tmp_path / "store")).chunking() == ("always", 16 << 20)
    assert "stored whole" in cli("init", "--chunks", "off").ok().out
    assert Repository.open(str(tmp_path / "store")).chunking() == ("never", None)
    assert "where that saves" in cli("init", "--chunks", "changed").ok().out
    assert Repository.open(str(tmp_path / "store")).chunking() == ("changed", 16 << 20)
    refused = cli("init", "--chunks", "10KB")
    assert refused.rc == 1 and refused.err.startswith("artifacts: error: a chunk threshold")
