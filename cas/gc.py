"""Garbage collection without locks: fossil collection in two steps.

Writers never wait for gc and gc never waits for them (:mod:`cas.lease`).
Each run, in this order:

1. reads the store's clock: the modification time the bucket stamps on a
   marker gc writes (``fossils/clock``), never a time a client wrote;
2. lists the refs and walks what they reach (through the fossils too), then
   lists every object and every fossil with its modification time;
3. **second step**, for fossils older than ``2 L`` (``L`` the store's lease):
   one reachable from a ref, from a present object or from a younger fossil
   is restored (children first); any other is deleted for good;
4. **first step**: present objects that no ref reaches, older than the grace
   period and reached by no present object that stays are moved to the
   fossils (copied there, then the original deleted; referrers before what
   they reach), where no writer's "already stored?" finds them any more. A
   pack holding some is rewritten: what stays to a new pack, what goes to a
   fossil pack, then the old pack is deleted.

**If a present tree or commit, everything it reaches is present or a fossil
that gc keeps** (but a released commit's tree: ``released`` below): objects
are moved referrers first and restored children first, and a fossil a
present object reaches is never deleted. Killed at any
instant, gc leaves only fossils, copies of objects still present (dropped by
a later run) and rewritten packs: nothing anyone waits for. Why no writer
ever publishes a ref to a deleted object is docs/reliability.md's argument.

A commit in ``released`` (the caller's layer deleted its version) is walked
like any other but its tree is not: the tree then goes like an object whose
only ref was deleted. Temporary files older than :data:`TMP_MIN_AGE` and lock
refs left under ``refs/locks/`` by older versions are deleted.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from . import keys
from .errors import CasError, KeyNotFoundError, ObjectNotFoundError
from .fossils import restore
from .inventory import Inventory, take_inventory
from .objects import ObjectId
from .pacing import Pace
from .refs import LEGACY_LOCKS
from .repo import Repository
from .store import ObjectStore
from .walk import reachable

DEFAULT_GRACE_SECONDS = 24 * 3600
TMP_MIN_AGE = 3600  # temporary files younger than this are never touched
# Buckets keep modification times to the second: there, ages are judged this much safer.
BUCKET_CLOCK_RESOLUTION = 1.0


@dataclass
class GcReport:
    reachable: int = 0
    objects_fossilized: int = 0  # moved aside this run (first step)
    objects_restored: int = 0  # fossils brought back: something reaches them again
    objects_deleted: int = 0  # fossils deleted for good (second step)
    bytes_freed: int = 0
    fossils_waiting: int = 0  # fossils too young to delete yet: the next pass decides
    kept_for_grace: int = 0  # unreachable objects kept: younger than the grace period
    packs_rewritten: int = 0
    tmp_deleted: int = 0
    lock_refs_deleted: int = 0
    unreadable_refs: list[str] = field(default_factory=list)
    dry_run: bool = False


class _Clock:
    """The store's time: the modification time it stamped on a marker we just wrote,
    advanced by this machine's monotonic clock since. Unstamped (a dry run, which only
    reads: the store may be read-only), this machine's time."""

    def __init__(self, store: ObjectStore, stamped: bool = True) -> None:
        self.resolution = 0.0 if store.storage.capabilities.local else BUCKET_CLOCK_RESOLUTION
        if stamped:
            store.storage.put(keys.GC_CLOCK_KEY, b"")
        self._at = time.monotonic()
        self._base = store.storage.stat(keys.GC_CLOCK_KEY).mtime if stamped else time.time()

    def now(self) -> float:
        return self._base + time.monotonic() - self._at


class _TooSlow(Exception):
    """gc itself went on too long between copying an object aside and deleting it."""


