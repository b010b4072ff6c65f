"""Copying the objects one repository lacks from another, and repairing from a copy.

The walk starts at the refs being sent and prunes at every commit or tree the
destination already holds: because every writer publishes objects before the
refs (and trees) that reach them, a tree that is present is complete.

A copy keeps that true even when it is killed half-way: every object it
publishes lands after everything it references. Blobs go first (small ones in
packs, a few large requests; large ones loose, streamed, in parallel), then
trees and commits in dependency order, each pack published before the next
one starts. The destination's objects are all published before any ref moves.

Every object copied is verified against its id on the way: a corrupt object
raises :class:`~cas.errors.CorruptObjectError` and is never written.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

import blake3
from tqdm import tqdm

from cas import ObjectId, ObjectStore, Repository, objects
from cas.errors import (
    CorruptObjectError,
    InvalidObjectError,
    KeyNotFoundError,
    NotFoundError,
    PreconditionFailedError,
)
from cas.fsck import FsckReport, fsck
from cas.objects import BLOB_HEADER_PREFIX
from cas.store import LOOSE_THRESHOLD, PACK_MAGIC, PackWriter, content_key, loose_key, verify
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
    """Copy ``ids`` from ``src`` to ``dst``; every byte is verified on the way.

    Blobs are published first, then trees and commits, each after everything it
    references: killed at any point, the copy leaves ``dst`` holding no tree or
    commit whose contents are not all there too.
    """
    done = Transfer()
    if not ids:
        return done
    src.refresh_packs()
    by_pack: dict[str, set[ObjectId]] = {}
    for object_id, pack, _, _ in src.locate_packed(ids):
        by_pack.setdefault(pack, set()).add(object_id)
    packed = set().union(*by_pack.values())
    loose = [object_id for object_id in ids if object_id not in packed]
    bar = tqdm(
        total=len(ids),
        unit="obj",
        desc="objects",
        disable=not (progress and sys.stderr.isatty()),
        file=sys.stderr,
    )
    later: dict[ObjectId, bytes] = {}  # trees and commits: they go after the blobs

    def take(object_id: ObjectId, data: bytes, blobs: PackWriter) -> None:
        if objects.decode_header(data)[0] == "blob":
            blobs.add_raw(data)
        else:
            later[object_id] = data
        done.bytes += len(data)
        bar.update(1)

    with bar:
        with dst.writer() as blobs:
            small: list[ObjectId] = []

            def copy_loose(object_id: ObjectId) -> int:
                return _copy_loose(src, dst, object_id, small)

            with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
                for size in pool.map(copy_loose, loose):
                    if size:
                        done.bytes += size
                        bar.update(1)
                # Small loose objects (and big non-blobs) join the rest, read verified.
                for object_id, data in zip(small, pool.map(src.get_raw, small), strict=True):
                    take(object_id, data, blobs)
            for pack, wanted in by_pack.items():
                try:
                    data = src.storage.get(f"packs/{pack}.pack")
                except KeyNotFoundError:
                    # A gc repacked it since we looked (a fetch does not lock the remote);
                    # it published the live objects elsewhere first: read each from there.
                    src.forget_pack(pack)
                    for object_id in wanted:
                        take(object_id, src.get_raw(object_id), blobs)
                    continue
                entries = src.pack_entries(pack)
                if _blobs_only(data, entries) and len(entries) == len(wanted):
                    dst.adopt_pack(data, entries)  # a clone's usual case: as it is
                    done.bytes += len(data)
                    bar.update(len(entries))
                    continue
                for object_id, offset, length in entries:
                    if object_id in wanted:
                        take(object_id, verify(object_id, data[offset : offset + length]), blobs)
        # Every blob is published now. Trees and commits follow, each after what it reaches.
        with dst.writer() as writer:
            for object_id in dependency_order(later):
                data = later[object_id]
                if len(data) >= LOOSE_THRESHOLD:
                    writer.flush()  # it is published loose at once: what it reaches goes first
                writer.add_raw(data)
    done.objects = len(ids)
    return done


def _blobs_only(data: bytes, entries: list[tuple[ObjectId, int, int]]) -> bool:
    """Does the pack hold blobs only? Then it can be published whole at any time:
    a blob references nothing, while a tree must wait for what it reaches."""
    return all(data.startswith(BLOB_HEADER_PREFIX, offset) for _, offset, _ in entries)


def dependency_order(found: dict[ObjectId, bytes]) -> list[ObjectId]:
    """The ids of ``found`` (trees and commits) ordered so each comes after all it reaches.

    Only references inside ``found`` count: everything else is published already.
    """
    deps: dict[ObjectId, list[ObjectId]] = {}
    for object_id, data in found.items():
        obj = objects.decode(data)
        if isinstance(obj, objects.Commit):
            reached = [obj.tree, *obj.parents]
        elif isinstance(obj, objects.Tree):
            reached = [e.id for e in obj.entries if e.kind == "tree"]
        else:
            reached = []
        deps[object_id] = [r for r in reached if r in found]
    order: list[ObjectId] = []
    placed: set[ObjectId] = set()
    for root in found:
        if root in placed:
            continue
        placed.add(root)
        stack = [(root, iter(deps[root]))]
        while stack:  # iterative post-order: a deep history cannot exhaust the stack
            node, pending = stack[-1]
            for dep in pending:
                if dep not in placed:
                    placed.add(dep)
                    stack.append((dep, iter(deps[dep])))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def _copy_loose(
    src: ObjectStore, dst: ObjectStore, object_id: ObjectId, small: list[ObjectId]
) -> int:
    """Stream a large blob across, to be kept as its content alone; anything else is
    left in ``small`` (size 0)."""
    key = src.loose_location(object_id)
    if key is None:
        small.append(object_id)  # packed since we looked, or missing: get_raw says which
        return 0
    if key == loose_key(object_id) and not _is_big_blob(src, key):
        small.append(object_id)  # small objects go through the pack writers
        return 0
    source = src.storage.local_path(key) if key == content_key(object_id) else None
    if source is not None and dst.storage.capabilities.local:
        # Between two local stores the kernel copies, and the copy is checked.
        return dst.put_blob_file(source, hash_threads=1, expect=object_id)[1]
    tmp = dst.storage.tempfile()
    try:
        with open(tmp, "wb") as out:
            size = src.copy_blob_to(object_id, out)  # verifies while it streams
        dst.storage.move_in(content_key(object_id), tmp, mode="create")
    except PreconditionFailedError:
        pass  # someone else published the same object meanwhile
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return size


def _is_big_blob(src: ObjectStore, key: str) -> bool:
    """Whether the whole object bytes under ``key`` are a blob worth streaming."""
    if src.storage.stat(key).size < LOOSE_THRESHOLD:
        return False
    try:
        return objects.decode_header(src.storage.get(key, 0, objects.MAX_HEADER))[0] == "blob"
    except InvalidObjectError:
        return False  # a damaged header: the verified read of `small` says whether it is corrupt


# ---- repair --------------------------------------------------------------------


@dataclass
class RepairResult:
    repaired: list[str] = field(default_factory=list)  # hex ids written back, verified
    packs_rewritten: list[str] = field(default_factory=list)  # pack names restored whole
    unrepaired: list[str] = field(default_factory=list)  # still missing or corrupt
    report: FsckReport = field(default_factory=FsckReport)  # fsck after the repair

    @property
    def ok(self) -> bool:
        return self.report.ok


def repair(repo: Repository, remote: str | Repository, rounds: int = 100) -> RepairResult:
    """Replace every object fsck finds missing or corrupt with a verified copy from ``remote``.

    Objects are named by their content, so the remote's copy of an id is the
    same bytes. A loose object is rewritten in place. A packed object is
    restored by rewriting its whole pack: its intact objects, the good copies of
    the damaged ones, checked against the pack's name (the hash of its bytes)
    before it replaces the damaged file. A missing object is written loose, in
    the form new objects take.

    fsck stops below a damaged tree, so the repair runs fsck again until it
    finds nothing new to fix. Objects the remote lacks stay in ``unrepaired``.
    """
    if isinstance(remote, Repository):
        other = remote
    else:
        from .config import open_remote

        other = open_remote(repo, remote)
    result = RepairResult()
    tried: set[ObjectId] = set()
    with repo.writing():
        for _ in range(rounds):
            result.report = fsck(repo)
            bad = [
                bytes.fromhex(p.object_id)
                for p in result.report.problems
                if p.problem in ("missing", "corrupt")
            ]
            todo = [i for i in dict.fromkeys(bad) if i not in tried]
            if not todo:
                break
            tried.update(todo)
            _repair_objects(repo.objects, other.objects, todo, result)
    result.unrepaired = sorted(
        {p.object_id for p in result.report.problems if p.problem in ("missing", "corrupt")}
    )
    return result


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
            # The pack cannot be rebuilt (the remote lacks an object it holds): put what
            # we can loose. Reads still prefer the pack's copy, so fsck will say so.
            for object_id in bad:
                _rewrite_loose(store, source, object_id, result)


def _rewrite_loose(
    store: ObjectStore, source: ObjectStore, object_id: ObjectId, result: RepairResult
) -> None:
    tmp = store.storage.tempfile()
    try:
        with open(tmp, "wb") as out:
            try:
                key = read_loose_form(source, object_id, out)
            except (NotFoundError, CorruptObjectError):
                return  # the remote lacks it too, or its copy is damaged as well
        store.storage.move_in(key, tmp, mode="overwrite")
        # A damaged copy in the other form would still be read: drop it.
        other = loose_key(object_id) if key == content_key(object_id) else content_key(object_id)
        store.storage.delete(other)
        result.repaired.append(object_id.hex())
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _rewrite_pack(
    store: ObjectStore, source: ObjectStore, pack: str, bad: set[ObjectId], result: RepairResult
) -> bool:
    """Restore ``packs/<pack>.pack`` byte for byte; False if it cannot be done."""
    key = f"packs/{pack}.pack"
    entries = sorted(store.pack_entries(pack), key=lambda e: e[1])
    try:
        current = store.storage.get(key)
    except KeyNotFoundError:
        current = b""
    tmp = store.storage.tempfile()
    hasher = blake3.blake3()
    fixed = []
    try:
        with open(tmp, "wb") as out:
            out.write(PACK_MAGIC)
            hasher.update(PACK_MAGIC)
            position = len(PACK_MAGIC)
            for object_id, offset, length in entries:
                if offset != position:
                    return False  # not back to back: we cannot rebuild what lay between
                data = current[offset : offset + length]
                if object_id in bad or objects.object_id(data) != object_id:
                    try:
                        data = source.get_raw(object_id)  # packed objects are small
                    except (NotFoundError, CorruptObjectError):
                        return False
                    fixed.append(object_id.hex())
                if len(data) != length:
                    return False
                out.write(data)
                hasher.update(data)
                position += length
        if hasher.hexdigest() != pack:
            return False  # bytes the index does not describe: not ours to guess
        store.storage.move_in(key, tmp, mode="overwrite")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    result.packs_rewritten.append(pack)
    result.repaired.extend(fixed)
    return True


def read_loose_form(src: ObjectStore, object_id: ObjectId, out: BinaryIO) -> str:
    """Write ``object_id`` to ``out`` as a store keeps it loose, verified; returns the
    key of that form: a large blob's content alone, anything else its whole bytes.

    A large blob stored that way streams. On an error the caller must discard ``out``.
    """
    if src.pack_of(object_id) is None and src.loose_location(object_id) == content_key(object_id):
        src.copy_blob_to(object_id, out)
        return content_key(object_id)
    data = src.get_raw(object_id)
    kind, payload = objects.split(data)
    if kind == "blob" and len(data) >= LOOSE_THRESHOLD:
        out.write(payload)
        return content_key(object_id)
    out.write(data)
    return loose_key(object_id)
