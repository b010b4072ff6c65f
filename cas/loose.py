"""Loose objects: one key each, in one of three forms (docs/format.md).

A large blob is kept as its content alone (``blobs/``), so the kernel can copy
it in and out page-aligned, or as its chunk list (``chunked/``, read through
:mod:`cas.chunked`); anything else loose (and large blobs of older stores) as
its exact bytes (``objects/``). Every read here is verified.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import blake3

from . import keys, objects
from .errors import CorruptObjectError, InvalidObjectError, KeyNotFoundError
from .objects import ObjectId, verify
from .packs import LOOSE_THRESHOLD
from .storage.base import Storage

_CHUNK = 1 << 20


def get(storage: Storage, object_id: ObjectId) -> bytes:
    """A loose object's exact bytes, verified; KeyNotFoundError if it is not loose."""
    try:
        return verify(object_id, storage.get(keys.loose_key(object_id)))
    except KeyNotFoundError:
        content = storage.get(keys.content_key(object_id))
    return verify(object_id, objects.encode_header("blob", len(content)) + content)


def location(storage: Storage, object_id: ObjectId) -> str | None:
    """The key holding ``object_id`` loose, or None."""
    forms = (keys.content_key, keys.chunked_key, keys.loose_key)
    for key in (form(object_id) for form in forms):
        if storage.exists(key):
            return key
    return None


def iter_ids(storage: Storage) -> Iterator[ObjectId]:
    seen: set[ObjectId] = set()
    for prefix in keys.LOOSE_PREFIXES:
        for key in storage.list(prefix):
            object_id = keys.parse_loose_key(key)
            if object_id is not None and object_id not in seen:
                seen.add(object_id)
                yield object_id


def delete(storage: Storage, object_id: ObjectId) -> None:
    """Delete the loose copies of ``object_id``, in any form."""
    storage.delete(keys.content_key(object_id))
    storage.delete(keys.chunked_key(object_id))
    storage.delete(keys.loose_key(object_id))


def copy_content(storage: Storage, object_id: ObjectId, dest: BinaryIO) -> int:
    """Stream a large blob kept as its content alone into ``dest``, verifying it; its size."""
    key = keys.content_key(object_id)
    with storage.open(key) as src:
        size = storage.stat(key).size
        hasher = blake3.blake3()
        hasher.update(objects.encode_header("blob", size))
        while chunk := src.read(_CHUNK):
            hasher.update(chunk)
            dest.write(chunk)
    if hasher.digest() != object_id:
        raise CorruptObjectError(object_id, hasher.digest())
    return size


def copy_whole_blob(src: BinaryIO, object_id: ObjectId, dest: BinaryIO) -> int:
    """Stream the payload of a blob kept as its whole bytes, read from ``src``, into
    ``dest``, verifying it; its size."""
    hasher = blake3.blake3()
    head = src.read(objects.MAX_HEADER)
    hasher.update(head)
    try:
        kind, length, offset = objects.decode_header(head)
        if kind != "blob":
            raise InvalidObjectError(f"expected a blob, found a {kind}")
    except InvalidObjectError as exc:
        # A damaged header is corruption if the bytes do not hash to the id.
        while chunk := src.read(_CHUNK):
            hasher.update(chunk)
        if hasher.digest() != object_id:
            raise CorruptObjectError(object_id, hasher.digest()) from None
        raise InvalidObjectError(f"object {object_id.hex()}: {exc}") from None
    dest.write(head[offset:])
    written = len(head) - offset
    while chunk := src.read(_CHUNK):
        hasher.update(chunk)
        dest.write(chunk)
        written += len(chunk)
    if hasher.digest() != object_id or written != length:
        raise CorruptObjectError(object_id, hasher.digest())
    return written


def read_content_range(storage: Storage, object_id: ObjectId, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of a large blob kept as its content alone, unverified;
    KeyNotFoundError if it is not kept so."""
    data = storage.get(keys.content_key(object_id), start, end)
    if len(data) != end - start:
        raise CorruptObjectError(object_id, detail=f"it ends before byte {end}")
    return data


def is_large_whole_blob(storage: Storage, key: str) -> bool:
    """Whether the whole object bytes under ``key`` are a blob worth streaming."""
    if storage.stat(key).size < LOOSE_THRESHOLD:
        return False
    try:
        return objects.decode_header(storage.get(key, 0, objects.MAX_HEADER))[0] == "blob"
    except InvalidObjectError:
        return False  # a damaged header: a verified read says whether it is corrupt


class InOrderVerifier:
    """Checks a blob read in ranges (:meth:`cas.store.ObjectStore.read_blob_range`).

    The ranges that continue on from its start are hashed as they come; the
    one that reaches its end raises :class:`CorruptObjectError` if the whole
    does not hash to the id, and so does every range fed after that. A reader
    that reads a blob to its end in order therefore never gets to its end with
    wrong bytes; a range read out of order is not checked.
    """

    def __init__(self, object_id: ObjectId, size: int) -> None:
        self.object_id = object_id
        self.size = size
        self._hasher = blake3.blake3()
        self._hasher.update(objects.encode_header("blob", size))
        self._hashed = 0  # bytes from the start hashed so far
        self._actual: ObjectId | None = None  # the id the whole hashed to, once wrong

    def feed(self, start: int, data: bytes) -> None:
        end = start + len(data)
        if start <= self._hashed < end:
            self._hasher.update(memoryview(data)[self._hashed - start :])
            self._hashed = end
            if end == self.size and self._hasher.digest() != self.object_id:
                self._actual = self._hasher.digest()
        if self._actual is not None:
            raise CorruptObjectError(self.object_id, self._actual)
