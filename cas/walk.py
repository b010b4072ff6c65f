"""Walking the object graph: commits reach parents and trees, trees reach entries, and a
large blob stored as chunks reaches its chunks (docs/format.md, 4.2)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator

from . import objects
from .objects import TREE_KINDS, ObjectId
from .packs import LOOSE_THRESHOLD
from .store import ObjectStore

_LARGE = "large blob"  # a blob big enough to be stored as chunks: its chunks are walked too


def reachable(
    store: ObjectStore,
    roots: Iterable[ObjectId],
    skip: Callable[[ObjectId, str], bool] = lambda object_id, kind: False,
    released: Collection[ObjectId] = frozenset(),
) -> Iterator[tuple[ObjectId, str]]:
    """Yield (id, kind) of every object reachable from ``roots``, each once.

    ``skip(id, kind)`` returning True prunes the walk below that object (and
    omits it): a push skips trees the remote already has, because objects are
    always published before anything that refers to them.
    A ``released`` commit is yielded and its parents followed, never its tree:
    the caller's layer deleted what it held (its tree may be gone).
    Blobs are yielded without being read; a large one stored as chunks is followed
    by its chunks (blobs too), so what reaches it reaches them.
    """
    seen: set[ObjectId] = set()
    stack: list[tuple[ObjectId, str | None]] = [(r, None) for r in roots]
    while stack:
        object_id, kind = stack.pop()
        if object_id in seen:
            continue
        seen.add(object_id)
        if kind in ("blob", _LARGE):
            if skip(object_id, "blob"):
                continue
            yield object_id, "blob"
            chunks = store.chunk_list(object_id) if kind == _LARGE else None
            if chunks is not None:
                stack.extend((chunk, "blob") for chunk in chunks.ids)
            continue
        obj = store.get(object_id, kind)
        kind = obj_kind(obj)
        if skip(object_id, kind):
            continue
        yield object_id, kind
        if isinstance(obj, objects.Commit):
            if object_id not in released:
                stack.append((obj.tree, "tree"))
            stack.extend((p, "commit") for p in obj.parents)
        elif isinstance(obj, objects.Tree):
            stack.extend((entry.id, entry_kind(entry)) for entry in obj.entries)


def dependencies_first(
    store: ObjectStore,
    roots: Iterable[ObjectId],
    skip: Callable[[ObjectId, str], bool],
    released: Collection[ObjectId] = frozenset(),
) -> Iterator[tuple[ObjectId, str]]:
    """Like :func:`reachable`, but each object comes after everything it reaches, and
    memory follows the depth, not the count: the path being walked (a tree's entries
    each) and the trees and commits met, never the blobs. A blob reached twice is
    yielded twice, a chunk list (kind "blob") after its chunks.
    """
    seen: set[ObjectId] = set()  # trees and commits
    path: list[tuple[ObjectId, str, Iterator[tuple[ObjectId, str]]]] = []

    def enter(object_id: ObjectId, kind: str | None) -> Iterator[tuple[ObjectId, str]]:
        """Yield ``object_id`` now if it reaches nothing; else start walking below it."""
        if kind in ("blob", _LARGE):
            if skip(object_id, "blob"):
                return
            chunks = store.chunk_list(object_id) if kind == _LARGE else None
            if chunks is not None:
                yield from ((c, "blob") for c in chunks.ids if not skip(c, "blob"))
            yield object_id, "blob"
            return
        if object_id in seen:
            return
        seen.add(object_id)
        obj = store.get(object_id, kind)
        kind = obj_kind(obj)
        if skip(object_id, kind):
            return
        below: list[tuple[ObjectId, str]] = []
        if isinstance(obj, objects.Commit):
            below = [(p, "commit") for p in obj.parents]
            if object_id not in released:
                below.append((obj.tree, "tree"))
        elif isinstance(obj, objects.Tree):
            below = [(entry.id, entry_kind(entry)) for entry in obj.entries]
        path.append((object_id, kind, iter(below)))

    for root in roots:
        yield from enter(root, None)
        while path:
            object_id, kind, pending = path[-1]
            step = next(pending, None)
            if step is None:
                path.pop()
                yield object_id, kind
            else:
                yield from enter(*step)


def entry_kind(entry: objects.TreeEntry) -> str:
    if entry.kind in TREE_KINDS:
        return "tree"
    return _LARGE if entry.size >= LOOSE_THRESHOLD else "blob"


def references(obj: objects.Object) -> list[ObjectId]:
    """The ids an object references: a commit its tree and parents, a tree its entries."""
    if isinstance(obj, objects.Commit):
        return [obj.tree, *obj.parents]
    if isinstance(obj, objects.Tree):
        return [entry.id for entry in obj.entries]
    return []


def obj_kind(obj: objects.Object) -> str:
    if isinstance(obj, objects.Commit):
        return "commit"
    if isinstance(obj, objects.Tree):
        return "tree"
    return "blob"
