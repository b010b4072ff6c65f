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

import bisect
import functools
import itertools
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, BinaryIO

import blake3

from . import chunklists, keys, objects
from .chunklists import ChunkList
from .errors import CorruptObjectError, UsageError
from .objects import ObjectId
from .storage.base import Storage

if TYPE_CHECKING:
    from .packs import PackWriter
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


def put_file(store: ObjectStore, path: str, threads: int) -> tuple[ObjectId, int]:
    """Store a file as chunks and a chunk list; (id, size).

    The file is read once, a window at a time, into buffers of ours, and from them
    alone it is hashed whole, cut, its chunks hashed and packed: what the id names
    is what was stored, even if the file changes meanwhile. Windows overlap: while
    one is packed, the next is read, then cut on its own and hashed whole in threads
    (blake3 and FastCDC let go of the GIL).
    """
    hasher = blake3.blake3()
    ids: list[ObjectId] = []
    lengths: list[int] = []
    buffers = [memoryview(bytearray(MAX_CHUNK + _WINDOW)) for _ in range(2)]
    with (
        open(path, "rb", buffering=0) as src,
        ThreadPoolExecutor(threads) as pool,
        ThreadPoolExecutor(1) as in_order,  # the whole hash takes the windows in turn
        store.writer(limit=CHUNK_PACK_LIMIT) as writer,
    ):
        size = os.fstat(src.fileno()).st_size
        hasher.update(objects.encode_header("blob", size))
        read, before = 0, None  # before: the window read last time, not packed yet
        for i in itertools.count():
            window = _Window(buffers[i % 2], src)
            window.cut_alone = pool.submit(
                _cut_ends, window.buffer, MAX_CHUNK, window.end, window.last
            )
            window.hashed = in_order.submit(hasher.update, window.buffer[MAX_CHUNK : window.end])
            read += window.end - MAX_CHUNK
            if before is not None:
                _pack(before, window, pool, writer, threads, ids, lengths)
            if window.last:
                _pack(window, None, pool, writer, threads, ids, lengths)
                break
            before = window
        if read != size:
            writer.discard()  # publishes nothing
            raise UsageError(f"{path} changed size while it was being read")
        object_id = hasher.digest()
        if store.pack_of(object_id) is not None or store.loose_location(object_id) is not None:
            writer.discard()  # stored already (whole, or as chunks): only the id was needed
            return object_id, size
        found = set(ids) - writer.added
    if store.watcher is not None:
        store.watcher.referencing(found)  # found present: gc must not have taken them
    store.put_chunk_list(object_id, chunklists.encode(ids, lengths))
    return object_id, size


class _Window:
    """A window of the file, read into ``buffer`` after :data:`MAX_CHUNK` bytes of room
    where the bytes before it not cut yet are moved; its cuts found as if it started a
    chunk, and its whole hash (both in threads)."""

    def __init__(self, buffer: memoryview, src: BinaryIO) -> None:
        n = _fill(src, buffer[MAX_CHUNK:])
        self.buffer, self.end, self.last = buffer, MAX_CHUNK + n, n < _WINDOW
        self.start = MAX_CHUNK  # where its bytes not cut yet start
        self.cut_alone: Future[list[int]]
        self.hashed: Future[None]


def _pack(
    window: _Window,
    after: _Window | None,
    pool: ThreadPoolExecutor,
    writer: PackWriter,
    threads: int,
    ids: list[ObjectId],
    lengths: list[int],
) -> None:
    """Cut ``window``, hash and pack its chunks, and move the bytes after its last cut
    into the room before ``after``."""
    spans = _true_spans(window)
    chunk_ids = _hash_chunks(pool, window.buffer, spans, threads)
    writer.add_hashed_blobs(zip(chunk_ids, (window.buffer[a:b] for a, b in spans), strict=True))
    ids += chunk_ids
    lengths += (b - a for a, b in spans)
    if after is not None:
        cut = spans[-1][1] if spans else window.start
        after.start = MAX_CHUNK - (window.end - cut)
        after.buffer[after.start : MAX_CHUNK] = window.buffer[cut : window.end]
    window.hashed.result()  # its buffer may be read into again


def _true_spans(window: _Window) -> list[tuple[int, int]]:
    """The (start, end) of each chunk of ``window``, cut on from the bytes before it.

    Those cuts meet the window's own cuts (found in a thread as if a chunk started at
    the window) a chunk or two in, and are the same from there on: a cut depends only
    on where its chunk starts and the bytes after.
    """
    alone = window.cut_alone.result()
    if window.start == MAX_CHUNK:  # nothing carried over: its own cuts are the true ones
        return list(_spans(window.start, alone))
    spans: list[tuple[int, int]] = []
    at = window.start
    for length in cut_points(window.buffer[at : window.end], last=window.last):
        spans.append((at, at + length))
        at += length
        met = bisect.bisect_left(alone, at)
        if met < len(alone) and alone[met] == at:
            return spans + list(_spans(at, alone[met + 1 :]))
    return spans


def _cut_ends(buffer: memoryview, start: int, end: int, last: bool) -> list[int]:
    """Where the chunks of ``buffer[start:end]`` end, as offsets into ``buffer``."""
    ends = []
    for length in cut_points(buffer[start:end], last=last):
        start += length
        ends.append(start)
    return ends


def _spans(start: int, ends: list[int]) -> Iterator[tuple[int, int]]:
    """The (start, end) of consecutive chunks from ``start`` ending at ``ends``."""
    for end in ends:
        yield start, end
        start = end


def _hash_chunks(
    pool: ThreadPoolExecutor, view: memoryview, spans: list[tuple[int, int]], threads: int
) -> list[ObjectId]:
    """The blob ids of the chunks at ``spans`` of ``view``: a run of them per thread."""
    step = -(-len(spans) // threads) or 1
    runs = [spans[i : i + step] for i in range(0, len(spans), step)]
    return [i for run in pool.map(_chunk_ids, [view] * len(runs), runs) for i in run]


def _chunk_ids(view: memoryview, spans: list[tuple[int, int]]) -> list[ObjectId]:
    ids = []
    for start, end in spans:
        hasher = blake3.blake3(objects.encode_header("blob", end - start))
        hasher.update(view[start:end])  # hashed where it lies: no copy
        ids.append(hasher.digest())
    return ids


def _fill(src: BinaryIO, view: memoryview) -> int:
    """Read into all of ``view`` unless the file ends first; the bytes read."""
    got = 0
    while got < len(view) and (n := src.readinto(view[got:])):
        got += n
    return got
