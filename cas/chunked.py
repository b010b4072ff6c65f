"""Large blobs stored as content-defined chunks (docs/format.md, 4.2).

A file from :data:`CHUNK_THRESHOLD` up is cut by FastCDC into chunks of 8 to
128 KiB (about 70 KiB on average, Xet's sizes); each chunk is stored as an
ordinary small blob, in packs of at most :data:`CHUNK_PACK_LIMIT`, and the file
as its chunk list under ``chunked/<its id>``. The file's id is still the blake3
of its whole object bytes, so the same bytes have the same id whatever their
storage. A changed file shares every chunk but those around its change: a new
version writes one small pack and a new chunk list.

Reads are verified twice over: every chunk against its own id, and a whole
read against the file's id. A range read fetches only the chunk list's header,
the block of entries that covers the range, and the chunks in it.
"""

from __future__ import annotations

import functools
import mmap
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import blake3

from . import chunklists, keys, objects
from ._fastio import HASH_WINDOW
from .chunklists import ChunkList
from .errors import CorruptObjectError, UsageError
from .objects import ObjectId
from .storage.base import Storage

if TYPE_CHECKING:
    from .store import ObjectStore

# Files this big and up are stored as chunks. Off by default (None) until the whole
# issue (transfers, gc, fsck, repair) is done: ObjectStore.chunk_threshold overrides.
CHUNK_THRESHOLD: int | None = None
MIN_CHUNK, AVG_CHUNK, MAX_CHUNK = 8 << 10, 64 << 10, 128 << 10  # FastCDC's parameters
CHUNK_PACK_LIMIT = 32 << 20  # a pack of chunks is published past this: what a kill loses
_WINDOW = 16 << 20  # read, hashed and cut this many bytes at a time: memory stays flat
_READ_BATCH = 256  # chunks located and read together (~16 MiB)


@functools.cache
def _cutter() -> Any:
    from pyfastcdc import FastCDC  # here: reading chunked blobs does not need it

    return FastCDC(AVG_CHUNK, min_size=MIN_CHUNK, max_size=MAX_CHUNK)


def cut_points(data: bytes | memoryview, last: bool = True) -> Iterator[int]:
    """The lengths of the chunks FastCDC cuts ``data`` into; with ``last`` false, the
    chunk that might end differently were more data to follow is left out."""
    for chunk in _cutter().cut_buf(data):
        if not last and len(data) - chunk.offset < MAX_CHUNK:
            return
        yield chunk.length


# ---- reading ---------------------------------------------------------------------


def read_list(storage: Storage, object_id: ObjectId) -> ChunkList:
    """The chunk list of ``object_id``, checked; KeyNotFoundError if it is not chunked."""
    data = storage.get(keys.chunked_key(object_id))
    return chunklists.decode(data, object_id.hex())


def chunks_of(store: ObjectStore, chunks: ChunkList) -> Iterator[bytes]:
    """The payload of each chunk in order, each verified against its id, a batch of
    chunks located and read at a time (neighbours in a pack in one request)."""
    for first in range(0, len(chunks.ids), _READ_BATCH):
        ids = chunks.ids[first : first + _READ_BATCH]
        lengths = chunks.lengths[first : first + _READ_BATCH]
        yield from _read_chunks(store, ids, lengths)


def _read_chunks(
    store: ObjectStore, ids: tuple[ObjectId, ...], lengths: tuple[int, ...]
) -> Iterator[bytes]:
    got = dict(store.read_packed_blobs(store.locate_packed(ids)))
    for chunk_id, length in zip(ids, lengths, strict=True):
        payload = got.get(chunk_id)
        if payload is None:  # not packed here: loose after a repair, or a fossil
            payload = store.read_blob(chunk_id)
        if len(payload) != length:
            detail = f"a chunk of {length} bytes has {len(payload)}"
            raise CorruptObjectError(chunk_id, detail=detail)
        yield payload


def copy_to(
    store: ObjectStore, object_id: ObjectId, chunks: ChunkList, dest: BinaryIO | None
) -> int:
    """Stream a chunked blob's content into ``dest`` (None: only check it), verified
    chunk by chunk and as a whole; its size. On an error the caller must discard
    ``dest``."""
    hasher = blake3.blake3()
    hasher.update(objects.encode_header("blob", chunks.size))
    for payload in chunks_of(store, chunks):
        hasher.update(payload)
        if dest is not None:
            dest.write(payload)
    if hasher.digest() != object_id:
        raise CorruptObjectError(object_id, hasher.digest())
    return chunks.size


