"""Copying the objects one repository lacks from another, and repairing from a copy.

The walk starts at the refs being sent and prunes at every commit or tree the
destination already holds: because every writer publishes objects before the
refs (and trees) that reach them, a tree that is present is complete.

A copy keeps that true even when it is killed half-way: every object it
publishes lands after everything it references. Blobs go first (small ones in
packs, a few large requests; large ones loose, streamed, in parallel), then
trees and commits in dependency order, each pack published before the next
one starts. The destination's objects are all published before any ref moves.

A file stored as chunks (docs/format.md, 4.2) travels as the chunks the
destination lacks (the walk prunes the others, found in its pack indexes), in
packs published every :data:`~cas.chunked.CHUNK_PACK_LIMIT`, so a copy killed
half-way through a huge file resumes from the chunks it sent; its chunk list
goes after them, with the blobs, before any tree.

Every object copied is verified against its id on the way: a corrupt object
raises :class:`~cas.errors.CorruptObjectError` and is never written. A chunk
list is checked against the file's id by reading its chunks where they are
local: on the destination for a fetch (the remote is not trusted), on the
source for a push.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tqdm import tqdm

from cas import ObjectId, ObjectStore, Repository, chunked, objects
from cas.chunklists import ChunkList
from cas.errors import KeyNotFoundError
from cas.objects import BLOB_HEADER_PREFIX, verify
from cas.packs import LOOSE_THRESHOLD, PackWriter
from cas.repair import RepairResult
from cas.repair import repair as repair_from
from cas.walk import reachable

UPLOAD_THREADS = 8


@dataclass
class Transfer:
    objects: int = 0
    bytes: int = 0


def missing(
    src: ObjectStore,
    dst: ObjectStore,
    roots: Iterable[ObjectId],
    released: Collection[ObjectId] = frozenset(),
) -> list[ObjectId]:
    """Ids reachable from ``roots`` in ``src`` that ``dst`` lacks; the tree of a
    ``released`` commit is not asked for (it may be gone)."""
    roots = [r for r in roots if r is not None]
    present = dst.has_many(roots)
    todo = [r for r in roots if r not in present]
    if not todo:
        return []
    dst_ids = set(dst)  # one listing, instead of a request per object
    return [i for i, _ in reachable(src, todo, lambda i, kind: i in dst_ids, released)]


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

    chunk_lists: dict[ObjectId, ChunkList] = {}  # files stored as chunks: after their chunks
    with bar:
        with dst.writer(limit=chunked.CHUNK_PACK_LIMIT) as blobs:
            small: list[ObjectId] = []

            def copy_loose(object_id: ObjectId) -> int:
                return _copy_loose(src, dst, object_id, small, chunk_lists)

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
                    data = src.read_pack(pack)
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
        # Every blob and chunk is published now: the chunk lists, then trees and commits,
        # each after what it reaches.
        checker = dst if dst.storage.capabilities.local else src
        for object_id, chunks in chunk_lists.items():
            chunked.copy_to(checker, object_id, chunks, None)  # verified, not kept
            dst.put_chunk_list(object_id, chunks)
            done.bytes += chunks.encoded_size()
            bar.update(1)
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
            reached = [e.id for e in obj.entries if e.kind in objects.TREE_KINDS]
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
    src: ObjectStore,
    dst: ObjectStore,
    object_id: ObjectId,
    small: list[ObjectId],
    chunk_lists: dict[ObjectId, ChunkList],
) -> int:
    """Stream a large blob across, to be kept as its content alone; a file stored as
    chunks is left in ``chunk_lists``, anything else in ``small`` (size 0)."""
    size = dst.copy_large_blob(src, object_id)
    if size is not None:
        return size
    chunks = src.chunk_list(object_id)
    if chunks is not None:
        chunk_lists[object_id] = chunks  # its chunks travel as blobs
    else:
        small.append(object_id)  # small objects go through the pack writers
    return 0


# ---- repair --------------------------------------------------------------------


def repair(
    repo: Repository,
    remote: str | Repository,
    rounds: int = 100,
    released: Collection[ObjectId] = frozenset(),
) -> RepairResult:
    """Replace every object fsck finds missing or corrupt with a verified copy from
    ``remote`` (a remote's name, or a repository): :func:`cas.repair.repair`."""
    if isinstance(remote, Repository):
        other = remote
    else:
        from .config import open_remote

        other = open_remote(repo, remote)
    return repair_from(repo, other.objects, rounds, released)
