"""A directory staged whole by ``add_dir``, and the trees built from it.

Staging 100,000 files one by one costs more in Python than hashing them, and
an unchanged directory should cost no more than the ``stat`` of its files.
So ``add_dir`` records one :class:`DirScan` (the stat of every file, by
directory), and logging builds its trees directory by directory:

- each directory gets a *signature*: a hash of its path, its files' (name,
  size, mtime, inode, executable bit) and its subdirectories' signatures;
- a directory whose signature the stat cache knows, and whose files are all
  older than the cache entry (see :mod:`artifacts.statcache`), reuses the tree
  id it had: nothing below it is read, hashed or even looked at again;
- other directories look their files up one by one in the cache, store the
  misses (in parallel, see :func:`cas.ingest.store_files`) and write a tree.
"""

from __future__ import annotations

import operator
import os
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import blake3
import msgpack

from cas import ObjectStore, PackWriter, Tree, TreeEntry
from cas.errors import UsageError
from cas.ingest import store_files

from .files import STORE_DIR, LocalFile, stage_file
from .statcache import FileRow, StatCache

Path = tuple[str, ...]
STORE_ROUND = 100_000  # files stored per round of worker processes
# A scanned file: (size, mtime_ns, inode, executable, path of a link's target or None).
# No path per file: at a million files, a string each weighs a hundred megabytes.
ScanRow = tuple[int, int, int, bool, str | None]


class DirScan:
    """The stat of everything below one directory, taken once."""

    __slots__ = ("path", "files", "dirs", "signature", "newest_mtime_ns", "total_size")

    def __init__(self, path: str) -> None:
        self.path = path
        self.files: dict[str, ScanRow] = {}
        self.dirs: dict[str, DirScan] = {}
        self.signature = b""
        self.newest_mtime_ns = 0
        self.total_size = 0  # bytes of every file below

    def find(self, rel: Path) -> bool:
        """Does this scan hold a file or directory at ``rel``, or a file on its way?"""
        node = self
        for i, name in enumerate(rel):
            if name in node.files:
                return True  # a file here: at rel, or where rel needs a directory
            if name not in node.dirs:
                return False
            node = node.dirs[name]
            if i == len(rel) - 1:
                return True
        return True  # rel == (): the whole scan

    def iter_files(self, prefix: Path = ()) -> Iterator[tuple[Path, LocalFile]]:
        stack = [(prefix, self)]
        while stack:
            where, node = stack.pop()
            for name, row in node.files.items():
                yield where + (name,), _staged(node, name, row)
            stack.extend((where + (name,), child) for name, child in node.dirs.items())


def _staged(node: DirScan, name: str, row: ScanRow) -> LocalFile:
    size, mtime_ns, inode, executable, target = row
    return LocalFile(target or f"{node.path}/{name}", size, mtime_ns, inode, executable)


class DirSource(NamedTuple):
    """A staged ``add_dir``: every file of ``scan`` goes below the edit's path."""

    scan: DirScan


def scan_tree(root: str) -> DirScan:
    """Stat every file below ``root``, following the symlink policy.

    Symlink policy: a link to a file inside ``root`` is stored as that file's
    contents; a link that points outside ``root``, or nowhere, is refused; a
    link to a directory is not followed (it could loop), with a warning.

    A store directory (``.artifacts/``) is skipped, as git skips ``.git/``:
    adding a project's root must not copy the store.
    """
    if not os.path.isdir(root):
        raise UsageError(f"no such directory: {root}")
    real_root = os.path.realpath(root)
    top = DirScan(os.path.abspath(root))  # absolute: the files are read when logged
    order = []
    stack = [top]
    while stack:  # iterative: a deep directory cannot exhaust Python's stack
        node = stack.pop()
        order.append(node)
        with os.scandir(node.path) as it:
            for entry in it:
                if entry.is_file(follow_symlinks=False):  # most entries: test it first
                    st = entry.stat(follow_symlinks=False)
                    node.files[entry.name] = (
                        st.st_size,
                        st.st_mtime_ns,
                        st.st_ino,
                        bool(st.st_mode & 0o100),
                        None,
                    )
                elif entry.is_symlink():
                    staged = _follow(entry, real_root, root)
                    if staged is not None:
                        node.files[entry.name] = (*staged[1:], staged.path)
                elif entry.is_dir(follow_symlinks=False):
                    if entry.name != STORE_DIR:
                        node.dirs[entry.name] = child = DirScan(entry.path)
                        stack.append(child)
    for node in reversed(order):  # children before their parents
        _sign(node)
    return top


