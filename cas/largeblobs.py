"""Large blobs in and out of a store, streamed, never read whole.

A file is copied in by the kernel and hashed on the way (:mod:`cas._fastio`), or,
from the store's ``chunk_threshold`` up, cut into chunks (:mod:`cas.chunked`); a
blob another store holds loose is streamed across, verified as it goes. Where
chunks save (:data:`cas.chunked.CHANGED_THRESHOLD`): a file replacing a large one
is cut into chunks, the one it replaces too, and a log or a copy into a bucket brings
chunks.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

from . import chunked, keys, loose
from ._fastio import changed_while_read, copy_hashed, open_regular, written_since
from .errors import CorruptObjectError, PreconditionFailedError, UsageError
from .objects import ObjectId

if TYPE_CHECKING:
    from .store import ObjectStore

# Threads cutting and hashing one file copied as chunks: copies run several files at
# once (remotes.transfer), each of them a share of the cores.
COPY_THREADS = 2


def put_file(
    store: ObjectStore,
    path: str,
    hash_threads: int,
    expect: ObjectId | None,
    replacing: bool = False,
) -> tuple[ObjectId, int]:
    """Store a file of any size as a loose blob; (id, size). With ``expect``, a
    file whose blob has another id is refused (CorruptObjectError), not stored.

    The id is always computed from the bytes written to the store, never
    from the file, which may change meanwhile: what we name is exactly what
    we stored. The content is kept without its header, so the copy stays
    page-aligned (copying it behind a header measured twice as slow); from
    ``chunk_threshold`` up, or ``changed_chunk_threshold`` up for a file
    ``replacing`` a large one or stored into a bucket, it is kept as chunks
    (:func:`cas.chunked.put_file`).
    """
    # Into a bucket a large file always saves as chunks: the network, not the cutting,
    # sets the pace there (512 MiB into moto: 7.2 s as chunks, 8.6-9.0 s whole).
    saves = replacing or not store.storage.capabilities.local
    thresholds = (store.chunk_threshold, store.changed_chunk_threshold if saves else None)
    threshold = min((t for t in thresholds if t is not None), default=None)
    if expect is None and threshold is not None and os.path.getsize(path) >= threshold:
        return chunked.put_file(store, path, hash_threads)[:2]
    tmp = store.storage.tempfile()
    try:
        fd, opened = open_regular(path)
        with (
            open(fd, "rb", buffering=0) as src,
            store.storage.full_disk_named(),
            open(tmp, "r+b", buffering=0) as dst,
        ):
            size = opened.st_size
            copied, object_id = copy_hashed(src.fileno(), dst.fileno(), size, hash_threads)
            if copied != size:
                raise UsageError(
                    f"{path} changed size while it was being read: try again once it "
                    "has stopped changing"
                )
            if written_since(src.fileno(), opened):  # the same size: the bytes may mix
                raise changed_while_read(path)
        if expect is not None and object_id != expect:
            raise CorruptObjectError(expect, object_id)
        if store.pack_of(object_id) is not None or store.loose_location(object_id):
            return object_id, size
        try:
            store.storage.move_in(keys.content_key(object_id), tmp, mode="create")
        except PreconditionFailedError:
            pass
        return object_id, size
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def rechunk(store: ObjectStore, object_id: ObjectId, hash_threads: int) -> bool:
    """Keep a large blob this local store holds whole as chunks instead (from its
    ``changed_chunk_threshold`` up), so that the files replacing it share its chunks;
    whether it did. The whole copy goes only once the chunks and their list are on
    disk and were cut from bytes of exactly this id: a reader that misses it finds
    the list. A whole copy whose bytes are not its id's is left to fsck, untouched."""
    threshold = store.changed_chunk_threshold
    key = keys.content_key(object_id)
    path = store.storage.local_path(key) if threshold is not None else None
    try:
        if path is None or os.path.getsize(path) < threshold:  # type: ignore[operator]
            return False
        chunked.put_file(store, path, hash_threads, expect=object_id, beside_whole=True)
    except FileNotFoundError:
        return False  # not held whole here (packed, chunked, or gone)
    except CorruptObjectError:
        warnings.warn(
            f"the stored copy of blob {object_id.hex()} is damaged: kept as it is, "
            "run `artifacts fsck` to see what holds it",
            stacklevel=2,
        )
        return False
    store.storage.sync()
    store.storage.delete(key)
    return True


def copy_from(store: ObjectStore, source: ObjectStore, object_id: ObjectId) -> int | None:
    """Stream a large blob ``source`` holds loose into ``store``, as its content
    alone, verified on the way, or, into a bucket, from its ``changed_chunk_threshold``
    up, as the chunks it lacks; the bytes it wrote. None, copying nothing, when
    ``source`` does not hold ``object_id`` loose as a large blob: read it whole
    instead."""
    key = source.loose_location(object_id)
    if key is None:
        return None  # packed since we looked, or missing: get_raw says which
    if key == keys.chunked_key(object_id):
        return None  # chunks: a copy sends those the other side lacks, then the list
    is_content = key == keys.content_key(object_id)
    if not is_content and not loose.is_large_whole_blob(source.storage, key):
        return None
    path = source.storage.local_path(key) if is_content else None
    if path is None:
        return stream_from(store, source, object_id)
    threshold = store.changed_chunk_threshold
    try:
        if (
            threshold is not None
            and not store.storage.capabilities.local
            and os.path.getsize(path) >= threshold
        ):
            # Chunks: a later version of the file sends only the chunks it changed. Not
            # between local disks, where the kernel copies 3.5 times as fast as we cut.
            return chunked.put_file(store, path, COPY_THREADS, expect=object_id)[2]
        if store.storage.capabilities.local:
            # Between two local stores the kernel copies, and the copy is checked.
            return put_file(store, path, 1, object_id)[1]
    except FileNotFoundError:
        return None  # kept as chunks since we looked (rechunk): its chunk list says
    return stream_from(store, source, object_id)


def stream_from(store: ObjectStore, source: ObjectStore, object_id: ObjectId) -> int:
    """Stream a blob from ``source`` into ``store`` as its content alone, never
    read whole, verified on the way; its size."""
    tmp = store.storage.tempfile()
    try:
        with store.storage.full_disk_named(), open(tmp, "wb") as out:
            size = source.copy_blob_to(object_id, out)  # verifies while it streams
        store.storage.move_in(keys.content_key(object_id), tmp, mode="create")
    except PreconditionFailedError:
        pass  # someone else published the same object meanwhile
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return size