def gc(
    repo: Repository,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
    released: Collection[ObjectId] = frozenset(),
    cpu_share: float | None = None,
) -> GcReport:
    """``cpu_share``: keep gc busy at most this share of the time (cas.pacing), for a
    gc run beside writers on a small machine; None runs it at full speed."""
    report = GcReport(dry_run=dry_run)
    pace = Pace(cpu_share)
    store = repo.objects
    fossils = store.fossils
    assert fossils is not None
    lease = repo.lease_seconds()
    clock = _Clock(store, stamped=not dry_run)
    now, margin = clock.now(), clock.resolution
    roots = _roots(repo, report)
    live = set()
    for object_id, _ in reachable(store, roots, released=released):
        live.add(object_id)
        pace()
    report.reachable = len(live)
    present = take_inventory(store, live, pace)
    fossil = take_inventory(fossils, set(), pace)
    in_store = store.has_many(fossil.sizes)

    # Second step: old fossils leave the fossil area, restored if anything reaches them.
    old = {i for i, m in fossil.mtimes.items() if now - m > 2 * lease + margin}
    protectors = set(present.sizes) | (set(fossil.sizes) - old)
    kept = live | _closure(protectors, {**fossil.refs_of, **present.refs_of})
    to_restore = (old & kept) - in_store
    to_delete = old - kept - in_store
    report.fossils_waiting = len(fossil.sizes) - len(old)
    report.objects_restored = len(to_restore)
    report.objects_deleted = len(to_delete)
    report.bytes_freed = sum(fossil.sizes[i] for i in to_delete)

    # First step: what no ref reaches, older than the grace, reached by nothing kept.
    young = {i for i, m in present.mtimes.items() if now - m <= grace_seconds + margin}
    stays = _closure(young, present.refs_of)
    report.kept_for_grace = len(stays)
    dead = set(present.sizes) - stays
    if dry_run:
        report.objects_fossilized = len(dead)
        return report

    if to_restore:
        restore(store, to_restore)
    _drop_fossils(fossils, fossil, old)
    try:
        _move_referrers_first(store, present, dead, report, clock, lease, pace)
    except _TooSlow:
        warnings.warn("gc went on too long to move more objects aside; run it again", stacklevel=2)
    report.tmp_deleted = _delete_old_tmp(repo, now - max(grace_seconds, TMP_MIN_AGE))
    report.lock_refs_deleted = _delete_lock_refs(repo)
    return report


def _roots(repo: Repository, report: GcReport) -> list[ObjectId]:
    """Every ref's target. A ref that cannot be read cannot be followed: it is named in
    the report and a warning, and what only it reached goes the way of all garbage,
    through the fossils (writing the ref back before they are deleted saves it)."""
    roots = []
    for name in sorted(repo.refs.names("")):
        if name.startswith(LEGACY_LOCKS):
            continue  # older versions' locks: no data, and anyone may write there
        try:
            target = repo.refs.read(name)
        except CasError:
            report.unreadable_refs.append(name)
            continue
        if target is not None:
            roots.append(target)
    if report.unreadable_refs:
        warnings.warn(
            f"gc: {len(report.unreadable_refs)} unreadable ref(s) not followed, first "
            f"{report.unreadable_refs[0]!r}",
            stacklevel=3,
        )
    return roots


def _closure(roots: Iterable[ObjectId], refs_of: dict[ObjectId, list[ObjectId]]) -> set[ObjectId]:
    """``roots`` and every object of ``refs_of`` they reach."""
    kept: set[ObjectId] = set()
    stack = list(roots)
    while stack:
        object_id = stack.pop()
        if object_id in kept or object_id not in refs_of:
            continue
        kept.add(object_id)
        stack.extend(refs_of[object_id])
    return kept


def _drop_fossils(fossils: ObjectStore, found: Inventory, old: set[ObjectId]) -> None:
    """Delete the old fossils' copies (restored ones are present by now). A fossil pack
    is as old as its file: all of it goes at once."""
    for object_id in old & set(found.loose):
        fossils.delete_loose(object_id)
    fossils.delete_packs(pack for pack, ids in found.packs.items() if ids <= old)


