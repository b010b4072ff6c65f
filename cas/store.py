"""Where objects live: loose files and packs, verified on every read.

Callers never see the layout (:mod:`cas.keys`). They put objects, get them back
by id, and ask which ids exist. Large blobs are written loose, as the file's
bytes exactly, so the kernel can copy them in and out (:mod:`cas.loose`);
small objects written through a :class:`~cas.packs.PackWriter` are appended to
one pack, which becomes visible only when its index is published, after the
pack itself (:mod:`cas.packs`, :mod:`cas.packset`). Files from
``chunk_threshold`` up are stored as content-defined chunks (:mod:`cas.chunked`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from . import chunked, keys, largeblobs, loose, objects

# CORES and InOrderVerifier are imported from here by artifacts.
from ._fastio import CORES, HASH_CHUNK, HASH_THREADS, copy_hashed  # noqa: F401
from .chunklists import ChunkList
from .errors import (
    CorruptObjectError,
    InvalidObjectError,
    KeyNotFoundError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from .loose import InOrderVerifier  # noqa: F401
from .objects import Commit, ObjectId, Tree, verify
from .packs import LOOSE_THRESHOLD, Entry, PackWriter, check_pack, pack_name
from .packset import PackSet
from .storage.base import Storage
from .storage.view import Prefixed

Located = tuple[ObjectId, str, int, int]  # an id, its pack, offset and length


class ObjectStore:
    """Content-addressed objects on a storage backend."""

    def __init__(
        self, storage: Storage, cache_dir: str | None = None, fossil_area: bool = True
    ) -> None:
        self.storage = storage
        self.cache_dir = cache_dir  # where remote pack indexes are kept
        # The fossils: a store of the same layout under fossils/ (no fossils of its own).
        self.fossils = (
            ObjectStore(
                Prefixed(storage, keys.FOSSIL_PREFIX),
                os.path.join(cache_dir, "fossils") if cache_dir else None,
                fossil_area=False,
            )
            if fossil_area
            else None
        )
        # A writer's lease (cas.lease) watches what it stores and reads: None outside one.
        self.watcher: Any = None
        self._packs = PackSet(storage, cache_dir)
        self.chunk_threshold = chunked.CHUNK_THRESHOLD  # files this big go as chunks
        self.changed_chunk_threshold = chunked.CHANGED_THRESHOLD  # ... where that saves
        # Where the chunks of a chunked blob are read: a fossil's chunks may be present.
        self.chunk_source = self
        if self.fossils is not None:
            self.fossils.chunk_source = self

    # ---- reading -------------------------------------------------------

    def get_raw(self, object_id: ObjectId, _retry: bool = True) -> bytes:
        """The object's exact bytes, verified against its id."""
        where = self._packs.find(object_id)
        if where is None:
            try:
                return loose.get(self.storage, object_id)
            except KeyNotFoundError:
                pass
            chunks = self._own_chunk_list(object_id)
            if chunks is not None:
                out = io.BytesIO()
                out.write(objects.encode_header("blob", chunks.size))
                chunked.copy_to(self.chunk_source, object_id, chunks, out)
                return out.getvalue()
            self.refresh_packs()
            where = self._packs.find(object_id)
            if where is None:
                return self._get_fossil(object_id)
        pack, offset, length = where
        try:
            data = self._packs.read(pack, offset, offset + length)
        except KeyNotFoundError:
            if not _retry:
                return self._get_fossil(object_id)
            # gc rewrote the pack since we loaded its index. It published the live
            # objects elsewhere before deleting it: forget it and look again.
            self.forget_pack(pack)
            return self.get_raw(object_id, _retry=False)
        try:
            return verify(object_id, data)
        except CorruptObjectError:
            try:  # a good loose copy (a repair may have written one) beats a bad packed one
                return loose.get(self.storage, object_id)
            except (KeyNotFoundError, CorruptObjectError):
                pass
            raise

    def _get_fossil(self, object_id: ObjectId) -> bytes:
        """An object found only among the fossils: a reachable object sits there between
        a writer's publish and the next gc. A writer's lease restores it first."""
        if self.fossils is None:
            raise ObjectNotFoundError(object_id, self.storage.url)
        try:
            data = self.fossils.get_raw(object_id)
        except ObjectNotFoundError:
            raise ObjectNotFoundError(object_id, self.storage.url) from None
        if self.watcher is not None:
            self.watcher.read_fossil(object_id)
        return data

    def get(self, object_id: ObjectId, expect: str | None = None) -> objects.Object:
        try:
            return objects.decode(self.get_raw(object_id), expect)
        except InvalidObjectError as exc:
            raise InvalidObjectError(f"object {object_id.hex()}: {exc}") from None

    def get_tree(self, object_id: ObjectId) -> Tree:
        return self.get(object_id, "tree")  # type: ignore[return-value]

    def get_commit(self, object_id: ObjectId) -> Commit:
        return self.get(object_id, "commit")  # type: ignore[return-value]

    def read_blob(self, object_id: ObjectId) -> bytes:
        return self.get(object_id, "blob").data  # type: ignore[union-attr]

    def kind(self, object_id: ObjectId) -> str:
        return objects.split(self.get_raw(object_id))[0]

    def copy_blob_to(self, object_id: ObjectId, dest: BinaryIO) -> int:
        """Stream a blob's payload into ``dest``, verifying it; returns its size.

        On a :class:`CorruptObjectError` the caller must discard ``dest``:
        verification can only finish at the end of the stream.
        """
        if self._packs.find(object_id) is not None:
            data = self.read_blob(object_id)
            dest.write(data)
            return len(data)
        try:
            return loose.copy_content(self.storage, object_id, dest)
        except KeyNotFoundError:
            pass  # chunked, packed since we looked, or of the older whole-bytes form
        chunks = self._own_chunk_list(object_id)
        if chunks is not None:
            return chunked.copy_to(self.chunk_source, object_id, chunks, dest)
        try:
            src = self.storage.open(keys.loose_key(object_id))
        except KeyNotFoundError:
            self.refresh_packs()
            if self._packs.find(object_id) is not None:
                return self.copy_blob_to(object_id, dest)
            if self.fossils is None:
                raise ObjectNotFoundError(object_id, self.storage.url) from None
            if self.watcher is not None:
                self.watcher.read_fossil(object_id)
            try:
                return self.fossils.copy_blob_to(object_id, dest)
            except ObjectNotFoundError:
                raise ObjectNotFoundError(object_id, self.storage.url) from None
        with src:
            return loose.copy_whole_blob(src, object_id, dest)

    def read_blob_range(self, object_id: ObjectId, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a blob's content; ``end`` is at most its size.

        A large blob's range is read alone, without the rest of the blob, so it
        cannot be checked against the id, which covers the whole blob (a chunked
        one's chunks are each checked against their own id): readers
        that must hand out only verified bytes feed what they read to an
        :class:`~cas.loose.InOrderVerifier`, or read the whole blob. A packed (small) blob
        is read whole and verified. A blob shorter than ``end`` is corrupt.
        """
        if self._packs.find(object_id) is None:
            try:
                return loose.read_content_range(self.storage, object_id, start, end)
            except KeyNotFoundError:
                pass  # chunked, packed since we looked, or of the older whole-bytes form
            try:
                return chunked.read_range(self.chunk_source, self.storage, object_id, start, end)
            except KeyNotFoundError:
                pass
        return self.read_blob(object_id)[start:end]

    def chunk_list(self, object_id: ObjectId) -> ChunkList | None:
        """The chunk list of a blob stored as chunks, here or among the fossils (a writer
        restores such a fossil first); None for any other object."""
        chunks = self._own_chunk_list(object_id)
        if chunks is not None or self.fossils is None:
            return chunks
        chunks = self.fossils.chunk_list(object_id)
        if chunks is not None and self.watcher is not None:
            self.watcher.read_fossil(object_id)
        return chunks

    def _own_chunk_list(self, object_id: ObjectId) -> ChunkList | None:
        try:
            return chunked.read_list(self.storage, object_id)
        except KeyNotFoundError:
            return None

    def locate_packed(self, ids: Iterable[ObjectId]) -> list[Located]:
        """(id, pack, offset, length) of those ``ids`` held in packs, in pack order."""
        wanted = set(ids)
        if len(wanted) > 256:
            self.refresh_packs()
        found = [(i, *where) for i, where in self._packs.locate(wanted).items()]
        return sorted(found, key=lambda item: (item[1], item[2]))

    def read_packed_blobs(self, located: list[Located]) -> Iterator[tuple[ObjectId, bytes]]:
        """(id, payload) of packed blobs from :meth:`locate_packed`, each verified."""
        for object_id, data in self.read_packed(located):
            kind, payload = objects.split(data)
            if kind != "blob":
                raise InvalidObjectError(f"object {object_id.hex()}: expected a blob")
            yield object_id, payload

    def read_packed(self, located: list[Located]) -> Iterator[tuple[ObjectId, bytes]]:
        """(id, object bytes) of packed objects from :meth:`locate_packed`, each verified.

        Neighbours in a pack are read together, up to 8 MiB a request: one read
        for hundreds of small files instead of one each, and never a whole pack.
        """
        i = 0
        while i < len(located):
            _, pack, start, _ = located[i]
            j, end = i, start
            while j < len(located):
                _, p, offset, length = located[j]
                if p != pack or offset < end or offset + length - start > HASH_CHUNK:
                    break
                end = offset + length
                j += 1
            j = max(j, i + 1)  # one object larger than a span is read alone
            end = max(end, located[i][2] + located[i][3])
            try:
                span = self._packs.read(pack, start, end)
            except KeyNotFoundError:  # gc rewrote the pack: read each the slow way
                span = None
            for object_id, _, offset, length in located[i:j]:
                try:
                    if span is None:
                        raise CorruptObjectError(object_id, b"")  # not read: the slow way
                    data = verify(object_id, span[offset - start : offset - start + length])
                except CorruptObjectError:
                    data = self.get_raw(object_id)  # which may find a good loose copy
                yield object_id, data
            i = j

    def has(self, object_id: ObjectId) -> bool:
        return bool(self.has_many([object_id]))

    def has_many(self, ids: Iterable[ObjectId]) -> set[ObjectId]:
        """The subset of ``ids`` this store holds."""
        wanted = set(ids)
        if len(wanted) > 256:
            self.refresh_packs()
        found = set(self._packs.locate(wanted))
        rest = wanted - found
        if rest:
            self.refresh_packs()
            found |= {i for i in rest if self._packs.find(i) is not None}
            rest -= found
        if len(rest) > 64 and not self.storage.capabilities.local:
            listed = set(self.iter_loose())  # one listing beats many HEAD requests
            found |= rest & listed
        else:
            found |= {i for i in rest if self.loose_location(i) is not None}
        return found

    def presence(self) -> Callable[[ObjectId], bool]:
        """Does this store hold an object, as of now (the loose objects listed and the
        packs known now)? What a long copy into this store asks of every object it meets."""
        self.refresh_packs()
        listed = set(self.iter_loose())
        packed = self._packs.holds_now()
        return lambda object_id: object_id in listed or packed(object_id)

    __contains__ = has

    def __iter__(self) -> Iterator[ObjectId]:
        self.refresh_packs()
        seen = set(self._packs.merged())
        yield from seen
        for object_id in self.iter_loose():
            if object_id not in seen:
                yield object_id

    def iter_loose(self) -> Iterator[ObjectId]:
        return loose.iter_ids(self.storage)

    def loose_location(self, object_id: ObjectId) -> str | None:
        """The key holding ``object_id`` loose, or None."""
        return loose.location(self.storage, object_id)

    # ---- packs ---------------------------------------------------------

    def packs(self) -> set[str]:
        self.refresh_packs()
        return self._packs.names()

    def pack_of(self, object_id: ObjectId) -> str | None:
        """The pack holding ``object_id``, or None when it is loose or absent."""
        where = self._packs.find(object_id)
        return where[0] if where else None

    def read_pack(self, pack: str) -> bytes:
        """A whole pack's bytes, unverified; KeyNotFoundError once gc deleted it."""
        return self._packs.read(pack)

    def read_pack_objects(self, pack: str, wanted: set[ObjectId]) -> Iterator[bytes]:
        """The verified bytes of the ``wanted`` objects of one pack, in one read."""
        data = self.read_pack(pack)
        for object_id, offset, length in self.pack_entries(pack):
            if object_id in wanted:
                yield verify(object_id, data[offset : offset + length])

    def pack_entries(self, pack: str) -> list[Entry]:
        return self._packs.entries(pack)

    def refresh_packs(self, whole: bool = False) -> dict[str, str]:
        """Load the indexes of packs published since we last looked (``whole``: all read
        again, each checked whole); those set aside as damaged (:mod:`cas.packset`)."""
        return self._packs.forget(whole=True) if whole else self._packs.refresh()

    def forget_pack(self, name: str) -> None:
        """Drop a pack from the in-memory index (after gc removed it)."""
        self._packs.forget()  # reload all: an object of the dropped pack may live on in another

    def sync_packs(self) -> None:
        """Make the in-memory pack indexes match the packs that exist now: a pack gc
        rewrote since we last looked must not answer "already stored"."""
        self._packs.sync()

    # ---- writing -------------------------------------------------------

    def put(self, obj: objects.Object) -> ObjectId:
        return self.put_raw(obj.to_bytes())

    def put_raw(self, data: bytes) -> ObjectId:
        """Store object bytes loose (a large blob's content alone), unless an equal
        object exists."""
        kind, payload = objects.split(data)  # never store bytes that are not an object
        object_id = objects.object_id(data)
        if self._packs.find(object_id) is not None:
            return object_id
        if kind != "blob" and self.watcher is not None:
            self.watcher.storing(data)
        key, body = (keys.loose_key(object_id), data)
        if kind == "blob" and len(data) >= LOOSE_THRESHOLD:
            key, body = keys.content_key(object_id), payload
        try:
            self.storage.put(key, body, mode="create")
        except PreconditionFailedError:
            pass  # already there: same id, same bytes
        return object_id

    def put_blob_file(
        self,
        path: str,
        hash_threads: int = HASH_THREADS,
        expect: ObjectId | None = None,
        replacing: bool = False,
    ) -> tuple[ObjectId, int]:
        """Store a file of any size as a large blob; (id, size): :func:`cas.largeblobs.put_file`."""
        return largeblobs.put_file(self, path, hash_threads, expect, replacing)

    def copy_large_blob(self, source: ObjectStore, object_id: ObjectId) -> int | None:
        """Stream a large blob ``source`` holds loose into this store; the bytes written,
        or None when it is not held so: :func:`cas.largeblobs.copy_from`."""
        return largeblobs.copy_from(self, source, object_id)

    def writer(self, limit: int | None = None) -> PackWriter:
        return PackWriter(self, limit)

    def put_chunk_list(self, object_id: ObjectId, chunks: ChunkList | bytes) -> None:
        """Publish the chunk list of a blob stored as chunks: only once every chunk it
        names is stored (a present object has everything it reaches)."""
        data = chunks if isinstance(chunks, bytes) else chunks.encode()
        try:
            self.storage.put(keys.chunked_key(object_id), data, mode="create")
        except PreconditionFailedError:
            pass  # already there: the same blob, chunked the same way or another

    def adopt_pack(self, data: bytes, entries: list[Entry]) -> str:
        """Publish another store's pack as it is (``entries``: its index), once every
        object in it is checked against its id; returns the pack's name."""
        check_pack(data, entries)
        name = pack_name(data)
        tmp = self.storage.tempfile()
        try:
            with self.storage.full_disk_named(), open(tmp, "wb") as out:
                out.write(data)
            self.publish_pack(name, tmp, entries)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return name

    def publish_pack(self, name: str, tmp: str, entries: list[Entry]) -> None:
        """Publish the pack file ``tmp`` as ``name``, then its index: readers find
        objects through indexes, so a pack is never visible before it is whole."""
        self._packs.publish(name, tmp, entries)

    def delete_loose(self, object_id: ObjectId) -> None:
        """Delete the loose copies of ``object_id``, in any form."""
        loose.delete(self.storage, object_id)

    def delete_packs(self, names: Iterable[str]) -> None:
        """Delete packs for good (each index before its pack), then reload what is left."""
        self._packs.delete(names)
