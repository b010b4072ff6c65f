"""Tree operations on paths: edit, merge, walk, look up, diff, count.

Every function here touches only the subtrees on the paths it is asked about,
and in a large directory only the pages on those paths (:mod:`cas.pages`).
Editing one file of a 100,000-file tree reads and rewrites the trees and pages
on that file's path, and nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cas import pages
from cas.objects import ObjectId, Tree, TreeEntry
from cas.store import ObjectStore, PackWriter

from .errors import MergeConflictError, UsageError

Path = tuple[str, ...]


class Removal:
    def __repr__(self) -> str:
        return "REMOVE"


REMOVE = Removal()
Edit = TreeEntry | Removal
# A call of a function below that is written as recursion: where it would call itself it
# yields that call, and _iteratively sends the call's result back in.
Call = Generator["Call", Any, Any]


def _iteratively(call: Call) -> Any:
    """The result of ``call``, with its nested calls kept on a list, not Python's stack.

    A tree may be deeper than the interpreter's recursion limit (a hostile one, or
    an entry path of a thousand segments), and every walk must still finish.
    """
    stack, result = [call], None
    while stack:
        try:
            nested = stack[-1].send(result)
        except StopIteration as returned:
            stack.pop()
            result = returned.value
        else:
            stack.append(nested)
            result = None
    return result


def empty_tree_id(writer: PackWriter) -> ObjectId:
    return writer.add(Tree(()))


def apply_edits(
    store: ObjectStore, writer: PackWriter, base: ObjectId | None, edits: Mapping[Path, Edit]
) -> tuple[ObjectId, int]:
    """The tree ``base`` with ``edits`` applied: (new root id, total size).

    A path mapped to REMOVE deletes that file or directory. A path mapped to
    an entry puts it there (its name is the path's last segment), replacing
    whatever was there. Removals apply before puts, so removing ``d`` and
    adding ``d/x`` leaves ``d`` holding only ``x``. Directories left empty
    disappear.
    """
    result = _iteratively(_apply(store, writer, base, edits, ()))
    if result is None:
        return empty_tree_id(writer), 0
    return result.id, result.size


def _apply(
    store: ObjectStore,
    writer: PackWriter,
    base: ObjectId | None,
    edits: Mapping[Path, Edit],
    where: Path,
) -> Call:
    """Yields to _iteratively; returns the new entry at ``where`` (None: nothing left)."""
    here: dict[str, Edit] = {}
    below: dict[str, dict[Path, Edit]] = {}
    depth = len(where)  # edits keep their whole paths: slicing them at every level is O(depth²)
    for path, edit in edits.items():
        if len(path) == depth + 1:
            here[path[depth]] = edit
        else:
            below.setdefault(path[depth], {})[path] = edit
    changes: dict[str, TreeEntry | None] = {}
    reader = pages.Reader(store)
    for name, edit in here.items():
        if isinstance(edit, TreeEntry):
            if name in below:
                raise UsageError(f"{'/'.join(where + (name,))} is added as a file and a directory")
            changes[name] = edit
        else:
            changes[name] = None
    for name, sub in below.items():
        existing = None
        if base is not None and here.get(name) is not REMOVE:
            existing = pages.get(reader, base, name)
        if existing is not None and existing.kind != "tree":
            raise UsageError(f"{'/'.join(where + (name,))} is a file, not a directory")
        child = yield _apply(store, writer, existing.id if existing else None, sub, where + (name,))
        changes[name] = None if child is None else TreeEntry(name, "tree", child.id, child.size)
    found = pages.edit(reader, writer, base, changes)
    if found is None:
        return None
    return TreeEntry(where[-1] if where else "root", "tree", *found)


def lookup(store: ObjectStore, root: ObjectId, path: Path) -> TreeEntry | None:
    """The entry at ``path``, or None. Reads only the trees along the path."""
    entry: TreeEntry | None = None
    tree_id = root
    for i, name in enumerate(path):
        if entry is not None and entry.kind != "tree":
            return None
        entry = pages.get(store, tree_id, name)
        if entry is None:
            return None
        if i < len(path) - 1:
            if entry.kind != "tree":
                return None
            tree_id = entry.id
    return entry


def walk(store: ObjectStore, root: ObjectId, prefix: Path = ()) -> Iterator[tuple[str, TreeEntry]]:
    """Yield ("a/b/c", entry) for every file below ``root``, in path order.

    Iterative, so a deep tree (a hostile one, say) cannot exhaust Python's stack.
    """
    stack = [(prefix, pages.entries(store, root))]
    while stack:
        where, entries = stack[-1]
        for entry in entries:
            path = where + (entry.name,)
            if entry.kind == "tree":
                stack.append((path, pages.entries(store, entry.id)))
                break
            yield "/".join(path), entry
        else:
            stack.pop()


@dataclass(frozen=True)
class Part:
    label: str  # who contributed it: a run id
    tree: ObjectId


def merge(store: ObjectStore, writer: PackWriter, parts: list[Part]) -> tuple[ObjectId, int]:
    """Union of the parts' trees. Two parts may agree on a path, never differ."""
    conflicts: dict[str, list[str]] = {}
    roots = [(p.label, p.tree) for p in parts]
    sizes = {tree: _size(store, tree) for tree in {p.tree for p in parts}}
    result = _iteratively(_merge(store, writer, roots, sizes, (), conflicts))
    if conflicts:
        raise MergeConflictError(conflicts)
    if result is None:
        return empty_tree_id(writer), 0
    return result.id, result.size


def _merge(
    store: ObjectStore,
    writer: PackWriter,
    parts: list[tuple[str, ObjectId]],
    sizes: Mapping[ObjectId, int],
    where: Path,
    conflicts: dict[str, list[str]],
) -> Call:
    """Yields to _iteratively; returns the merged entry at ``where`` (None: nothing).
    ``sizes`` are the parts' trees' sizes, as their entries say: nothing is read for them."""
    unique = {tree for _, tree in parts}
    if len(unique) == 1:  # all parts agree below here: nothing to read
        tree_id = unique.pop()
        return TreeEntry(where[-1] if where else "root", "tree", tree_id, sizes[tree_id])
    # The largest part is the base, edited with the others: the cost follows their sizes.
    base = max(unique, key=lambda tree_id: sizes[tree_id])
    base_labels = [label for label, tree_id in parts if tree_id == base]
    by_name: dict[str, list[tuple[str, TreeEntry]]] = {}
    for label, tree_id in parts:
        if tree_id != base:
            for entry in pages.entries(store, tree_id):
                by_name.setdefault(entry.name, []).append((label, entry))
    changes: dict[str, TreeEntry | None] = {}
    reader = pages.Reader(store)
    for name, found in by_name.items():
        existing = pages.get(reader, base, name)
        if existing is not None:
            found = [(label, existing) for label in base_labels] + found
        kinds = {e.kind == "tree" for _, e in found}
        if kinds == {True}:
            below = [(lbl, e.id) for lbl, e in found]
            child_sizes = {e.id: e.size for _, e in found}
            child = yield _merge(store, writer, below, child_sizes, where + (name,), conflicts)
            changes[name] = None if child is None else TreeEntry(name, "tree", child.id, child.size)
        elif len({(e.kind, e.id, e.executable) for _, e in found}) == 1:
            changes[name] = found[0][1]
        else:
            conflicts["/".join(where + (name,))] = sorted({lbl for lbl, _ in found})
    merged = pages.edit(reader, writer, base, changes)
    if merged is None:
        return None
    return TreeEntry(where[-1] if where else "root", "tree", *merged)


def _size(store: ObjectStore, tree_id: ObjectId) -> int:
    return store.get_tree(tree_id).size


@dataclass
class Diff:
    added: list[str]
    removed: list[str]
    modified: list[str]


def diff(store: ObjectStore, a: ObjectId, b: ObjectId) -> Diff:
    """Paths added, removed and modified from ``a`` to ``b``; equal subtrees are skipped."""
    result = Diff([], [], [])
    _iteratively(_diff(store, a, b, (), result))
    for paths in (result.added, result.removed, result.modified):
        paths.sort()
    return result


def _diff(store: ObjectStore, a: ObjectId, b: ObjectId, prefix: Path, out: Diff) -> Call:
    """Yields to _iteratively; adds the changes below ``prefix`` to ``out``."""
    if a == b:
        return
    for x, y in pages.diff(store, a, b):
        path = prefix + ((x or y).name,)  # type: ignore[union-attr]
        if x is not None and y is not None and x.kind == "tree" and y.kind == "tree":
            yield _diff(store, x.id, y.id, path, out)
            continue
        if (
            x is not None
            and y is not None
            and (x.kind, x.id, x.executable)
            == (
                y.kind,
                y.id,
                y.executable,
            )
        ):
            continue
        if x is not None and y is not None and x.kind != "tree" and y.kind != "tree":
            out.modified.append("/".join(path))
            continue
        if x is not None:
            out.removed.extend(_files(store, x, path))
        if y is not None:
            out.added.extend(_files(store, y, path))


def _files(store: ObjectStore, entry: TreeEntry, path: Path) -> list[str]:
    if entry.kind != "tree":
        return ["/".join(path)]
    return [p for p, _ in walk(store, entry.id, path)]


def count_from(store: ObjectStore, known: ObjectId, known_count: int, tree: ObjectId) -> int:
    """Files below ``tree``, from the ``known_count`` below ``known`` and the paths that
    differ between them (the pages both share are not read)."""
    changes = diff(store, known, tree)
    return known_count + len(changes.added) - len(changes.removed)


# Files below each directory counted, by its tree's id: a tree never changes, and
# versions share most of their directories, so each is read once per process. Bounded:
# past MAX_COUNTED, the oldest counts are forgotten.
MAX_COUNTED = 100_000
_counted: dict[ObjectId, int] = {}
_counted_lock = threading.Lock()


def count_files(store: ObjectStore, root: ObjectId) -> int:
    """Files below ``root``, references included, reading the directories not yet
    counted by this process."""
    return _iteratively(_count(store, root))


def _count(store: ObjectStore, tree_id: ObjectId) -> Call:
    """Yields to _iteratively; returns the files below ``tree_id``."""
    with _counted_lock:
        known = _counted.get(tree_id)
    if known is not None:
        return known
    total = 0
    for entry in pages.entries(store, tree_id):
        total += (yield _count(store, entry.id)) if entry.kind == "tree" else 1
    with _counted_lock:
        _counted[tree_id] = total
        while len(_counted) > MAX_COUNTED:
            del _counted[next(iter(_counted))]
    return total
