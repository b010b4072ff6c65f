"""The pack and pack index formats (docs/format.md), and the writer that makes packs.

A pack is ``CASPACK1`` followed by whole objects back to back; it is named by
the blake3 hash of its bytes. Its index is ``CASIDX01``, a BE u32 count, then
one entry per object, sorted by id: the id, its offset in the pack (BE u64)
and its length (BE u32).
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Collection, Iterable
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, BinaryIO

import blake3

from . import objects
from ._fastio import HASH_THREADS, read_small, write_parts
from .errors import InvalidObjectError, UsageError
from .objects import ObjectId

if TYPE_CHECKING:
    from .store import ObjectStore

PACK_MAGIC = b"CASPACK1"
INDEX_MAGIC = b"CASIDX01"
_INDEX_ENTRY = struct.Struct(">32sQI")  # id, offset in pack, length
_INDEX_HEADER = len(INDEX_MAGIC) + 4  # the magic and the entry count
LOOSE_THRESHOLD = 1 << 20  # blobs at least this big stay loose, never packed
PACK_LIMIT = 256 << 20  # start a new pack past this many bytes
_WRITE_BATCH = 1 << 20

Entry = tuple[ObjectId, int, int]  # an object's id, offset in its pack, length


def pack_name(data: bytes) -> str:
    """A pack's name: the hex blake3 hash of its bytes."""
    return blake3.blake3(data, max_threads=HASH_THREADS).hexdigest()


def write_pack(out: BinaryIO, datas: Iterable[bytes]) -> str:
    """Write a pack of the objects ``datas``, in that order, to ``out``; its name."""
    hasher = blake3.blake3()
    for data in (PACK_MAGIC, *datas):
        out.write(data)
        hasher.update(data)
    return hasher.hexdigest()


def check_pack(data: bytes, entries: Iterable[Entry]) -> None:
    """Check a whole pack against its index ``entries``: the magic, every entry in
    range, and every object against its id (CorruptObjectError)."""
    view = memoryview(data)
    if data[: len(PACK_MAGIC)] != PACK_MAGIC:
        raise InvalidObjectError("not a pack: bad magic")
    for object_id, offset, length in entries:
        if offset < len(PACK_MAGIC) or offset + length > len(data):
            raise InvalidObjectError(f"pack index entry {object_id.hex()} is out of range")
        objects.verify(object_id, view[offset : offset + length])


def index_pack(data: bytes) -> list[Entry]:
    """The index entries of a whole pack, found by reading each object's header: what
    writes again an index lost or damaged (InvalidObjectError if the pack is not one)."""
    if data[: len(PACK_MAGIC)] != PACK_MAGIC:
        raise InvalidObjectError("not a pack: bad magic")
    entries, offset = [], len(PACK_MAGIC)
    while offset < len(data):
        _, size, header = objects.decode_header(data[offset : offset + objects.MAX_HEADER])
        length = header + size
        if offset + length > len(data):
            raise InvalidObjectError("the pack ends inside an object")
        entries.append((objects.object_id(data[offset : offset + length]), offset, length))
        offset += length
    return entries


def encode_index(entries: list[Entry]) -> bytes:
    entries = sorted(entries)
    body = b"".join(_INDEX_ENTRY.pack(*e) for e in entries)
    return INDEX_MAGIC + struct.pack(">I", len(entries)) + body


def decode_index(data: bytes, name: str) -> list[Entry]:
    _check_index(data, name)
    return list(_INDEX_ENTRY.iter_unpack(data[_INDEX_HEADER:]))


def _check_index(data: bytes, name: str) -> int:
    """The entry count of a well-formed index; no per-entry work."""
    if data[: len(INDEX_MAGIC)] != INDEX_MAGIC or len(data) < _INDEX_HEADER:
        raise InvalidObjectError(f"pack index {name} has a bad header")
    (count,) = struct.unpack(">I", data[len(INDEX_MAGIC) : _INDEX_HEADER])
    if len(data) != _INDEX_HEADER + count * _INDEX_ENTRY.size:
        raise InvalidObjectError(f"pack index {name} is truncated")
    return count


