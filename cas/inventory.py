"""What one area of a store (its objects, or its fossils) holds: every copy of every
object, its size, its modification time and what it references. gc (cas.gc) takes
this inventory of the store and of the fossils before deciding anything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import chunklists, keys, objects
from .errors import CasError, KeyNotFoundError
from .objects import ObjectId
from .storage.base import Storage
from .store import ObjectStore
from .walk import references


@dataclass
class Inventory:
    """The objects of one area (the store or its fossils) outside a set of ids."""

    loose: dict[ObjectId, int] = field(default_factory=dict)  # id -> size
    packs: dict[str, set[ObjectId]] = field(default_factory=dict)  # pack -> its ids
    pack_mtimes: dict[str, float] = field(default_factory=dict)
    mtimes: dict[ObjectId, float] = field(default_factory=dict)  # its newest copy's
    sizes: dict[ObjectId, int] = field(default_factory=dict)
    refs_of: dict[ObjectId, list[ObjectId]] = field(default_factory=dict)


def take_inventory(
    store: ObjectStore, skip: set[ObjectId], pace: Callable[[], None] = lambda: None
) -> Inventory:
    """Every copy of every object outside ``skip``, read once to learn what it references."""
    found = Inventory()
    storage = store.storage
    # A large blob may be held both whole and as chunks: its chunk list reaches its
    # chunks whichever form loose_location names first.
    chunked = {keys.parse_loose_key(k) for k in storage.list(keys.CHUNKED_PREFIX)}
    for object_id in list(store.iter_loose()):
        pace()
        if object_id in skip:
            continue
        key = store.loose_location(object_id)
        if key is None:
            continue  # gone since the listing
        try:
            stat = storage.stat(key)
            data = storage.get(key) if key != keys.content_key(object_id) else b""
        except KeyNotFoundError:
            continue
        found.loose[object_id] = found.sizes[object_id] = stat.size
        found.mtimes[object_id] = stat.mtime
        if key == keys.chunked_key(object_id):
            found.refs_of[object_id] = _chunks(object_id, data)
        else:
            found.refs_of[object_id] = _references(object_id, data) if data else []
            if object_id in chunked:
                _add_chunk_list(found, storage, object_id)
    for pack in sorted(store.packs()):
        entries = [(i, o, n) for i, o, n in store.pack_entries(pack) if i not in skip]
        if not entries:
            continue
        try:
            mtime = storage.stat(keys.pack_key(pack)).mtime
            data = store.read_pack(pack)
        except KeyNotFoundError:
            continue  # rewritten since the listing
        found.packs[pack] = {i for i, _, _ in entries}
        found.pack_mtimes[pack] = mtime
        for object_id, offset, length in entries:
            pace()
            found.sizes.setdefault(object_id, length)
            found.mtimes[object_id] = max(mtime, found.mtimes.get(object_id, mtime))
            refs = _references(object_id, data[offset : offset + length])
            found.refs_of[object_id] = found.refs_of.get(object_id, []) + refs
    return found


def _add_chunk_list(found: Inventory, storage: Storage, object_id: ObjectId) -> None:
    """Count the chunk list of a blob also held another way: its chunks are reached,
    and the blob is as young as its newest copy."""
    key = keys.chunked_key(object_id)
    try:
        stat = storage.stat(key)
        data = storage.get(key)
    except KeyNotFoundError:
        return  # gone since the listing
    found.mtimes[object_id] = max(stat.mtime, found.mtimes[object_id])
    found.refs_of[object_id] += _chunks(object_id, data)


def _references(object_id: ObjectId, data: bytes) -> list[ObjectId]:
    """What an object references; nothing if it cannot be read (it then protects
    nothing, and goes first)."""
    try:
        return references(objects.decode(objects.verify(object_id, data)))
    except CasError:
        return []


def _chunks(object_id: ObjectId, data: bytes) -> list[ObjectId]:
    """The chunks a chunk list names; nothing if it cannot be read (as for objects)."""
    try:
        return list(chunklists.decode(data, object_id.hex()).ids)
    except CasError:
        return []
