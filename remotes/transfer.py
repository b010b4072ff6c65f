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

import itertools
import sys
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cas import ObjectId, ObjectStore, Repository, chunked, objects
from cas.chunklists import ChunkList
from cas.errors import KeyNotFoundError
from cas.objects import BLOB_HEADER_PREFIX
from cas.packs import LOOSE_THRESHOLD, PACK_MAGIC, PackWriter
from cas.repair import RepairResult
from cas.repair import repair as repair_from
from cas.store import Located
from cas.threads import worker_pool
from cas.walk import dependencies_first

if TYPE_CHECKING:
    from tqdm import tqdm

UPLOAD_THREADS = 8
BATCH = 50_000  # ids located, read and published together: what a copy holds at most
ADOPT_LIMIT = chunked.CHUNK_PACK_LIMIT  # a pack read whole, to be published as it is


@dataclass
class Transfer:
    objects: int = 0
    bytes: int = 0


def missing(
    src: ObjectStore,
    dst: ObjectStore,
    roots: Iterable[ObjectId],
    released: Collection[ObjectId] = frozenset(),
) -> Iterator[ObjectId]:
    """Ids reachable from ``roots`` in ``src`` that ``dst`` lacks, each after all it
    reaches, walked as they are taken; the tree of a ``released`` commit is not asked
    for (it may be gone). A blob reached twice may come twice."""
    roots = [r for r in roots if r is not None]
    present = dst.has_many(roots)
    todo = [r for r in roots if r not in present]
    if not todo:
        return
    held = dst.presence()  # as it was before this copy: it adds packs as it goes
    for object_id, _ in dependencies_first(src, todo, lambda i, kind: held(i), released):
        yield object_id


def copy_objects(
    src: ObjectStore, dst: ObjectStore, ids: Iterable[ObjectId], progress: bool = False
) -> Transfer:
    """Copy ``ids`` from ``src`` to ``dst`` a batch at a time; every byte is verified on
    the way.

    ``ids`` come each after everything it reaches (as :func:`missing` gives them), so a
    batch reaches only itself and earlier ones. In a batch, blobs are published first,
    then trees and commits, each after everything it references: killed at any point,
    the copy leaves ``dst`` holding no tree or commit whose contents are not all there.
    """
    from tqdm import tqdm  # here: most commands never show a bar, and it costs 10 ms

    done = Transfer()
    src.refresh_packs()  # so that a batch finds its objects in packs known now
    bar = tqdm(
        unit="obj",
        desc="objects",
        disable=not (progress and sys.stderr.isatty()),
        file=sys.stderr,
    )
    with bar:
        batch: dict[ObjectId, None] = {}  # in order, once each
        for object_id in ids:
            batch[object_id] = None
            if len(batch) >= BATCH:
                _copy_batch(src, dst, list(batch), done, bar)
                batch.clear()
        if batch:
            _copy_batch(src, dst, list(batch), done, bar)
    return done


def _copy_batch(
    src: ObjectStore, dst: ObjectStore, ids: list[ObjectId], done: Transfer, bar: tqdm
) -> None:
    located = src.locate_packed(ids)
    packed = {object_id for object_id, *_ in located}
    loose = [object_id for object_id in ids if object_id not in packed]
    del packed
    later: dict[ObjectId, bytes] = {}  # trees and commits: they go after the blobs

    def take(data: bytes, blobs: PackWriter) -> None:
        if objects.decode_header(data)[0] == "blob":
            blobs.add_raw(data, force=True)  # missing from dst: no need to search its packs
        else:
            later[objects.object_id(data)] = data
        done.bytes += len(data)
        bar.update(1)

    chunk_lists: dict[ObjectId, ChunkList] = {}  # files stored as chunks: after their chunks
    with dst.writer(limit=chunked.CHUNK_PACK_LIMIT) as blobs:
        small: list[ObjectId] = []

        def copy_loose(object_id: ObjectId) -> int:
            return _copy_loose(src, dst, object_id, small, chunk_lists)

        with worker_pool(UPLOAD_THREADS) as pool:
            for size in pool.map(copy_loose, loose):
                if size:
                    done.bytes += size
                    bar.update(1)
            # Small loose objects (and big non-blobs) join the rest, read verified.
            for data in pool.map(src.get_raw, small):
                take(data, blobs)
        for pack, held in itertools.groupby(located, key=lambda item: item[1]):
            spans = list(held)
            if not _adopted(src, dst, pack, spans):
                for _, data in src.read_packed(spans):  # in spans, never a whole pack
                    take(data, blobs)
                continue
            done.bytes += spans[-1][2] + spans[-1][3]
            bar.update(len(spans))
    # Every blob and chunk of the batch is published now: the chunk lists, then trees
    # and commits, each after what it reaches.
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
    done.objects += len(ids)


def _adopted(src: ObjectStore, dst: ObjectStore, pack: str, wanted: list[Located]) -> bool:
    """Publish a pack in ``dst`` as it is, when every object of it is ``wanted`` (a
    clone's usual case), it is no bigger than :data:`ADOPT_LIMIT` and holds blobs only:
    a blob references nothing, so it can be published at any time."""
    size = len(PACK_MAGIC)
    for _, _, offset, length in wanted:  # sorted by offset: back to back from the start?
        if offset != size:
            return False
        size += length
    if size > ADOPT_LIMIT:
        return False
    try:
        if len(src.pack_entries(pack)) != len(wanted):
            return False
        data = src.read_pack(pack)
    except KeyNotFoundError:
        return False  # a gc repacked it since we looked: read each from where it is now
    if len(data) != size or not all(
        data.startswith(BLOB_HEADER_PREFIX, offset) for _, _, offset, _ in wanted
    ):
        return False
    dst.adopt_pack(data, [(object_id, offset, length) for object_id, _, offset, length in wanted])
    return True


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
