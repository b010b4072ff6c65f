"""Large blobs stored as content-defined chunks (docs/format.md, 4.2).

A large file (where the store's setting says: :data:`CHANGED_THRESHOLD`) is cut by
FastCDC into chunks of 16 to 256 KiB (about 140 KiB on average); each chunk is stored as an
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
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, BinaryIO

import blake3

from . import chunklists, keys, objects
from ._fastio import COPY_CHUNK, changed_while_read, open_regular, written_since
from .chunklists import ChunkList
from .errors import CorruptObjectError, UsageError
from .objects import ObjectId
from .packs import PackWriter
from .storage.base import Storage

if TYPE_CHECKING:
    from .store import ObjectStore

# Every file this big and up is stored as chunks: off by default (None), as storing
# chunks is 2 to 2.5 times slower than whole (docs/performance.md); a store's
# config sets it (ObjectStore.chunk_threshold).
CHUNK_THRESHOLD: int | None = None
# By default, a file this big and up is stored as chunks only where that saves: when it
# replaces one this big (the same path of an artifact's previous version, which is then
# chunked too), and when it goes into a bucket, logged or pushed: then the next version
# costs only its changed chunks (ObjectStore.changed_chunk_threshold).
CHANGED_THRESHOLD: int | None = 16 << 20
# FastCDC's parameters, Xet's proportions at twice its sizes: each chunk costs 36 bytes
# in its file's chunk list and as many in its pack's index, and at Xet's 64 KiB a 1 MiB
# edit of a 512 MiB file grew the store by 2.19 MB, 0.9 MB of them lists and indexes.
MIN_CHUNK, AVG_CHUNK, MAX_CHUNK = 16 << 10, 128 << 10, 256 << 10
CHUNK_PACK_LIMIT = 32 << 20  # a pack of chunks is published past this: what a kill loses
_WINDOW = 16 << 20  # read, hashed and cut this many bytes at a time: memory stays flat
_READ_BATCH = 128  # chunks located and read together (~16 MiB)


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


def put_file(
    store: ObjectStore,
    path: str,
    threads: int,
    expect: ObjectId | None = None,
    beside_whole: bool = False,
) -> tuple[ObjectId, int, int]:
    """Store a file as chunks and a chunk list; (id, size, bytes written). With
    ``expect``, a file whose blob has another id is refused (CorruptObjectError): its
    chunk list is not written. A blob stored here already is not stored again, unless
    ``beside_whole``: it is held whole, and the chunks are to replace that.

    The file is read once, a window at a time, into buffers of ours, and from them
    alone it is hashed whole, cut, its chunks hashed and packed: what the id names
    is what was stored, even if the file changes meanwhile. Windows overlap: while
    one is packed, the next is cut and its chunks hashed in threads, a segment per
    thread, each chunk as soon as it is cut (still in the CPU's cache), and the one
    after is read and hashed whole in another (blake3 and FastCDC let go of the GIL).
    """
    hasher = blake3.blake3()
    ids: list[ObjectId] = []
    lengths: list[int] = []
    # One window packed, one cut, one read: a buffer is read into again only once the
    # window in it is packed.
    buffers = [memoryview(bytearray(MAX_CHUNK + _WINDOW)) for _ in range(3)]
    fd, opened = open_regular(path)
    with (
        open(fd, "rb", buffering=0) as src,
        ThreadPoolExecutor(threads) as pool,
        ThreadPoolExecutor(1) as reader,  # reads the windows in turn, and hashes them whole
        ThreadPoolExecutor(1) as pack_hashing,  # names the packs while they are written
        PackWriter(store, CHUNK_PACK_LIMIT, hashing=pack_hashing) as writer,
    ):
        size = opened.st_size
        hasher.update(objects.encode_header("blob", size))

        def read_window(buffer: memoryview) -> _Window:
            return _Window(buffer, src, hasher, pool, threads)

        reading = reader.submit(read_window, buffers[0])
        read, before = 0, None  # before: the window read last time, not packed yet
        for i in itertools.count(1):
            window = reading.result()
            read += window.end - MAX_CHUNK
            if not window.last:
                reading = reader.submit(read_window, buffers[i % 3])
            if before is not None:
                _pack(before, window, writer, ids, lengths)
            if window.last:
                _pack(window, None, writer, ids, lengths)
                break
            before = window
        if read != size:
            writer.discard()  # publishes nothing
            raise UsageError(
                f"{path} changed size while it was being read: try again once it "
                "has stopped changing"
            )
        if written_since(src.fileno(), opened):  # the same size: the bytes may mix
            writer.discard()
            raise changed_while_read(path)
        object_id = hasher.digest()
        if expect is not None and object_id != expect:
            writer.discard()
            raise CorruptObjectError(expect, object_id)
        if not beside_whole and (
            store.pack_of(object_id) is not None or store.loose_location(object_id) is not None
        ):
            writer.discard()  # stored already (whole, or as chunks): only the id was needed
            return object_id, size, 0
        found = set(ids) - writer.added
    if store.watcher is not None:
        store.watcher.referencing(found)  # found present: gc must not have taken them
    listed = chunklists.encode(ids, lengths)
    store.put_chunk_list(object_id, listed)
    return object_id, size, writer.bytes_written + len(listed)


_Cut = tuple[int, ObjectId]  # where a chunk ends in its window's buffer, and its id


class _Window:
    """A window of the file, read into ``buffer`` after :data:`MAX_CHUNK` bytes of room
    where the bytes before it not cut yet are moved, and hashed whole on the way; each
    of its segments cut and hashed in a thread as soon as it is read, as if it started
    a chunk."""

    def __init__(
        self, buffer: memoryview, src: BinaryIO, hasher: Any, pool: Executor, threads: int
    ) -> None:
        self.buffer, self.start = buffer, MAX_CHUNK  # start: its bytes not cut yet
        self.segments: list[tuple[int, Future[list[_Cut]]]] = []
        step = max(_WINDOW // threads, MAX_CHUNK)  # a segment much shorter meets nothing
        at, end, self.last = MAX_CHUNK, MAX_CHUNK + _WINDOW, False
        while at < end and not self.last:
            segment = buffer[at : min(at + step, end)]
            got = _read_hashed(src, segment, hasher)
            self.last = got < len(segment)
            if got:
                cutting = pool.submit(_cut_and_hash, buffer, at, at + got, self.last)
                self.segments.append((at, cutting))
            at += got
        self.end = at


def _pack(
    window: _Window,
    after: _Window | None,
    writer: PackWriter,
    ids: list[ObjectId],
    lengths: list[int],
) -> None:
    """Join ``window``'s cuts, pack its chunks, and move the bytes after its last cut
    into the room before ``after``."""
    at = window.start
    blobs = []
    for end, chunk_id in _true_cuts(window):
        blobs.append((chunk_id, window.buffer[at:end]))
        ids.append(chunk_id)
        lengths.append(end - at)
        at = end
    writer.add_hashed_blobs(blobs)
    if after is not None:
        after.start = MAX_CHUNK - (window.end - at)
        after.buffer[after.start : MAX_CHUNK] = window.buffer[at : window.end]


def _true_cuts(window: _Window) -> list[_Cut]:
    """The chunks of ``window``, cut on from the bytes before it.

    Each segment was cut as if a chunk started where it starts; the true cuts,
    found here from where the chunks before it end, meet its own a chunk or two
    in, and are the same from there on: a cut depends only on where its chunk
    starts and the bytes after. Only the chunks before they meet are cut (and
    hashed) again.
    """
    cuts: list[_Cut] = []
    at = window.start
    for start, alone in window.segments:
        own = alone.result()
        if at != start:
            at, own = _cut_until_met(window, at, own, cuts)
        cuts += own
        if own:
            at = own[-1][0]
    cuts += _cuts_from(window, at)  # what no segment's cuts met
    return cuts


def _cut_until_met(
    window: _Window, at: int, own: list[_Cut], cuts: list[_Cut]
) -> tuple[int, list[_Cut]]:
    """Cut (into ``cuts``) from ``at`` until a cut meets one of ``own``, or passes
    them all: where the cuts end, and ``own``'s cuts after the one met."""
    ends = [end for end, _ in own]
    if not ends or at >= ends[-1]:
        return at, []
    for cut in _cuts_from(window, at):
        cuts.append(cut)
        at = cut[0]
        met = bisect.bisect_left(ends, at)
        if met < len(ends) and ends[met] == at:
            return at, own[met + 1 :]
        if met == len(ends):
            break
    return at, []


def _cuts_from(window: _Window, at: int) -> Iterator[_Cut]:
    """The chunks of ``window`` from ``at`` on, cut and hashed here."""
    for length in cut_points(window.buffer[at : window.end], last=window.last):
        yield at + length, _chunk_id(window.buffer[at : at + length])
        at += length


def _cut_and_hash(buffer: memoryview, start: int, end: int, last: bool) -> list[_Cut]:
    """The chunks of ``buffer[start:end]`` cut as if one started at ``start``."""
    cuts = []
    for length in cut_points(buffer[start:end], last=last):
        cuts.append((start + length, _chunk_id(buffer[start : start + length])))
        start += length
    return cuts


def _chunk_id(content: memoryview) -> ObjectId:
    hasher = blake3.blake3(objects.encode_header("blob", len(content)))
    hasher.update(content)  # hashed where it lies: no copy
    return hasher.digest()


def _read_hashed(src: BinaryIO, view: memoryview, hasher: Any) -> int:
    """Read into all of ``view`` unless the file ends first, hashing each piece as soon
    as it is read (still in the CPU's cache); the bytes read."""
    got = 0
    while got < len(view) and (n := src.readinto(view[got : got + COPY_CHUNK])):
        hasher.update(view[got : got + n])
        got += n
    return got
