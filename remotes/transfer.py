"""Copying the objects one repository lacks from another.

The walk starts at the refs being sent and prunes at every commit or tree the
destination already holds: because every writer publishes objects before the
refs (and trees) that reach them, a tree that is present is complete.
Small objects travel in packs (a few large requests), large blobs loose and in
parallel; the destination's objects are published before any ref moves.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tqdm import tqdm

from cas import ObjectId, ObjectStore, objects
from cas.errors import PreconditionFailedError
from cas.store import LOOSE_THRESHOLD, loose_key
from cas.walk import reachable

UPLOAD_THREADS = 8


@dataclass
class Transfer:
    objects: int = 0
    bytes: int = 0


def missing(src: ObjectStore, dst: ObjectStore, roots: Iterable[ObjectId]) -> list[ObjectId]:
    """Ids reachable from ``roots`` in ``src`` that ``dst`` lacks."""
    roots = [r for r in roots if r is not None]
    present = dst.has_many(roots)
    todo = [r for r in roots if r not in present]
    if not todo:
        return []
    dst_ids = set(dst)  # one listing, instead of a request per object
    return [i for i, _ in reachable(src, todo, lambda i, kind: i in dst_ids)]


def copy_objects(
    src: ObjectStore, dst: ObjectStore, ids: list[ObjectId], progress: bool = False
) -> Transfer:
    """Copy ``ids`` from ``src`` to ``dst``; every byte is verified on the way."""
    done = Transfer()
    if not ids:
        return done
    src.refresh_packs()
    by_pack: dict[str, set[ObjectId]] = {}
    loose: list[ObjectId] = []
    for object_id in ids:
        pack = src.pack_of(object_id)
        if pack is None:
            loose.append(object_id)
        else:
            by_pack.setdefault(pack, set()).add(object_id)
    bar = tqdm(
        total=len(ids),
        unit="obj",
        desc="objects",
        disable=not (progress and sys.stderr.isatty()),
        file=sys.stderr,
    )
    with bar, dst.writer() as writer:
        for pack, wanted in by_pack.items():
            for data in src.read_pack_objects(pack, wanted):
                writer.add_raw(data)
                done.bytes += len(data)
                bar.update(1)
        small: list[ObjectId] = []

        def copy_loose(object_id: ObjectId) -> int:
            return _copy_loose(src, dst, object_id, small)

        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            for size in pool.map(copy_loose, loose):
                done.bytes += size
                bar.update(1)
        for object_id in small:  # small loose objects join the pack
            writer.add_raw(src.get_raw(object_id))
    done.objects = len(ids)
    return done


def _copy_loose(
    src: ObjectStore, dst: ObjectStore, object_id: ObjectId, small: list[ObjectId]
) -> int:
    key = loose_key(object_id)
    size = src.storage.stat(key).size
    head = src.storage.get(key, 0, objects.MAX_HEADER)
    kind, _, offset = objects.decode_header(head)
    if size < LOOSE_THRESHOLD or kind != "blob":
        small.append(object_id)  # small objects (and big trees) go through the pack writer
        return size
    tmp = dst.storage.tempfile()
    try:
        with open(tmp, "wb") as out:
            out.write(head[:offset])
            src.copy_blob_to(object_id, out)  # verifies while it streams
        dst.storage.move_in(key, tmp, mode="create")
    except PreconditionFailedError:
        pass  # someone else published the same object meanwhile
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return size
