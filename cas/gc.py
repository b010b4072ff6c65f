"""Garbage collection: delete what no ref reaches, once it is old enough.

gc holds the store's exclusive lock (see :mod:`cas.locks`), so no writer is
between storing objects and publishing the refs that reach them. An object
is deleted only if no ref reaches it *and* it is older than the grace
period, so objects written by a writer that died before publishing stay
until the grace period ends. Packs holding any garbage are rewritten with
only their live objects; the new pack is published before the old one goes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .repo import Repository
from .store import loose_key
from .walk import reachable

DEFAULT_GRACE_SECONDS = 24 * 3600


@dataclass
class GcReport:
    reachable: int = 0
    objects_deleted: int = 0
    bytes_freed: int = 0
    packs_rewritten: int = 0
    kept_for_grace: int = 0


def gc(
    repo: Repository, grace_seconds: float = DEFAULT_GRACE_SECONDS, wait: float | None = 60.0
) -> GcReport:
    report = GcReport()
    store, storage = repo.objects, repo.storage
    with repo.exclusive(wait):
        roots = list(repo.refs.list("").values())
        live = {object_id for object_id, _ in reachable(store, roots)}
        report.reachable = len(live)
        cutoff = time.time() - grace_seconds
        for object_id in list(store.iter_loose()):
            if object_id in live:
                continue
            stat = storage.stat(loose_key(object_id))
            if stat.mtime > cutoff:
                report.kept_for_grace += 1
                continue
            storage.delete(loose_key(object_id))
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
        for key in list(storage.list("tmp/")):
            if storage.stat(key).mtime < cutoff:  # left by writers that died
                storage.delete(key)
    return report
