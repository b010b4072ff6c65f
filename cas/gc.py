"""Garbage collection: delete what no ref reaches, once it is old enough.

gc holds the store's exclusive lock (see :mod:`cas.locks`), so no writer is
between storing objects and publishing the refs that reach them. An object
is deleted only if no ref reaches it *and* it is older than the grace
period (by its modification time, as the backend reports it). Packs holding
any garbage are rewritten with only their live objects; the new pack is
published before the old one goes.

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
from dataclasses import dataclass

from .errors import CasError
from .locks import LOCK_PREFIX, STALE_SECONDS, lock_renewed
from .repo import Repository
from .walk import reachable

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


def gc(
    repo: Repository, grace_seconds: float = DEFAULT_GRACE_SECONDS, wait: float | None = 60.0
) -> GcReport:
    report = GcReport()
    store, storage = repo.objects, repo.storage
    with repo.exclusive(wait):
        # A lock ref's blob may be gone (stored before its ref was set, it looked like
        # garbage to a gc running then): it reaches nothing, and must not stop the walk.
        roots = [
            target
            for name, target in repo.refs.list("").items()
            if not name.startswith(LOCK_PREFIX) or store.has(target)
        ]
        live = {object_id for object_id, _ in reachable(store, roots)}
        report.reachable = len(live)
        cutoff = time.time() - grace_seconds
        for object_id in list(store.iter_loose()):
            if object_id in live:
                continue
            key = store.loose_location(object_id)
            if key is None:
                continue  # gone since the listing
            stat = storage.stat(key)
            if stat.mtime > cutoff:
                report.kept_for_grace += 1
                continue
            store.delete_loose(object_id)
            report.objects_deleted += 1
            report.bytes_freed += stat.size
        for pack in sorted(store.packs()):
            entries = store.pack_entries(pack)
            dead = [(i, n) for i, _, n in entries if i not in live]
            if not dead:
                continue
            if storage.stat(f"packs/{pack}.pack").mtime > cutoff:
                report.kept_for_grace += len(dead)
                continue
            keep = {i for i, _, _ in entries if i in live}
            with store.writer() as writer:
                if keep:
                    for data in store.read_pack_objects(pack, keep):
                        writer.add_raw(data, force=True)
            # Index first: readers stop finding the old pack before its bytes go.
            storage.delete(f"packs/{pack}.idx")
            storage.delete(f"packs/{pack}.pack")
            store.forget_pack(pack)
            report.packs_rewritten += 1
            report.objects_deleted += len(dead)
            report.bytes_freed += sum(n for _, n in dead)
        report.tmp_deleted = _delete_old_tmp(repo, time.time() - max(grace_seconds, TMP_MIN_AGE))
        report.lock_refs_deleted = _delete_old_lock_refs(repo, time.time() - TMP_MIN_AGE)
    return report


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


def _delete_old_lock_refs(repo: Repository, cutoff: float) -> int:
    """Lock refs of bucket stores: every taking leaves a tombstone, and a crashed
    writer a stale lock. Without this, every lock taken would be read at every gc."""
    if repo.storage.local_path("locks/gc.lock") is not None:
        return 0  # local stores lock with flock, not refs
    deleted = 0
    for name in list(repo.refs.names(LOCK_PREFIX)):
        key = f"refs/{name}"
        try:
            target = repo.refs.read(name)
            if target is None:
                old = repo.storage.stat(key).mtime < cutoff
            else:
                started = lock_renewed(repo.storage, repo.objects, name, target)
                old = time.time() - started > STALE_SECONDS + TMP_MIN_AGE
        except CasError:
            continue
        if old:
            try:
                repo.storage.delete(key)
            except PermissionError:
                return deleted  # a gc role without delete rights on refs/locks/: keep them
            deleted += 1
    return deleted
