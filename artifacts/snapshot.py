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

Files are stored in rounds of :data:`STORE_ROUND`, a directory's in name order, and
its entries go into pages as each round is stored (:class:`cas.pages.Builder`): a
flat directory of 100,000 files is held a round at a time, as nested ones are.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from typing import NamedTuple

from cas import ObjectStore, PackWriter, TreeEntry, pages
from cas.ingest import OnStored, store_files

from .files import LocalFile
from .scan import DirScan
from .staleness import warn_changed
from .statcache import PackedRows, StatCache

STORE_ROUND = 50_000  # files stored per round of worker processes

Built = tuple[bytes, int] | None  # a directory's (tree id, size); None: it holds no file
Blob = tuple[bytes, int, int]  # a file's (blob id, size, when it was hashed)
Replaced = Callable[[str], bytes | None]  # a file's path -> the large blob it replaces


class DirSource(NamedTuple):
    """A staged ``add_dir``: every file of ``scan`` goes below the edit's path;
    ``immutable``: its files were promised not to change (W&B's policy="immutable")."""

    scan: DirScan
    immutable: bool = False

    def files(self) -> Iterator[tuple[tuple[str, ...], LocalFile]]:
        """Its files as staged one by one, with its policy."""
        for rel, f in self.scan.iter_files():
            yield rel, f._replace(immutable=self.immutable)


def build_tree(
    store: ObjectStore,
    writer: PackWriter,
    scan: DirScan,
    cache: StatCache,
    on_stored: OnStored | None = None,
    replaced: Replaced | None = None,
    immutable: bool = False,
) -> Built:
    """(tree id, size) of ``scan``'s files (None if it holds none), using and filling ``cache``;
    ``on_stored`` as in :func:`cas.ingest.store_files`, for the files not in the cache;
    ``replaced(path)``: the large blob the file at ``path`` below ``scan`` replaces;
    ``immutable``: its files were promised not to change since the scan (else those read
    are checked, see :mod:`artifacts.staleness`)."""
    built: dict[int, Built] = {}  # id(DirScan) -> (tree id, size)
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

    # Children before their parents, a round of files at a time: files are looked up in
    # the cache, the misses stored, and the round's entries go into their directories'
    # pages. Only a round's files are held at once, not the whole tree's.
    now = cache.now_ns()
    held: list[_Part] = []
    files = 0
    for node in reversed(changed):
        for part in _DirTree(writer, cache, node, now).parts(STORE_ROUND):
            held.append(part)
            files += len(part.files)
            if files >= STORE_ROUND:
                _finish_round(store, held, built, now, on_stored, replaced, immutable)
                files = 0
    _finish_round(store, held, built, now, on_stored, replaced, immutable)
    return built[id(scan)]


class _Part(NamedTuple):
    """Some of a directory's files (their places in its scan), in name order, and their
    blobs as the cache vouches for them (None: to store); ``last``: its last part."""

    tree: _DirTree
    files: array[int]
    blobs: list[Blob | None]
    last: bool


