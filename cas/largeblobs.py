"""Large blobs in and out of a store, streamed, never read whole.

A file is copied in by the kernel and hashed on the way (:mod:`cas._fastio`), or,
from the store's ``chunk_threshold`` up, cut into chunks (:mod:`cas.chunked`); a
blob another store holds loose is streamed across, verified as it goes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from . import chunked, keys, loose
from ._fastio import copy_hashed
from .errors import CorruptObjectError, PreconditionFailedError, UsageError
from .objects import ObjectId

if TYPE_CHECKING:
    from .store import ObjectStore


def put_file(
    store: ObjectStore, path: str, hash_threads: int, expect: ObjectId | None
) -> tuple[ObjectId, int]:
    """Store a file of any size as a loose blob; (id, size). With ``expect``, a
    file whose blob has another id is refused (CorruptObjectError), not stored.

    The id is always computed from the bytes written to the store, never
    from the file, which may change meanwhile: what we name is exactly what
    we stored. The content is kept without its header, so the copy stays
    page-aligned (copying it behind a header measured twice as slow); from
    ``chunk_threshold`` up, it is kept as chunks (:func:`cas.chunked.put_file`).
    """
    threshold = store.chunk_threshold
    if expect is None and threshold is not None and os.path.getsize(path) >= threshold:
        return chunked.put_file(store, path, hash_threads)
    tmp = store.storage.tempfile()
    try:
        with open(path, "rb", buffering=0) as src, open(tmp, "r+b", buffering=0) as dst:
            size = os.fstat(src.fileno()).st_size
            copied, object_id = copy_hashed(src.fileno(), dst.fileno(), size, hash_threads)
            if copied != size:
                raise UsageError(f"{path} changed size while it was being read")
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


def copy_from(store: ObjectStore, source: ObjectStore, object_id: ObjectId) -> int | None:
    """Stream a large blob ``source`` holds loose into ``store``, as its content
    alone, verified on the way; its size. None, copying nothing, when ``source``
    does not hold ``object_id`` loose as a large blob: read it whole instead."""
    key = source.loose_location(object_id)
    if key is None:
        return None  # packed since we looked, or missing: get_raw says which
    if key == keys.chunked_key(object_id):
        return None  # chunks: a copy sends those the other side lacks, then the list
    is_content = key == keys.content_key(object_id)
    if not is_content and not loose.is_large_whole_blob(source.storage, key):
        return None
    path = source.storage.local_path(key) if is_content else None
    if path is not None and store.storage.capabilities.local:
        # Between two local stores the kernel copies, and the copy is checked.
        return put_file(store, path, 1, object_id)[1]
    return stream_from(store, source, object_id)


def stream_from(store: ObjectStore, source: ObjectStore, object_id: ObjectId) -> int:
    """Stream a blob from ``source`` into ``store`` as its content alone, never
    read whole, verified on the way; its size."""
    tmp = store.storage.tempfile()
    try:
        with open(tmp, "wb") as out:
            size = source.copy_blob_to(object_id, out)  # verifies while it streams
        store.storage.move_in(keys.content_key(object_id), tmp, mode="create")
    except PreconditionFailedError:
        pass  # someone else published the same object meanwhile
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return size
