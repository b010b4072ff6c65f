"""What one area of a store (its objects, or its fossils) holds: every copy of every
object, its size, its modification time and what it references. gc (cas.gc) takes
this inventory of the store and of the fossils before deciding anything."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import chunklists, keys, objects
from .errors import CasError, InvalidObjectError, KeyNotFoundError
from .objects import ObjectId
from .packs import LOOSE_THRESHOLD
from .storage.base import Stat, Storage
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


# Small loose objects read at once: on a bucket each read is a round trip, so gc reads
# several together (as remotes.transfer copies), holding a batch at most in memory.
READ_THREADS = 8
_BATCH = 64


def take_inventory(
    store: ObjectStore, skip: set[ObjectId], pace: Callable[[], None] = lambda: None
) -> Inventory:
    """Every copy of every object outside ``skip``, read once to learn what it references.

    Sizes and times come from listings (a bucket's carries them, a thousand keys a
    request); only what a listing cannot tell is read: small loose objects and chunk
    lists, a few at once, and packs."""
    found = Inventory()
    storage = store.storage
    held = [(i, copies) for i, copies in _loose_copies(storage).items() if i not in skip]
    with ThreadPoolExecutor(READ_THREADS) as pool:
        read_all = map if storage.capabilities.local else pool.map  # a disk answers at once
        for start in range(0, len(held), _BATCH):
            batch = held[start : start + _BATCH]
            reads = read_all(lambda item: _read(storage, *item), batch)
            for (object_id, copies), (data, chunk_list) in zip(batch, reads, strict=True):
                pace()
                if data is not None:
                    _add_loose(found, object_id, copies, data, chunk_list)
    known = sorted(store.packs())
    listed = dict(storage.list_stats(keys.PACKS_PREFIX))
    for pack in known:
        entries = [(i, o, n) for i, o, n in store.pack_entries(pack) if i not in skip]
        stat = listed.get(keys.pack_key(pack))
        if not entries or stat is None:
            continue  # nothing to count, or rewritten since it became known
        try:
            data = store.read_pack(pack)
        except KeyNotFoundError:
            continue  # rewritten since the listing
        found.packs[pack] = {i for i, _, _ in entries}
        found.pack_mtimes[pack] = stat.mtime
        for object_id, offset, length in entries:
            pace()
            found.sizes.setdefault(object_id, length)
            found.mtimes[object_id] = max(stat.mtime, found.mtimes.get(object_id, stat.mtime))
            refs = _references(object_id, data[offset : offset + length])
            found.refs_of[object_id] = found.refs_of.get(object_id, []) + refs
    return found


def _loose_copies(storage: Storage) -> dict[ObjectId, dict[str, Stat]]:
    """Each loose object's keys, with their stats, in the order its forms are looked
    for (cas.loose.location): a large blob's content, its chunk list, its whole bytes.
    Content is listed before chunk lists, so a file converted to chunks meanwhile is
    seen one way or the other."""
    copies: dict[ObjectId, dict[str, Stat]] = {}
    for prefix in keys.LOOSE_PREFIXES:
        for key, stat in storage.list_stats(prefix):
            if (object_id := keys.parse_loose_key(key)) is not None:
                copies.setdefault(object_id, {})[key] = stat
    return copies


def _read(
    storage: Storage, object_id: ObjectId, copies: dict[str, Stat]
) -> tuple[bytes | None, bytes | None]:
    """What must be read of a loose object, from the first of its ``copies``: its
    bytes (nothing for a large blob's content; None if gone since the listing), and
    the chunk list of a blob also held another way (None if none)."""
    key = next(iter(copies))
    chunked = keys.chunked_key(object_id)
    try:
        if key == keys.content_key(object_id):
            data = b""  # a blob: it references nothing
        elif key == keys.loose_key(object_id):
            data = _whole_bytes(storage, key, copies[key].size)
        else:
            data = storage.get(key)
    except KeyNotFoundError:
        return None, None
    try:
        chunk_list = storage.get(chunked) if key != chunked and chunked in copies else None
    except KeyNotFoundError:
        chunk_list = None  # gone since the listing
    return data, chunk_list


def _whole_bytes(storage: Storage, key: str, size: int) -> bytes:
    """An object kept whole, read; but a large blob (older stores kept them so) only as
    far as its header: a blob references nothing, so there is nothing more to learn."""
    if size >= LOOSE_THRESHOLD:
        try:
            if objects.decode_header(storage.get(key, 0, objects.MAX_HEADER))[0] == "blob":
                return b""
        except InvalidObjectError:
            pass  # a damaged header: read it all, as for any object
    return storage.get(key)


def _add_loose(
    found: Inventory,
    object_id: ObjectId,
    copies: dict[str, Stat],
    data: bytes,
    chunk_list: bytes | None,
) -> None:
    """Count a loose object by its first copy; a blob also held as a chunk list reaches
    its chunks, and is as young as its newest copy."""
    key, stat = next(iter(copies.items()))
    found.loose[object_id] = found.sizes[object_id] = stat.size
    found.mtimes[object_id] = stat.mtime
    if key == keys.chunked_key(object_id):
        found.refs_of[object_id] = _chunks(object_id, data)
        return
    found.refs_of[object_id] = _references(object_id, data) if data else []
    if chunk_list is not None:
        listed = copies[keys.chunked_key(object_id)].mtime
        found.mtimes[object_id] = max(listed, stat.mtime)
        found.refs_of[object_id] += _chunks(object_id, chunk_list)


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
