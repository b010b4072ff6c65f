"""Garbage collection: delete what no ref reaches, once it is old enough.

gc holds the store's exclusive lock (see :mod:`cas.locks`), so no writer is
between storing objects and publishing the refs that reach them. Packs
holding any garbage are rewritten with only what stays; the new pack is
published before the old one goes.

**If a tree or commit is present, everything it reaches is present.** Writers
publish blobs, then trees, then commits, so a dead writer's leftovers are
older at the bottom than at the top, and a grace period applied object by
object would delete blobs below trees it keeps. Shortcuts trust a present
tree (the stat cache reuses it, a push prunes its walk at it), so gc keeps
whole closures: what stays is everything reachable from the refs *and from
every object younger than the grace period*; the rest goes, each object only
after every object reaching it has gone, so a gc killed at any instant
leaves the rule true.

What holds with any grace, 0 included:

- no object reachable from a ref when gc takes the lock is deleted;
- nothing a writer stores while it holds ``Repository.writing()`` is deleted
  before the writer has published the refs that reach it, even an object the
  writer found already stored (an unreachable leftover) and did not write
  again: writers reload their pack indexes when they take the lock, so what
  they see as stored is stored until they let go.

The grace protects what the lock cannot: objects stored by a writer that
died before publishing (a retry within the grace still finds them), and
objects written without the lock. Readers take no lock: a reader may fail to
read an object that became unreachable while it read (a superseded run
record, a version dropped by a forced push), whatever the grace; objects of
versions that are still reachable stay readable, moved to a new pack at worst.

Temporary files and lock refs are cleaned up too, but only once they are
older than :data:`TMP_MIN_AGE`, whatever the grace: until then they may
belong to a running writer (a local ref write lives in ``tmp/`` for a moment).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from . import objects
from .errors import CasError
from .locks import LOCK_PREFIX, lock_written, stale_after, store_time
from .objects import ObjectId
from .repo import Repository
from .store import ObjectStore, verify
from .walk import reachable, references

DEFAULT_GRACE_SECONDS = 24 * 3600
TMP_MIN_AGE = 3600  # temporary files and lock tombstones younger than this are never touched


@dataclass
class GcReport:
    reachable: int = 0
    objects_deleted: int = 0
    bytes_freed: int = 0
    packs_rewritten: int = 0
    kept_for_grace: int = 0
    tmp_deleted: int = 0
    lock_refs_deleted: int = 0


@dataclass
class _Unreachable:
    """The objects no ref reaches, where their copies are, and what each references."""

    loose: dict[ObjectId, int] = field(default_factory=dict)  # id -> size
    packs: dict[str, set[ObjectId]] = field(default_factory=dict)  # pack -> its unreachable ids
    sizes: dict[ObjectId, int] = field(default_factory=dict)
    young: set[ObjectId] = field(default_factory=set)  # a copy is younger than the grace
    refs_of: dict[ObjectId, list[ObjectId]] = field(default_factory=dict)


def gc(
    repo: Repository, grace_seconds: float = DEFAULT_GRACE_SECONDS, wait: float | None = 60.0
) -> GcReport:
    report = GcReport()
    store = repo.objects
    with repo.exclusive(wait):
        # Lock refs carry no data (their age is their ref's), and anyone may write
        # nonsense there: they are no roots.
        roots = [
            target
            for name in repo.refs.names("")
            if not name.startswith(LOCK_PREFIX) and (target := repo.refs.read(name)) is not None
        ]
        live = {object_id for object_id, _ in reachable(store, roots)}
        report.reachable = len(live)
        # Modification times are the bucket's: so is the time they are compared with.
        found = _unreachable(store, live, store_time(repo.storage) - grace_seconds)
        kept = _closure(found.young, found.refs_of)
        report.kept_for_grace = len(kept)
        dead = set(found.sizes) - kept
        _delete_referrers_first(store, found, dead, report)
        report.tmp_deleted = _delete_old_tmp(repo, time.time() - max(grace_seconds, TMP_MIN_AGE))
        report.lock_refs_deleted = _delete_old_lock_refs(repo)
    return report


def _unreachable(store: ObjectStore, live: set[ObjectId], cutoff: float) -> _Unreachable:
    """Every copy of every object outside ``live``, read once to learn what it references."""
    found = _Unreachable()
    storage = store.storage
    for object_id in list(store.iter_loose()):
        if object_id in live:
            continue
        key = store.loose_location(object_id)
        if key is None:
            continue  # gone since the listing
        stat = storage.stat(key)
        found.loose[object_id] = found.sizes[object_id] = stat.size
        if stat.mtime > cutoff:
            found.young.add(object_id)
        if key.startswith("objects/"):  # a large blob's content alone references nothing
            found.refs_of[object_id] = _references(object_id, storage.get(key))
    for pack in sorted(store.packs()):
        entries = [(i, o, n) for i, o, n in store.pack_entries(pack) if i not in live]
        if not entries:
            continue
        young = storage.stat(f"packs/{pack}.pack").mtime > cutoff
        data = storage.get(f"packs/{pack}.pack")
        found.packs[pack] = {i for i, _, _ in entries}
        for object_id, offset, length in entries:
            found.sizes[object_id] = length
            if young:
                found.young.add(object_id)
            found.refs_of[object_id] = _references(object_id, data[offset : offset + length])
    return found


def _references(object_id: ObjectId, data: bytes) -> list[ObjectId]:
    """What an unreachable object references; nothing if it cannot be read (it then
    protects nothing, and is deleted first)."""
    try:
        return references(objects.decode(verify(object_id, data)))
    except CasError:
        return []


def _closure(roots: set[ObjectId], refs_of: dict[ObjectId, list[ObjectId]]) -> set[ObjectId]:
    """``roots`` and every object of ``refs_of`` they reach (the others are live)."""
    kept: set[ObjectId] = set()
    stack = list(roots)
    while stack:
        object_id = stack.pop()
        if object_id in kept or object_id not in refs_of:
            continue
        kept.add(object_id)
        stack.extend(refs_of[object_id])
    return kept


def _delete_referrers_first(
    store: ObjectStore, found: _Unreachable, dead: set[ObjectId], report: GcReport
) -> None:
    """Delete every copy of the ``dead`` objects, each only once every dead object
    reaching it is gone: killed at any instant, gc leaves no tree or commit whose
    contents are not all there.

    A pack drops at once every dead object of it whose dead referrers are gone or
    dropped with it; the others wait in the rewritten pack for a later round.
    """
    referrers: dict[ObjectId, set[ObjectId]] = {i: set() for i in dead}
    for object_id in dead:
        for target in found.refs_of.get(object_id, ()):
            if target in referrers:
                referrers[target].add(object_id)
    copies = dict.fromkeys(dead, 0)
    loose = {i for i in found.loose if i in dead}
    packs = {p: ids & dead for p, ids in found.packs.items() if ids & dead}
    for object_id in loose:
        copies[object_id] += 1
    for ids in packs.values():
        for object_id in ids:
            copies[object_id] += 1
    gone: set[ObjectId] = set()

    def free(object_id: ObjectId) -> bool:
        return all(r in gone for r in referrers[object_id])

    def dropped(object_id: ObjectId) -> None:
        copies[object_id] -= 1
        if not copies[object_id]:
            gone.add(object_id)
            report.objects_deleted += 1
            report.bytes_freed += found.sizes[object_id]

    while loose or packs:
        progress = False
        for object_id in [i for i in loose if free(i)]:
            store.delete_loose(object_id)
            loose.discard(object_id)
            dropped(object_id)
            progress = True
        for pack in sorted(packs):
            drop = _droppable(packs[pack], referrers, gone, copies)
            if not drop:
                continue
            waiting = packs.pop(pack) - drop
            for object_id, new_pack in _rewrite_pack(store, pack, drop, waiting).items():
                packs.setdefault(new_pack, set()).add(object_id)
            report.packs_rewritten += 1
            for object_id in drop:
                dropped(object_id)
            progress = True
        if not progress:  # cannot happen: the first dead object in any order is free
            raise CasError("gc found no object it could delete first; nothing more deleted")


def _droppable(
    ids: set[ObjectId],
    referrers: dict[ObjectId, set[ObjectId]],
    gone: set[ObjectId],
    copies: dict[ObjectId, int],
) -> set[ObjectId]:
    """The largest part of one pack's dead ``ids`` that may go at once: each of them
    referenced only by objects gone or going with it (and kept nowhere else)."""
    drop = set(ids)
    changed = True
    while changed:
        changed = False
        for object_id in list(drop):
            if any(
                r not in gone and (r not in drop or copies[r] > 1) for r in referrers[object_id]
            ):
                drop.discard(object_id)
                changed = True
    return drop


def _rewrite_pack(
    store: ObjectStore, pack: str, drop: set[ObjectId], waiting: set[ObjectId]
) -> dict[ObjectId, str]:
    """Replace ``pack`` by one without ``drop``; the new pack of each ``waiting`` id."""
    keep = {i for i, _, _ in store.pack_entries(pack) if i not in drop}
    with store.writer() as writer:
        if keep:
            for data in store.read_pack_objects(pack, keep):
                writer.add_raw(data, force=True)
    # Index first: readers stop finding the old pack before its bytes go.
    store.storage.delete(f"packs/{pack}.idx")
    store.storage.delete(f"packs/{pack}.pack")
    store.forget_pack(pack)
    return {i: p for i in waiting if (p := store.pack_of(i)) is not None}


def _delete_old_tmp(repo: Repository, cutoff: float) -> int:
    """Temporary files left by writers that died (listings never show ``tmp/``)."""
    deleted = 0
    tmp_dir = repo.storage.local_path("tmp")
    if tmp_dir is None:
        for key in list(repo.storage.list("tmp/")):
            if repo.storage.stat(key).mtime < cutoff:
                repo.storage.delete(key)
                deleted += 1
        return deleted
    try:
        entries = list(os.scandir(tmp_dir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                deleted += 1
        except FileNotFoundError:
            pass  # its writer installed it meanwhile
    return deleted


def _delete_old_lock_refs(repo: Repository) -> int:
    """Lock refs of bucket stores: every taking leaves a tombstone, and a crashed
    locker a stale lock. Without this, every lock taken would be read at every gc."""
    if repo.storage.local_path("locks/gc.lock") is not None:
        return 0  # local stores lock with flock, not refs
    deleted = 0
    for name in list(repo.refs.names(LOCK_PREFIX)):
        written = lock_written(repo.storage, repo.refs, name)
        if written is None:
            continue
        mtime, held = written
        # A held lock goes once it is stale, and has been for a while; a tombstone or
        # nonsense once it is old enough not to be a lock being taken right now.
        age = TMP_MIN_AGE + (stale_after(name) if held else 0)
        if store_time(repo.storage) - mtime <= age:
            continue
        try:
            repo.storage.delete(f"refs/{name}")
        except PermissionError:
            return deleted  # a gc role without delete rights on refs/locks/: keep them
        deleted += 1
    return deleted