def check_index(data: bytes, name: str) -> int:
    """Check a whole index as read from a store; the size of the pack it describes.

    A pack is named by the hash of its own bytes, so nothing short of reading it ties
    an index to it; the size is the one cheap tie left, for the caller to check. The
    index itself must be well-formed: ids sorted and unique, and its objects, none
    empty, back to back from the magic on. Checked in one pass, holding nothing per
    entry: laid so, the objects' ``end - start`` sum to the size less the magic, and
    their ``end**2 - start**2`` to its square less the magic's (both telescope): any
    one entry's offset or length damaged breaks that, or changes the size (the last).
    """
    _check_index(data, name)
    previous, size, squares = b"", len(PACK_MAGIC), len(PACK_MAGIC) ** 2
    for object_id, offset, length in _INDEX_ENTRY.iter_unpack(data[_INDEX_HEADER:]):
        if object_id <= previous or not length:
            raise InvalidObjectError(f"pack index {name} is damaged: an entry is out of order")
        previous, size, squares = object_id, size + length, squares + length * (2 * offset + length)
    if squares != size**2:
        raise InvalidObjectError(f"pack index {name} is damaged: its objects are not back to back")
    return size


class PackIndex:
    """One pack's index, searched in place: opening a store whose indexes are cached
    costs no per-object work (an index is checked whole once, when read from the store)."""

    def __init__(self, name: str, data: bytes) -> None:
        self._count = _check_index(data, name)
        self.name = name
        self._data = data

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> bytes:  # the i-th id, so bisect can search the index
        start = _INDEX_HEADER + i * _INDEX_ENTRY.size
        return self._data[start : start + 32]

    def find(self, object_id: ObjectId) -> tuple[int, int] | None:
        i = bisect.bisect_left(self, object_id)
        if i == self._count or self[i] != object_id:
            return None
        _, offset, length = _INDEX_ENTRY.unpack_from(
            self._data, _INDEX_HEADER + i * _INDEX_ENTRY.size
        )
        return offset, length

    def entries(self) -> list[Entry]:
        return list(_INDEX_ENTRY.iter_unpack(self._data[_INDEX_HEADER:]))

    def select(self, wanted: Collection[ObjectId]) -> list[Entry]:
        """The entries of the ``wanted`` ids, in one pass over the index: for many ids,
        much faster than a search each, and nothing the size of the index is built."""
        body = memoryview(self._data)[_INDEX_HEADER:]
        return [entry for entry in _INDEX_ENTRY.iter_unpack(body) if entry[0] in wanted]


def _hash_parts(hasher: Any, parts: list[bytes | memoryview]) -> None:
    for part in parts:
        hasher.update(part)


