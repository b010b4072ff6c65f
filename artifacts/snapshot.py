"""A directory staged whole by ``add_dir``, and the trees built from it.

Staging 100,000 files one by one costs more in Python than hashing them, and
an unchanged directory should cost no more than the ``stat`` of its files.
So ``add_dir`` records one :class:`~artifacts.scan.DirScan` (the stat of every file, by
directory), and logging builds its trees directory by directory:

- each directory gets a *signature*: a hash of its path, its files' (name,
  size, mtime, ctime, inode, executable bit) and its subdirectories' signatures;
- a directory whose signature the stat cache knows, and whose files are all
  older than the cache entry (see :mod:`artifacts.statcache`), reuses the tree
  id it had: nothing below it is read, hashed or even looked at again;
- other directories look their files up one by one in the cache, store the
  misses (in parallel, see :func:`cas.ingest.store_files`) and write a tree.
"""

from __future__ import annotations

from typing import NamedTuple

from cas import ObjectStore, PackWriter, TreeEntry, pages
from cas.ingest import OnStored, store_files

from .scan import DirScan
from .statcache import FileRow, StatCache

STORE_ROUND = 50_000  # files stored per round of worker processes


class DirSource(NamedTuple):
    """A staged ``add_dir``: every file of ``scan`` goes below the edit's path."""

    scan: DirScan


def build_tree(
    store: ObjectStore,
    writer: PackWriter,
    scan: DirScan,
    cache: StatCache,
    on_stored: OnStored | None = None,
) -> tuple[bytes, int] | None:
    """(tree id, size) of ``scan``'s files (None if it holds none), using and filling ``cache``;
    ``on_stored`` as in :func:`cas.ingest.store_files`, for the files not in the cache."""
    built: dict[int, tuple[bytes, int] | None] = {}  # id(DirScan) -> (tree id, size)
    changed: list[DirScan] = []
    stack = [scan]
    while stack:
        node = stack.pop()
        hit = cache.tree(node.path, node.signature, node.newest_mtime_ns)
        if hit is not None and store.has(hit[0]):
            built[id(node)] = hit  # nothing below it changed: not even looked at again
            continue
        changed.append(node)
        stack.extend(node.dirs.values())

    # Children before their parents, a round of files at a time: a directory's files are
    # looked up in the cache, the misses stored, and its tree written once the round is
    # stored. Only a round's files are held at once, not the whole tree's.
    now = cache.now_ns()
    held: list[tuple[DirScan, list[tuple[bytes, int, int] | None]]] = []
    files = 0
    for node in reversed(changed):
        found: list[tuple[bytes, int, int] | None] = []
        for name, (size, mtime_ns, ctime_ns, inode, _, _) in node.files.items():
            row = cache.file(node.path, name, size, mtime_ns, ctime_ns, inode)
            found.append(None if row is None else (row[4], size, row[5]))
        held.append((node, found))
        files += len(found)
        if files >= STORE_ROUND or node is scan:
            _store_round(store, held, now, on_stored)
            for done, blobs in held:
                built[id(done)] = _write_tree(writer, cache, done, blobs, built, now)
            held, files = [], 0
    return built[id(scan)]


def _store_round(
    store: ObjectStore,
    held: list[tuple[DirScan, list[tuple[bytes, int, int] | None]]],
    now: int,
    on_stored: OnStored | None,
) -> None:
    """Store the files of ``held`` that the cache did not vouch for, or whose blob the
    store lacks; fill in their (blob id, size, when hashed)."""
    known = {b[0] for _, found in held for b in found if b is not None}
    present = store.has_many(known) if known else set()
    todo: list[tuple[list[tuple[bytes, int, int] | None], int]] = []
    paths: list[tuple[str, int]] = []
    for node, found in held:
        items = None
        for i, b in enumerate(found):
            if b is None or b[0] not in present:
                items = items or list(node.files.items())
                name, (size, _, _, _, _, target) = items[i]
                todo.append((found, i))
                paths.append((target or f"{node.path}/{name}", size))
    if paths:
        for (found, i), (blob_id, size) in zip(
            todo, store_files(store, paths, on_stored), strict=True
        ):
            found[i] = (blob_id, size, now)


def _write_tree(
    writer: PackWriter,
    cache: StatCache,
    node: DirScan,
    blobs: list[tuple[bytes, int, int] | None],
    built: dict[int, tuple[bytes, int] | None],
    now: int,
) -> tuple[bytes, int] | None:
    """The tree of ``node`` (its subdirectories built already), recorded in the cache."""
    entries = []
    rows: dict[str, FileRow] = {}
    for (name, (size, mtime_ns, ctime_ns, inode, executable, _)), blob in zip(
        node.files.items(), blobs, strict=True
    ):
        assert blob is not None
        entries.append(TreeEntry(name, "blob", blob[0], blob[1], executable))
        rows[name] = (size, mtime_ns, ctime_ns, inode, blob[0], blob[2])
    for name, child in node.dirs.items():
        sub = built.pop(id(child))
        if sub is not None:  # an empty directory disappears, as in a version
            entries.append(TreeEntry(name, "tree", sub[0], sub[1]))
    found = pages.build(writer, entries)  # None: an empty directory
    if found is not None:
        cache.record_tree(node.path, node.signature, *found, rows, now)
    return found