class _DirTree:
    """A changed directory's tree in the making: its files go in parts, in name order,
    each part's entries into pages once they are stored, with its subdirectories' in
    between; its stat-cache rows are packed as they come. Per file, it holds its place
    in name order and its packed row, and the names of a directory of several parts."""

    def __init__(self, writer: PackWriter, cache: StatCache, node: DirScan, now: int) -> None:
        self.cache = cache
        self.node = node
        self.now = now
        self.pages = pages.Builder(writer)
        # Made at the first part's turn, not before: a round may hold many directories.
        self.rows: PackedRows | None = None
        self.subdirs: list[TreeEntry] = []  # built, last first
        self._names: list[str] | None = None  # kept while a directory of several parts is built

    def names(self) -> list[str]:
        """The names of the directory's files, in scan order."""
        return self._names or self.node.files.names()

    def parts(self, size: int) -> Iterator[_Part]:
        """The directory's files in parts of ``size``, looked up in the cache (one part,
        maybe empty, for a small directory)."""
        files, path = self.node.files, self.node.path
        names = files.names()
        order = array("I", sorted(range(len(names)), key=names.__getitem__))
        if len(order) > size:
            self._names = names  # asked for again by each part: split once
        for start in range(0, max(len(order), 1), size):
            part = order[start : start + size]
            blobs: list[Blob | None] = []
            for i in part:
                file_size, mtime_ns, ctime_ns, inode, _, _ = files.row(i)
                row = self.cache.file(path, names[i], file_size, mtime_ns, ctime_ns, inode)
                blobs.append(None if row is None else (row[4], file_size, row[5]))
            yield _Part(self, part, blobs, start + size >= len(order))

    def add(self, part: _Part, built: dict[int, Built]) -> None:
        """Put the stored ``part`` in the pages; the last part ends the tree, in ``built``."""
        if self.rows is None:  # the first part: the subdirectories, before it, are built
            self.rows = PackedRows(len(self.node.files))
            self.subdirs = [
                TreeEntry(name, "tree", *sub)
                for name, child in sorted(self.node.dirs.items(), reverse=True)
                if (sub := built.pop(id(child))) is not None  # an empty directory disappears
            ]
        rows, subdirs, add = self.rows, self.subdirs, self.pages.add
        files, names = self.node.files, self.names()
        for i, blob in zip(part.files, part.blobs, strict=True):
            assert blob is not None
            name = names[i]
            size, mtime_ns, ctime_ns, inode, executable, _ = files.row(i)
            while subdirs and subdirs[-1].name < name:
                add(subdirs.pop())
            add(TreeEntry(name, "blob", blob[0], blob[1], executable))
            rows.add(name, (size, mtime_ns, ctime_ns, inode, blob[0], blob[2]))
        if part.last:
            while subdirs:
                add(subdirs.pop())
            found = self.pages.finish()  # None: an empty directory
            if found is not None:
                node = self.node
                self.cache.record_tree(node.path, node.signature, *found, rows, self.now)
            built[id(self.node)] = found


def _finish_round(
    store: ObjectStore,
    held: list[_Part],
    built: dict[int, Built],
    now: int,
    on_stored: OnStored | None,
    replaced: Replaced | None,
    immutable: bool,
) -> None:
    """Store the files of ``held`` that the cache did not vouch for, or whose blob the
    store lacks (checked for changes since the scan unless ``immutable``); then put
    each part in its directory's pages, emptying ``held``."""
    known = {b[0] for part in held for b in part.blobs if b is not None}
    present = store.has_many(known) if known else set()
    todo: list[tuple[list[Blob | None], int]] = []
    paths: list[tuple[str, int]] = []  # what is read: a link's target
    homes: list[str] = []  # where each is in the directory scanned
    stats: list[tuple[int, int, int, int]] = []  # each one's when scanned
    for part in held:
        node, names = part.tree.node, None
        for at, b in enumerate(part.blobs):
            if b is None or b[0] not in present:
                names = names or part.tree.names()  # split once, for a part with misses
                i = part.files[at]
                size, mtime_ns, ctime_ns, inode, _, target = node.files.row(i)
                stats.append((size, mtime_ns, ctime_ns, inode))
                todo.append((part.blobs, at))
                homes.append(f"{node.path}/{names[i]}")
                paths.append((target or homes[-1], size))
    if paths:
        if not immutable:
            warn_changed((path, stat) for (path, _), stat in zip(paths, stats, strict=True))
        by_index = (lambda k: replaced(homes[k])) if replaced else None
        for (blobs, at), (blob_id, size) in zip(
            todo, store_files(store, paths, on_stored, by_index), strict=True
        ):
            blobs[at] = (blob_id, size, now)
    held.reverse()
    while held:  # a part let go once in its pages: a finished directory's records with it
        part = held.pop()
        part.tree.add(part, built)