class PackWriter:
    """Collects small objects into packs; large blobs go loose at once.

    Objects become readable when the writer closes without error. A writer
    that fails or is abandoned publishes nothing, so no ref can reach a
    half-written pack.
    """

    def __init__(
        self, store: ObjectStore, limit: int | None = None, hashing: Executor | None = None
    ) -> None:
        self.store = store
        self.limit = limit  # a pack is published past this many bytes (None: PACK_LIMIT)
        # A thread of the caller's that hashes the packs while this one writes them.
        self._hashing = hashing
        self._hashed: list[Future[None]] = []  # the batches handed to it
        self._tmp: str | None = None
        self._file: BinaryIO | None = None
        self._entries: list[Entry] = []
        self._ids: set[ObjectId] = set()
        self._hasher: Any = None
        self._pending: list[bytes | memoryview] = []  # added but not yet written
        self._pending_bytes = 0
        self._offset = 0
        self.objects_written = 0
        self.bytes_written = 0
        self._closed = False

    def add(self, obj: objects.Object) -> ObjectId:
        return self.add_raw(obj.to_bytes())

    def add_raw(self, data: bytes, force: bool = False) -> ObjectId:
        """Add whole object bytes; ``force`` packs it even if another pack has it."""
        if self._closed:
            raise UsageError("this pack writer is closed")
        object_id = objects.object_id(data)
        if object_id in self._ids or (not force and self.store.pack_of(object_id) is not None):
            return object_id
        if self.store.watcher is not None and objects.decode_header(data)[0] != "blob":
            self.store.watcher.storing(data, pending=self._ids)
        if len(data) >= LOOSE_THRESHOLD:
            if objects.decode_header(data)[0] != "blob":
                self.flush()  # a big tree goes loose at once: what it references first
            return self.store.put_raw(data)
        self._append(object_id, data)
        return object_id

    def add_hashed_blobs(self, blobs: Iterable[tuple[ObjectId, memoryview]]) -> None:
        """Pack blobs, each under :data:`LOOSE_THRESHOLD`, whose ids the caller hashed
        from these very bytes, but those stored already. Written before it returns:
        the caller may reuse its buffer."""
        if self._closed:
            raise UsageError("this pack writer is closed")
        for object_id, content in blobs:
            if object_id not in self._ids and self.store.pack_of(object_id) is None:
                self._append(object_id, objects.encode_header("blob", len(content)), content)
        if self._file is not None:
            self._drain()
        self._wait_hashed()

    def _append(self, object_id: ObjectId, *parts: bytes | memoryview) -> None:
        """Add an object of the bytes ``parts`` to the pack being written."""
        if self._file is None:
            self._start()
        length = sum(len(p) for p in parts)
        self._pending += parts
        self._pending_bytes += length
        if self._pending_bytes >= _WRITE_BATCH:
            self._drain()
        self._entries.append((object_id, self._offset, length))
        self._ids.add(object_id)
        self._offset += length
        self.objects_written += 1
        self.bytes_written += length
        if self._offset >= (self.limit or PACK_LIMIT):
            self.flush()

    @property
    def added(self) -> set[ObjectId]:
        """The ids this writer packed (not those it found in other packs)."""
        return self._ids

    def add_blob(self, data: bytes) -> ObjectId:
        return self.add_raw(objects.encode_header("blob", len(data)) + data)

    def add_file(self, path: str, size: int | None = None) -> tuple[ObjectId, int]:
        """Store a file as a blob: packed when small, loose and streamed when big."""
        if size is None:
            size = os.path.getsize(path)
        if size >= LOOSE_THRESHOLD:
            return self.store.put_blob_file(path)
        data = read_small(path, size)
        if len(data) >= LOOSE_THRESHOLD:  # it grew since the caller looked
            return self.store.put_blob_file(path)
        return self.add_blob(data), len(data)

    def _start(self) -> None:
        self._tmp = self.store.storage.tempfile()
        self._file = open(self._tmp, "wb", buffering=0)
        self._hasher = blake3.blake3()
        self._pending, self._pending_bytes = [PACK_MAGIC], len(PACK_MAGIC)
        self._offset = len(PACK_MAGIC)
        self._entries = []

    def _drain(self) -> None:
        """Write and hash what is pending: a call per megabyte, not per object, and
        the parts written where they lie, not joined first."""
        assert self._file is not None
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        if self._hashing is None:
            _hash_parts(self._hasher, pending)
        else:  # the same thread takes every batch: hashed in order
            self._hashed.append(self._hashing.submit(_hash_parts, self._hasher, pending))
        with self.store.storage.full_disk_named():
            write_parts(self._file.fileno(), pending)

    def _wait_hashed(self) -> None:
        hashed, self._hashed = self._hashed, []
        for batch in hashed:
            batch.result()  # raises what the hashing raised

    def flush(self) -> str | None:
        """Publish what has been added so far: the pack, then its index."""
        if self._file is None:
            return None
        self._drain()
        self._file.close()
        self._file = None
        self._wait_hashed()
        name = self._hasher.hexdigest()
        tmp, self._tmp = self._tmp, None
        assert tmp is not None
        self.store.publish_pack(name, tmp, self._entries)
        self._entries = []
        return name

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp and os.path.exists(self._tmp):
            os.unlink(self._tmp)
        self._tmp = None
        self._closed = True

    def close(self) -> None:
        if not self._closed:
            self.flush()
            self._closed = True

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            if exc_type is None:
                self.close()
        finally:  # unfinished (a full disk as the last pack is written): its file goes
            self.discard()