def _move_referrers_first(
    store: ObjectStore,
    found: Inventory,
    dead: set[ObjectId],
    report: GcReport,
    clock: _Clock,
    lease: float,
    pace: Pace,
) -> None:
    """Move every copy of the ``dead`` objects to the fossils, each only once every dead
    object reaching it has moved: killed at any instant, gc leaves no present tree or
    commit whose contents are not all present.

    A pack moves at once every dead object of it whose dead referrers have moved or
    move with it; the others wait in the rewritten pack for a later round.
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

    def moved(object_id: ObjectId) -> None:
        copies[object_id] -= 1
        if not copies[object_id]:
            gone.add(object_id)
            report.objects_fossilized += 1

    while loose or packs:
        progress = False
        for object_id in [i for i in loose if free(i)]:
            pace()  # between moves, never between a copy and its delete
            _move_loose(store, object_id, lease)
            loose.discard(object_id)
            moved(object_id)
            progress = True
        for pack in sorted(packs):
            pace()
            drop = _droppable(packs[pack], referrers, gone, copies)
            if not drop:
                continue
            waiting = packs.pop(pack) - drop
            for object_id, new_pack in _rewrite_pack(store, pack, drop, waiting, clock, lease):
                packs.setdefault(new_pack, set()).add(object_id)
            report.packs_rewritten += 1
            for object_id in drop:
                moved(object_id)
            progress = True
        if not progress:  # cannot happen: the first dead object in any order is free
            raise CasError("gc found no object it could move first; nothing more moved")


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


def _move_loose(store: ObjectStore, object_id: ObjectId, lease: float) -> None:
    """Copy a loose object to the fossils (overwriting: the copy's time is now), then
    delete it, unless gc took longer than half a lease in between."""
    fossils = store.fossils
    assert fossils is not None
    started = time.monotonic()
    key = store.loose_location(object_id)
    if key is None:
        return  # gone already
    try:
        if key == keys.content_key(object_id):
            tmp = store.storage.tempfile()
            try:
                with fossils.storage.full_disk_named(), open(tmp, "wb") as out:
                    store.copy_blob_to(object_id, out)
                fossils.storage.move_in(key, tmp)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            fossils.storage.put(key, store.storage.get(key))
    except (KeyNotFoundError, ObjectNotFoundError):
        return  # another gc moved it meanwhile
    if time.monotonic() - started > lease / 2:
        raise _TooSlow
    store.delete_loose(object_id)


def _rewrite_pack(
    store: ObjectStore,
    pack: str,
    drop: set[ObjectId],
    waiting: set[ObjectId],
    clock: _Clock,
    lease: float,
) -> list[tuple[ObjectId, str]]:
    """Replace ``pack`` by one without ``drop``, which go to a fossil pack; the new pack
    of each ``waiting`` id."""
    fossils = store.fossils
    assert fossils is not None
    keep = {i for i, _, _ in store.pack_entries(pack) if i not in drop}
    with store.writer() as writer:
        for data in store.read_pack_objects(pack, keep):
            writer.add_raw(data, force=True)
    with fossils.writer() as writer:
        for data in store.read_pack_objects(pack, drop):
            writer.add_raw(data, force=True)
        fossil_pack = writer.flush()
    # The fossil's age must count from about now: an identical fossil pack published
    # long ago (by a gc killed before it deleted this pack) keeps its older time.
    if fossil_pack is not None:
        written = fossils.storage.stat(keys.pack_key(fossil_pack)).mtime
        if clock.now() - written > lease / 2 + clock.resolution:
            raise _TooSlow
    # Index first: readers stop finding the old pack before its bytes go.
    store.delete_packs([pack])
    return [(i, p) for i in waiting if (p := store.pack_of(i)) is not None]


def _delete_old_tmp(repo: Repository, cutoff: float) -> int:
    """Temporary files left by writers that died (listings never show ``tmp/``)."""
    deleted = 0
    tmp_dir = repo.storage.local_path(keys.TMP_DIR)
    if tmp_dir is None:
        for key in list(repo.storage.list(keys.TMP_PREFIX)):
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


def _delete_lock_refs(repo: Repository) -> int:
    """Lock refs of older versions (writers and gc no longer lock): whatever they hold,
    they mean nothing now."""
    deleted = 0
    for name in list(repo.refs.names(LEGACY_LOCKS)):
        try:
            repo.storage.delete(keys.ref_key(name))
        except PermissionError:
            return deleted  # a gc role without delete rights on refs/locks/: keep them
        deleted += 1
    return deleted