def read_range(
    store: ObjectStore, storage: Storage, object_id: ObjectId, start: int, end: int
) -> bytes:
    """Bytes ``[start, end)`` of a blob chunked on ``storage``: only the chunks covering
    them are read, each verified against its own id (the whole id covers the whole
    blob: :class:`~cas.loose.InOrderVerifier`). KeyNotFoundError if it is not chunked."""
    key, name = keys.chunked_key(object_id), object_id.hex()
    first = storage.get(key, 0, chunklists.HEAD_GUESS)
    needed = chunklists.head_length(first, name)
    if len(first) < needed:  # more fences than guessed
        first += storage.get(key, len(first), needed)
    head = chunklists.decode_head(first, name)
    if end > head.size:
        raise CorruptObjectError(object_id, detail=f"it ends before byte {end}")
    covering: list[tuple[ObjectId, int, int]] = []  # chunk, its offset, its length
    block = head.block_of(start)
    at = head.block_start(block)
    while at < end:
        span = head.block_span(block)
        data = first[span[0] : span[1]] if span[1] <= len(first) else storage.get(key, *span)
        for chunk_id, length in chunklists.decode_block(head, block, data, name):
            if at + length > start and at < end:
                covering.append((chunk_id, at, length))
            at += length
            if at >= end:
                break
        block += 1
    ids = tuple(c for c, _, _ in covering)
    payloads = _read_chunks(store, ids, tuple(n for _, _, n in covering))
    joined = b"".join(payloads)
    offset = covering[0][1] if covering else start
    return joined[start - offset : end - offset]


# ---- writing ---------------------------------------------------------------------


def file_id(path: str, size: int, threads: int) -> ObjectId:
    """The id of the blob a file makes, hashed where it lies (mapped a window at a time),
    on every core: cheap enough to skip chunking a file that is stored already."""
    hasher = blake3.blake3(max_threads=threads)
    hasher.update(objects.encode_header("blob", size))
    with open(path, "rb") as f:
        for offset in range(0, size, HASH_WINDOW):
            length = min(HASH_WINDOW, size - offset)
            with mmap.mmap(f.fileno(), length, offset=offset, access=mmap.ACCESS_READ) as view:
                hasher.update(view)
    return hasher.digest()


def put_file(store: ObjectStore, path: str, threads: int) -> tuple[ObjectId, int]:
    """Store a file as chunks and a chunk list; (id, size).

    The file is read a window at a time into a buffer of ours, and from that buffer
    alone it is hashed, cut and packed: what the id names is what was stored, even
    if the file changes meanwhile (then the id it was first hashed to is not met,
    and nothing is published but chunks, which are garbage until used).
    """
    size = os.path.getsize(path)
    expected = file_id(path, size, threads)
    if store.pack_of(expected) is not None or store.loose_location(expected) is not None:
        return expected, size
    hasher = blake3.blake3()
    hasher.update(objects.encode_header("blob", size))
    ids: list[ObjectId] = []
    lengths: list[int] = []
    view = memoryview(bytearray(_WINDOW + MAX_CHUNK))
    read = held = 0  # held: bytes of the last window not cut yet, moved to the front
    with open(path, "rb", buffering=0) as src, store.writer(limit=CHUNK_PACK_LIMIT) as writer:
        while True:
            n = _fill(src, view[held : held + _WINDOW])
            hasher.update(view[held : held + n])
            read += n
            filled, at_end = held + n, n < _WINDOW
            cut = 0
            for length in cut_points(view[:filled], last=at_end):
                ids.append(writer.add_blob(bytes(view[cut : cut + length])))
                lengths.append(length)
                cut += length
            held = filled - cut
            view[:held] = view[cut:filled]  # less than a chunk, from the window's end
            if at_end:
                break
        if read != size or hasher.digest() != expected:
            writer.discard()  # publishes nothing
            raise UsageError(f"{path} changed while it was being read")
        found = set(ids) - writer.added
    if store.watcher is not None:
        store.watcher.referencing(found)  # found present: gc must not have taken them
    store.put_chunk_list(expected, chunklists.encode(ids, lengths))
    return expected, size


def _fill(src: BinaryIO, view: memoryview) -> int:
    """Read into all of ``view`` unless the file ends first; the bytes read."""
    got = 0
    while got < len(view) and (n := src.readinto(view[got:])):
        got += n
    return got
