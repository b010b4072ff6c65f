"""Repair: put back verified copies of missing or corrupt objects from another store.

Objects are named by their content, so another store's copy of an id is the
same bytes. A loose object is rewritten in place. A packed object is restored
by rewriting its whole pack: its intact objects, the good copies of the
damaged ones, checked against the pack's name (the hash of its bytes) before
it replaces the damaged file. A missing object is written loose, in the form
new objects take (a large blob as its content alone, even one the source keeps
as chunks; a missing or damaged chunk is an object like any other).

A pack index the store set aside as damaged (:mod:`cas.packset`) is written again
from its pack when the pack is whole (it hashes to its name), and deleted when
its pack is gone: it made nothing readable, and the repair restores its objects.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import BinaryIO

from . import keys, objects
from .errors import CorruptObjectError, DamagedRefError, KeyNotFoundError, NotFoundError
from .fsck import FsckReport, fsck
from .objects import ObjectId
from .packs import LOOSE_THRESHOLD, PACK_MAGIC, encode_index, index_pack, pack_name, write_pack
from .refs import LEGACY_LOCKS
from .repo import Repository
from .store import ObjectStore


@dataclass
class RepairResult:
    repaired: list[str] = field(default_factory=list)  # hex ids written back, verified
    packs_rewritten: list[str] = field(default_factory=list)  # pack names restored whole
    indexes_mended: list[str] = field(default_factory=list)  # set aside, written again or gone
    unrepaired: list[str] = field(default_factory=list)  # still missing or corrupt
    report: FsckReport = field(default_factory=FsckReport)  # fsck after the repair

    @property
    def ok(self) -> bool:
        return self.report.ok


def repair(
    repo: Repository,
    source: ObjectStore,
    rounds: int = 100,
    released: Collection[ObjectId] = frozenset(),
) -> RepairResult:
    """Replace every object fsck finds missing or corrupt with a verified copy from
    ``source`` (``released``: as for :func:`cas.fsck.fsck`).

    fsck stops below a damaged tree, so the repair runs fsck again until it
    finds nothing new to fix. Objects ``source`` lacks stay in ``unrepaired``.
    """
    result = RepairResult()
    tried: set[ObjectId] = set()
    with repo.writing():
        _mend_indexes(repo.objects, result)
        for _ in range(rounds):
            result.report = fsck(repo, released=released)
            bad = [
                bytes.fromhex(p.object_id)
                for p in result.report.problems
                if p.problem in ("missing", "corrupt")
            ]
            todo = [i for i in dict.fromkeys(bad) if i not in tried]
            if not todo:
                break
            tried.update(todo)
            _repair_objects(repo.objects, source, todo, result)
    result.unrepaired = sorted(
        {p.object_id for p in result.report.problems if p.problem in ("missing", "corrupt")}
    )
    return result


def set_damaged_refs_aside(repo: Repository) -> list[tuple[str, str]]:
    """Move every ref whose bytes cannot be read out of the way (``RefStore.set_aside``),
    so that the store is usable again; returns (ref, where its bytes are now: a path,
    or the key's URL). What it pointed at is for the caller to find again: nothing here
    guesses it."""
    aside = []
    for name in sorted(repo.refs.names("")):
        if name.startswith(LEGACY_LOCKS):
            continue
        try:
            repo.refs.read(name)
        except DamagedRefError:
            kept = repo.refs.set_aside(name)
            where = repo.storage.local_path(kept) or f"{repo.storage.url}/{kept}"
            aside.append((name, where))
    return aside


def _mend_indexes(store: ObjectStore, result: RepairResult) -> None:
    for name in sorted(store.refresh_packs(whole=True)):
        try:
            data = store.read_pack(name)
        except KeyNotFoundError:
            store.storage.delete(keys.index_key(name))
        else:
            if pack_name(data) != name:
                continue  # a damaged pack: its objects are restored loose, it stays set aside
            store.storage.put(keys.index_key(name), encode_index(index_pack(data)))
        result.indexes_mended.append(name)
        store.forget_pack(name)  # no longer set aside: its index is read again, or gone


def _repair_objects(
    store: ObjectStore, source: ObjectStore, ids: list[ObjectId], result: RepairResult
) -> None:
    store.refresh_packs()
    source.refresh_packs()
    by_pack: dict[str, set[ObjectId]] = {}
    for object_id in ids:
        pack = store.pack_of(object_id)
        if pack is None:
            _rewrite_loose(store, source, object_id, result)
        else:
            by_pack.setdefault(pack, set()).add(object_id)
    for pack, bad in by_pack.items():
        if not _rewrite_pack(store, source, pack, bad, result):
            # The pack cannot be rebuilt (the source lacks an object it holds): put what
            # we can loose. Reads still prefer the pack's copy, so fsck will say so.
            for object_id in bad:
                _rewrite_loose(store, source, object_id, result)


def _rewrite_loose(
    store: ObjectStore, source: ObjectStore, object_id: ObjectId, result: RepairResult
) -> None:
    tmp = store.storage.tempfile()
    try:
        with store.storage.full_disk_named(), open(tmp, "wb") as out:
            try:
                key = _read_loose_form(source, object_id, out)
            except (NotFoundError, CorruptObjectError):
                return  # the source lacks it too, or its copy is damaged as well
        store.storage.move_in(key, tmp, mode="overwrite")
        # A damaged copy in another form would still be read: drop it.
        for form in (keys.content_key, keys.chunked_key, keys.loose_key):
            if form(object_id) != key:
                store.storage.delete(form(object_id))
        result.repaired.append(object_id.hex())
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _rewrite_pack(
    store: ObjectStore, source: ObjectStore, pack: str, bad: set[ObjectId], result: RepairResult
) -> bool:
    """Restore the pack ``pack`` byte for byte; False if it cannot be done."""
    fixed: list[str] = []
    rebuilt = _rebuilt_objects(store, source, pack, bad, fixed)
    if rebuilt is None:
        return False
    tmp = store.storage.tempfile()
    try:
        with store.storage.full_disk_named(), open(tmp, "wb") as out:
            name = write_pack(out, rebuilt)
        if name != pack:
            return False  # bytes the index does not describe: not ours to guess
        store.storage.move_in(keys.pack_key(pack), tmp, mode="overwrite")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    result.packs_rewritten.append(pack)
    result.repaired.extend(fixed)
    return True


def _rebuilt_objects(
    store: ObjectStore, source: ObjectStore, pack: str, bad: set[ObjectId], fixed: list[str]
) -> list[bytes] | None:
    """The objects of ``pack`` in pack order, the damaged ones (their hex ids added to
    ``fixed``) read from ``source``; None if the pack cannot be rebuilt so."""
    entries = sorted(store.pack_entries(pack), key=lambda e: e[1])
    try:
        current = memoryview(store.read_pack(pack))  # slices of it copy nothing
    except KeyNotFoundError:
        current = memoryview(b"")
    rebuilt: list[bytes] = []
    position = len(PACK_MAGIC)
    for object_id, offset, length in entries:
        if offset != position:
            return None  # not back to back: we cannot rebuild what lay between
        data = current[offset : offset + length]
        if object_id in bad or objects.object_id(data) != object_id:
            try:
                data = source.get_raw(object_id)  # packed objects are small
            except (NotFoundError, CorruptObjectError):
                return None
            fixed.append(object_id.hex())
        if len(data) != length:
            return None
        rebuilt.append(data)
        position += length
    return rebuilt


def _read_loose_form(src: ObjectStore, object_id: ObjectId, out: BinaryIO) -> str:
    """Write ``object_id`` to ``out`` as a store keeps it loose, verified; returns the
    key of that form: a large blob's content alone, anything else its whole bytes.

    A large blob stored that way streams. On an error the caller must discard ``out``.
    """
    content = keys.content_key(object_id)
    streamed = (content, keys.chunked_key(object_id))  # large blobs, never read whole
    if src.pack_of(object_id) is None and src.loose_location(object_id) in streamed:
        src.copy_blob_to(object_id, out)
        return content
    data = src.get_raw(object_id)
    kind, payload = objects.split(data)
    if kind == "blob" and len(data) >= LOOSE_THRESHOLD:
        out.write(payload)
        return content
    out.write(data)
    return keys.loose_key(object_id)
