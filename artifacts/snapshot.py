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

STORE_ROUND = 100_000  # files stored per round of worker processes


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

    # Files of changed directories, in each one's order: (blob id, size, when hashed),
    # from the cache where it vouches for them, else stored now.
    blobs: list[list[tuple[bytes, int, int] | None]] = []
    for node in changed:
        found: list[tuple[bytes, int, int] | None] = []
        for name, (size, mtime_ns, ctime_ns, inode, _, _) in node.files.items():
            row = cache.file(node.path, name, size, mtime_ns, ctime_ns, inode)
            found.append(None if row is None else (row[4], size, row[5]))
        blobs.append(found)
    known = {b[0] for found in blobs for b in found if b is not None}
    present = store.has_many(known) if known else set()
    now = cache.now_ns()
    todo: list[tuple[int, int]] = []
    paths: list[tuple[str, int]] = []
    for n, found in enumerate(blobs):
        items = None
        for i, b in enumerate(found):
            if b is None or b[0] not in present:
                items = items or list(changed[n].files.items())
                name, (size, _, _, _, _, target) = items[i]
                todo.append((n, i))
                paths.append((target or f"{changed[n].path}/{name}", size))
        if len(todo) >= STORE_ROUND or (n == len(blobs) - 1 and todo):
            # In rounds: the lists of a million paths (and the workers forked
            # while they exist) would weigh more than the rest of the log.
            for (m, i), (blob_id, size) in zip(
                todo, store_files(store, paths, on_stored), strict=True
            ):
                blobs[m][i] = (blob_id, size, now)
            todo, paths = [], []

    for n in reversed(range(len(changed))):  # children before their parents
        node, found = changed[n], blobs[n]
        entries = []
        rows: dict[str, FileRow] = {}
        for (name, (size, mtime_ns, ctime_ns, inode, executable, _)), blob in zip(
            node.files.items(), found, strict=True
        ):
            assert blob is not None
            entries.append(TreeEntry(name, "blob", blob[0], blob[1], executable))
            rows[name] = (size, mtime_ns, ctime_ns, inode, blob[0], blob[2])
        blobs[n] = []  # done with: free as we go
        for name, child in node.dirs.items():
            sub = built[id(child)]
            if sub is not None:  # an empty directory disappears, as in a version
                entries.append(TreeEntry(name, "tree", sub[0], sub[1]))
        found = built[id(node)] = pages.build(writer, entries)  # None: an empty directory
        if found is not None:
            cache.record_tree(node.path, node.signature, *found, rows, now)
    return built[id(scan)]