def _follow(entry: os.DirEntry[str], real_root: str, root: str) -> LocalFile | None:
    target = os.path.realpath(entry.path)
    if os.path.commonpath([real_root, target]) != real_root:
        raise UsageError(f"symlink {entry.path} points outside {root}; refusing to follow it")
    if os.path.isdir(target):
        warnings.warn(f"not following symlinked directory {entry.path}", stacklevel=4)
        return None
    if not os.path.isfile(target):
        raise UsageError(f"symlink {entry.path} points to nothing")
    return stage_file(target)


def _sign(node: DirScan) -> None:
    # In scandir order, unsorted: sorting cost more than the rest of the signing. The order
    # of an unchanged directory does not change; if it ever did, the cost is one cache miss.
    dirs = [(name, d.signature) for name, d in node.dirs.items()]
    node.signature = blake3.blake3(
        msgpack.packb((node.path, node.files, dirs), use_bin_type=True)
    ).digest()
    stats = node.files.values()
    children = node.dirs.values()
    node.newest_mtime_ns = max(
        max(map(_MTIME, stats), default=0), max((d.newest_mtime_ns for d in children), default=0)
    )
    node.total_size = sum(map(_SIZE, stats)) + sum(d.total_size for d in children)


_MTIME = operator.itemgetter(1)
_SIZE = operator.itemgetter(0)


def build_tree(
    store: ObjectStore, writer: PackWriter, scan: DirScan, cache: StatCache
) -> tuple[bytes, int] | None:
    """(tree id, size) of ``scan``'s files (None if it holds none), using and filling ``cache``."""
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
        for name, (size, mtime_ns, inode, _, _) in node.files.items():
            row = cache.file(node.path, name, size, mtime_ns, inode)
            found.append(None if row is None else (row[3], size, row[4]))
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
                name, (size, _, _, _, target) = items[i]
                todo.append((n, i))
                paths.append((target or f"{changed[n].path}/{name}", size))
        if len(todo) >= STORE_ROUND or (n == len(blobs) - 1 and todo):
            # In rounds: the lists of a million paths (and the workers forked
            # while they exist) would weigh more than the rest of the log.
            for (m, i), (blob_id, size) in zip(todo, store_files(store, paths), strict=True):
                blobs[m][i] = (blob_id, size, now)
            todo, paths = [], []

    for n in reversed(range(len(changed))):  # children before their parents
        node, found = changed[n], blobs[n]
        entries = []
        rows: dict[str, FileRow] = {}
        for (name, (size, mtime_ns, inode, executable, _)), blob in zip(
            node.files.items(), found, strict=True
        ):
            assert blob is not None
            entries.append(TreeEntry(name, "blob", blob[0], blob[1], executable))
            rows[name] = (size, mtime_ns, inode, blob[0], blob[2])
        blobs[n] = []  # done with: free as we go
        for name, child in node.dirs.items():
            sub = built[id(child)]
            if sub is not None:  # an empty directory disappears, as in a version
                entries.append(TreeEntry(name, "tree", sub[0], sub[1]))
        if not entries:
            built[id(node)] = None
            continue
        tree = Tree(tuple(entries))
        built[id(node)] = (writer.add(tree), tree.size)
        cache.record_tree(node.path, node.signature, *built[id(node)], rows, now)
    return built[id(scan)]
