"""The packs of one store as this process knows them: where each packed object is.

A pack becomes known when its index is read (from the local cache when the
store is remote: indexes never change). Known packs answer "where is this
object?" without a request; packs published by others since are found by
listing the indexes again (:meth:`PackSet.refresh`).

An index read from a bucket is checked whole, and against its pack's size, before
it is cached or used: one that is damaged, or whose pack is missing or of another
size, is set aside with a warning (fsck reports it). Its objects are then neither
read through it nor taken as "already stored", and the other packs serve as ever.
A local store's indexes, read at every command, are checked only for their shape
and their pack's presence there (a whole check costs 0.16 s per million objects):
fsck checks them whole (``forget(whole=True)``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Collection, Iterable

from . import keys
from .errors import InvalidObjectError, KeyNotFoundError, PreconditionFailedError
from .objects import ObjectId
from .packs import Entry, PackIndex, check_index, decode_index, encode_index
from .storage.base import Storage

SMALL_PACK = 1024  # packs of at most this many objects are indexed in one shared dict

Location = tuple[str, int, int]  # the pack, the offset in it, the length


class PackSet:
    def __init__(self, storage: Storage, cache_dir: str | None) -> None:
        self.storage = storage
        self.cache_dir = cache_dir  # where remote pack indexes are kept
        self._indexes: dict[str, PackIndex] = {}
        # Every log adds a small pack or two; searching each in turn would make a lookup
        # cost grow with the history. So small packs share one dict, and only big ones
        # are searched in place.
        self._small: dict[ObjectId, Location] = {}
        self._big: dict[str, PackIndex] = {}
        # Built only to iterate over every object.
        self._merged: dict[ObjectId, Location] | None = None
        self._damaged: dict[str, str] = {}  # indexes set aside: what is wrong with each
        self._whole = not storage.capabilities.local  # check each index whole when read
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def find(self, object_id: ObjectId) -> Location | None:
        """Where a known pack holds ``object_id``, or None."""
        if self._merged is not None:
            return self._merged.get(object_id)
        found = self._small.get(object_id)
        if found is not None:
            return found
        for name, index in tuple(self._big.items()):  # a copy: another thread may add one
            at = index.find(object_id)
            if at is not None:
                return name, at[0], at[1]
        return None

    def locate(self, ids: Collection[ObjectId]) -> dict[ObjectId, Location]:
        """Where known packs hold each of ``ids``. Many ids are found in one pass over
        each big index rather than a search each (a search costs about as much as
        passing over 40 entries); no table of every packed object is built."""
        if self._merged is not None:
            return {i: at for i in ids if (at := self._merged.get(i)) is not None}
        big = tuple(self._big.items())  # a copy: another thread may add one
        if len(ids) * len(big) * 40 < sum(len(index) for _, index in big):
            return {i: at for i in ids if (at := self.find(i)) is not None}
        found = {i: at for i in ids if (at := self._small.get(i)) is not None}
        for name, index in big:
            for object_id, offset, length in index.select(ids):
                found.setdefault(object_id, (name, offset, length))
        return found

    def holds_now(self) -> Callable[[ObjectId], bool]:
        """Is an object in a pack known now? Big packs added later are not searched: a
        long copy into this store must not slow its own checks with every pack it adds."""
        big = tuple(self._big.values())
        small = self._small
        return lambda object_id: (
            object_id in small or any(index.find(object_id) is not None for index in big)
        )

    def merged(self) -> dict[ObjectId, Location]:
        """Every known packed object: built once, kept up to date from then on."""
        with self._lock:
            if self._merged is None:
                merged: dict[ObjectId, Location] = {}
                for name, index in self._indexes.items():
                    for object_id, offset, length in index.entries():
                        merged.setdefault(object_id, (name, offset, length))
                self._merged = merged
            return self._merged

    def _add(self, index: PackIndex) -> None:
        with self._lock:
            if index.name in self._indexes:
                return
            self._indexes[index.name] = index
            if len(index) > SMALL_PACK:
                self._big[index.name] = index
            else:
                for object_id, offset, length in index.entries():
                    self._small.setdefault(object_id, (index.name, offset, length))
            if self._merged is not None:
                for object_id, offset, length in index.entries():
                    self._merged.setdefault(object_id, (index.name, offset, length))

    def names(self) -> set[str]:
        """The known packs."""
        return set(self._indexes)

    def entries(self, pack: str) -> list[Entry]:
        index = self._indexes.get(pack)
        return index.entries() if index is not None else decode_index(self._read_index(pack), pack)

    def _listed(self) -> tuple[set[str], dict[str, int]]:
        """The packs whose index is listed, and the size of each pack listed (one
        listing: a bucket's carries the sizes)."""
        indexes, packs = set(), {}
        for key, stat in self.storage.list_stats(keys.PACKS_PREFIX):
            if (name := keys.parse_index_key(key)) is not None:
                indexes.add(name)
            elif (name := keys.parse_pack_key(key)) is not None:
                packs[name] = stat.size
        return indexes, packs

    def refresh(self, whole: bool = False) -> dict[str, str]:
        """Load the indexes of packs published since we last looked (``whole``: each
        checked whole, even on a local store); returns those set aside, each with what
        is wrong with it."""
        indexes, packs = self._listed()
        for name in indexes - set(self._indexes) - set(self._damaged):
            try:
                size = packs[name] if name in packs else self._pack_size(name)
                index = PackIndex(name, self._read_index(name, size, whole))
            except KeyNotFoundError:
                continue  # gc deleted it since the listing
            except InvalidObjectError as exc:
                self._set_aside(name, str(exc))
                continue
            self._add(index)
        return dict(self._damaged)

    def _pack_size(self, name: str) -> int:
        """The size of a pack the listing missed. A listing is no snapshot: a pack
        published during it (before its index) can be missed while its index is
        listed. KeyNotFoundError if gc deleted both since."""
        try:
            return self.storage.stat(keys.pack_key(name)).size
        except KeyNotFoundError:
            self.storage.stat(keys.index_key(name))
            raise InvalidObjectError(f"pack index {name} names a missing pack") from None

    def _set_aside(self, name: str, problem: str) -> None:
        self._damaged[name] = problem
        if name not in self._warned:  # once, not at every read that misses
            self._warned.add(name)
            warnings.warn(
                f"{problem} in {self.storage.url}: its objects are not read from it;"
                " `artifacts fsck --repair <a copy of the store>` mends it",
                stacklevel=2,
            )

    def forget(self, whole: bool = False) -> dict[str, str]:
        """Reload every index from a new listing (after gc removed a pack): an object of
        a dropped pack may live on in another. ``whole`` (fsck): each checked whole."""
        with self._lock:
            self._indexes.clear()
            self._small.clear()
            self._big.clear()
            self._merged = None
            self._damaged.clear()  # read them again: one may have been repaired
        return self.refresh(whole)

    def sync(self) -> None:
        """Match the packs that exist now: a pack gc rewrote since we last looked must
        not answer "already stored", nor one whose pack is gone."""
        indexes, packs = self._listed()
        known = set(self._indexes)
        if known - (indexes & packs.keys()):
            self.forget()
        elif indexes - known - set(self._damaged):
            self.refresh()

    def _read_index(self, name: str, pack_size: int | None = None, whole: bool = False) -> bytes:
        """An index, checked (InvalidObjectError): in full and against its pack's size
        (as listed, else stat-ed) when read from a bucket, or ``whole``; else (cached,
        as it was checked then, or local) only its shape."""
        cached = (
            os.path.join(self.cache_dir, os.path.basename(keys.index_key(name)))
            if self.cache_dir
            else None
        )
        if cached and os.path.exists(cached):
            with open(cached, "rb") as f:
                data = f.read()
            try:
                PackIndex(name, data)
                return data
            except InvalidObjectError:  # cached unchecked, by an older version: read again
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(cached)
        data = self.storage.get(keys.index_key(name))
        if self._whole or whole:
            self._check_whole(name, data, pack_size)
        else:
            PackIndex(name, data)
        if cached:
            try:
                self._keep(data, cached)
            except OSError as exc:  # a copy only: on a full disk, read from the store
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
        return data

    def _keep(self, data: bytes, cached: str) -> None:
        """Keep a checked index's ``data`` in the local cache, as file ``cached``."""
        os.makedirs(self.cache_dir, exist_ok=True)  # type: ignore[arg-type]
        # A name of its own: another thread of this process may cache it too.
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
        try:
            with open(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, cached)  # checked, and an index never changes: safe to keep
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _check_whole(self, name: str, data: bytes, pack_size: int | None) -> None:
        size = check_index(data, name)
        held = self.storage.stat(keys.pack_key(name)).size if pack_size is None else pack_size
        if held != size:
            raise InvalidObjectError(
                f"pack index {name} lists {size} bytes of objects but its pack holds {held}"
            )

    def read(self, pack: str, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes of a pack, unverified; KeyNotFoundError once gc deleted it."""
        return self.storage.get(keys.pack_key(pack), start, end)

    def publish(self, name: str, tmp: str, entries: list[Entry]) -> None:
        """Publish the pack file ``tmp`` as ``name``, then its index: readers find
        objects through indexes, so a pack is never visible before it is whole."""
        try:
            self.storage.move_in(keys.pack_key(name), tmp, mode="create")
        except PreconditionFailedError:
            pass  # an identical pack is already published
        index = encode_index(entries)
        try:
            self.storage.put(keys.index_key(name), index, mode="create")
        except PreconditionFailedError:
            pass
        self._add(PackIndex(name, index))

    def delete(self, names: Iterable[str]) -> None:
        """Delete packs for good, then reload what is left."""
        for name in names:
            self.storage.delete(keys.index_key(name))  # readers stop finding it first
            self.storage.delete(keys.pack_key(name))
        self.forget()
