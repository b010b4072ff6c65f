"""The stat of every file below a directory, taken once, by two processes on a big tree.

A re-log of an unchanged tree costs what its ``stat`` calls cost: about 3 µs a file
here, two thirds of it in the kernel. Threads do not overlap them (each call is too
short to be worth dropping the GIL for), so once a tree shows itself big, a forked
helper takes half of the directories still to scan and sends their stats back as one
msgpack message. A directory that is big alone (a flat dataset) has no subtrees to hand
over: a forked helper stats half of its files, and sends their stats back as one array.
Only where no other thread runs (:mod:`cas.forking`): elsewhere one process scans all.

The helper handles plain files and directories only. A directory holding a symlink or
a FIFO, socket or device, one it cannot read, or a store, goes back to the parent,
which scans it as it scans the rest: the symlink policy (artifacts.linkpolicy), the
skipping of stores and special files, their warnings and errors stay in one place. A
helper that fails or dies hands all its directories back.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterator
from functools import partial

import blake3
import msgpack

from cas import forking
from cas.errors import UsageError
from cas.storage.store_dirs import STORE_DIR, looks_like_store, store_holding
from cas.store import CORES

from .errors import LocalPathError
from .files import LocalFile, stat_ns
from .linkpolicy import check_names, follow_link
from .statcache import PATHS

Path = tuple[str, ...]
# A scanned file: (size, mtime_ns, ctime_ns, inode, executable, path of a link's target or None).
# No path per file: at a million files, a string each weighs a hundred megabytes.
ScanRow = tuple[int, int, int, int, bool, str | None]
_STATS = 5  # numbers kept per file: size, mtime_ns, ctime_ns, inode, executable
_WRAP = 1 << 64  # an inode number is unsigned, the rows' numbers signed (_fitted)
SPLIT_MIN_FILES = 5_000  # files seen before a helper is worth its fork (~10 ms)
SPLIT_DIR_MIN_FILES = 5_000  # files of one directory worth a helper stating half of them
_CAN_SPLIT = hasattr(os, "fork") and CORES >= 2


class FileRows:
    """One directory's files, compact: a million of them weigh about 55 MB, where a dict
    of tuples weighed 250. Names are one string (a NUL never is in a name), the
    numbers one array: plain files, then links, each in scandir order; the rare link's
    target is kept by position."""

    __slots__ = ("_names", "_stats", "_targets")

    def __init__(self, names: str, stats: array[int], targets: dict[int, str] | None) -> None:
        self._names = names
        self._stats = stats
        self._targets = targets

    def names(self) -> list[str]:
        return self._names.split("\0") if self._names or self._stats else []

    def __len__(self) -> int:
        return len(self._stats) // _STATS

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def row(self, i: int) -> ScanRow:
        """The row of the ``i``-th file (of :meth:`names`)."""
        at = i * _STATS
        size, mtime_ns, ctime_ns, inode, executable = self._stats[at : at + _STATS]
        targets = self._targets or {}
        return size, mtime_ns, ctime_ns, inode % _WRAP, bool(executable), targets.get(i)

    def items(self) -> Iterator[tuple[str, ScanRow]]:
        stats, targets = self._stats, self._targets or {}
        for i, name in enumerate(self.names()):
            at = i * _STATS
            size, mtime_ns, ctime_ns, inode, executable = stats[at : at + _STATS]
            yield name, (size, mtime_ns, ctime_ns, inode % _WRAP, bool(executable), targets.get(i))

    def packed(self) -> tuple[str, bytes, dict[int, str] | None]:
        """The rows as plain values: what a directory's signature covers of its files."""
        return self._names, self._stats.tobytes(), self._targets

    def newest_mtime_ns(self) -> int:
        return max(self._stats[1::_STATS], default=0)

    def total_size(self) -> int:
        return sum(self._stats[0::_STATS])

    @classmethod
    def unpacked(cls, packed: tuple[str, bytes, dict[int, str] | None]) -> FileRows:
        """The rows of :meth:`packed` (as msgpack carries them from the helper)."""
        names, stats, targets = packed
        return cls(names, array("q", stats), targets)


class DirScan:
    """The stat of everything below one directory, taken once."""

    __slots__ = (
        "path",
        "files",
        "dirs",
        "signature",
        "newest_mtime_ns",
        "total_size",
        "total_files",
    )

    def __init__(self, path: str) -> None:
        self.path = path
        self.files = FileRows("", array("q"), None)
        self.dirs: dict[str, DirScan] = {}
        self.signature = b""
        self.newest_mtime_ns = 0
        self.total_size = 0  # bytes of every file below
        self.total_files = 0  # files below, at any depth

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

    def adopt(self, files: FileRows, dirs: list[str]) -> list[DirScan]:
        """Take one directory's listing; returns the subdirectories' (empty) scans."""
        self.files = files
        children = []
        for name in dirs:
            self.dirs[name] = child = DirScan(os.path.join(self.path, name))
            children.append(child)
        return children


def _staged(node: DirScan, name: str, row: ScanRow) -> LocalFile:
    size, mtime_ns, ctime_ns, inode, executable, target = row
    path = target or f"{node.path}/{name}"
    return LocalFile(path, size, mtime_ns, ctime_ns, inode, executable)


def scan_tree(root: str) -> DirScan:
    """Stat every file below ``root``, following the symlink policy.

    Symlink policy: a link to a file inside ``root`` is stored as that file's contents; a
    link that points outside ``root``, or nowhere, is refused; a link to a directory is
    not followed (it could loop), with a warning. A store (``.artifacts/``, or any
    directory laid out as one) is skipped, as git skips ``.git/``: adding a project's root
    must not copy its store, nor a store log itself into itself. A store itself, or a
    directory inside one, is refused.
    """
    if os.path.exists(root) and not os.path.isdir(root):  # W&B's add_dir: a ValueError
        raise LocalPathError(f"not a directory: {root} (add_file adds a file)")
    if not os.path.isdir(root):
        raise LocalPathError(f"no such directory: {root}")
    store = store_holding(root)
    if store is not None:
        raise UsageError(f"{root} is in the store at {store}; log your own files instead")
    real_root = os.path.realpath(root)
    top = DirScan(os.path.abspath(root))  # absolute: the files are read when logged
    order: list[DirScan] = []  # every parent before its children
    stores: list[DirScan] = []  # directories found to be stores: dropped below
    stack = [top]  # iterative: a deep directory cannot exhaust Python's stack
    helper: _Helper | None = None
    can_split = _CAN_SPLIT and forking.alone()  # forked among threads, it could hang
    split = not can_split
    seen = 0
    follow = partial(follow_link, real_root=real_root, root=root)
    try:
        while stack:
            node = stack.pop()
            # One helper at a time: a big directory's stats are split only while none runs.
            files, dirs = _list_dir(node.path, follow, split=can_split and helper is None)
            if node is not top and _is_store(files, dirs):  # the top was checked above
                stores.append(node)
            else:
                order.append(node)
                stack.extend(node.adopt(files, dirs))
                seen += len(files)
            if not split and seen >= SPLIT_MIN_FILES and len(stack) >= 2:
                split = True
                half = len(stack) // 2
                helper = _Helper(stack[:half])
                del stack[:half]
            if not stack and helper is not None:
                stack.extend(helper.finish(order))
                helper = None
    finally:
        if helper is not None:
            helper.abandon()
    if stores:  # rare: only then is a map of every directory worth making
        by_path = {node.path: node for node in order}
        for store_scan in stores:
            parent, name = os.path.split(store_scan.path)
            del by_path[parent].dirs[name]
    for node in reversed(order):  # children before their parents
        _sign(node)
    return top


def _list_dir(
    path: str, follow: Callable[[os.DirEntry[str]], LocalFile | None], split: bool = False
) -> tuple[FileRows, list[str]]:
    """One directory's files and subdirectories (names), in scandir order; with
    ``split``, the stats of a big one's files are taken by two processes."""
    names: list[str] = []
    links: list[str] = []
    link_stats = array("q")
    targets: list[str] = []
    dirs: list[str] = []
    with os.scandir(path) as it:
        for entry in it:
            if entry.is_file(follow_symlinks=False):  # most entries: test it first
                names.append(entry.name)
            elif entry.is_symlink():
                staged = follow(entry)
                if staged is not None:
                    links.append(entry.name)
                    link_stats.extend(_fitted(staged[1 : _STATS + 1]))  # not its policy
                    targets.append(staged.path)
            elif entry.is_dir(follow_symlinks=False):
                if entry.name != STORE_DIR:
                    dirs.append(entry.name)
            else:  # a FIFO, socket or device: never read (a FIFO would wait forever)
                follow(entry)
    check_names(path, names + links + dirs)
    if split and len(names) >= SPLIT_DIR_MIN_FILES:
        stats = _stat_split(path, names)
    else:
        stats = _stat_rows(path, names)
    stats.extend(link_stats)
    by_position = {len(names) + i: target for i, target in enumerate(targets)}
    return FileRows("\0".join(names + links), stats, by_position or None), dirs


def _stat_rows(directory: str, names: list[str]) -> array[int]:
    """The stats a :class:`FileRows` keeps of the plain files ``names`` of ``directory``."""
    stats = array("q")
    for i, name in enumerate(names):
        st = os.lstat(f"{directory}/{name}")  # what DirEntry.stat would call
        row = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode & 0o100 > 0)
        try:
            stats.extend(row)
        except OverflowError:  # rare, so not checked for each file first
            del stats[i * _STATS :]  # what extend appended before it failed
            stats.extend(_fitted(row))
    return stats


def _fitted(row: tuple[int, int, int, int, bool]) -> tuple[int, int, int, int, bool]:
    """A file's stats as signed 64-bit numbers, as the rows keep them: an inode number
    using all 64 bits (a hash: FUSE's mergerfs, an NFS file id) as its signed equal
    (``% _WRAP`` gives it back); a time past 2262 as the latest one (files.stat_ns)."""
    size, mtime_ns, ctime_ns, inode, executable = row
    inode = inode - _WRAP if inode >= _WRAP >> 1 else inode
    return size, stat_ns(mtime_ns), stat_ns(ctime_ns), inode, executable


def _stat_split(directory: str, names: list[str]) -> array[int]:
    """``_stat_rows``, the second half taken by a forked helper; if the helper fails
    (a file gone, say), the parent takes its half too, and meets the same error."""
    half = len(names) // 2
    helper = _Forked(lambda: _stat_rows(directory, names[half:]).tobytes())
    try:
        stats = _stat_rows(directory, names[:half])
    except BaseException:
        helper.abandon()
        raise
    theirs = helper.result()
    stats.extend(array("q", theirs) if theirs is not None else _stat_rows(directory, names[half:]))
    return stats


def _is_store(files: FileRows, dirs: list[str]) -> bool:
    """Is the directory listed so a store? (From its listing: no call of its own.)"""
    return looks_like_store(lambda name: name in dirs or name in files)


class _LeftToParent(Exception):
    """The helper met a symlink or a special file: the parent applies the policy."""


def _refuse(entry: os.DirEntry[str]) -> None:
    raise _LeftToParent


class _Forked:
    """A forked process that computes ``work()`` and sends the bytes back."""

    def __init__(self, work: Callable[[], bytes]) -> None:
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the helper: never returns
            code = 1
            try:
                os.close(read_end)
                data = work()
                with open(write_end, "wb") as out:
                    out.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        self.reader = open(read_end, "rb")

    def result(self) -> bytes | None:
        """What the helper sent, once it has exited; None if it failed."""
        with self.reader:
            data = self.reader.read()
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        return data if status == 0 else None

    def abandon(self) -> None:
        """The parent failed: stop the helper and reap it."""
        self.reader.close()
        if self.pid:
            os.kill(self.pid, 9)  # unreaped, so its pid is still its own
            os.waitpid(self.pid, 0)


class _Helper(_Forked):
    """A forked process scanning whole subtrees of ``nodes``.

    It sends, parents before children, one record per directory: ``(path, files, subdirs)``,
    or ``(path, None, None)`` for one it leaves to the parent (whose subdirs it never sees).
    """

    def __init__(self, nodes: list[DirScan]) -> None:
        self.nodes = nodes
        paths = [n.path for n in nodes]
        super().__init__(
            lambda: msgpack.packb(_scan_plain(paths), use_bin_type=True, unicode_errors=PATHS)
        )

    def finish(self, order: list[DirScan]) -> list[DirScan]:
        """Adopt the helper's records (appending their scans to ``order``); returns the
        scans the parent must still take: all of them if the helper failed."""
        data = self.result()
        if data is None:
            return self.nodes
        try:
            records = msgpack.unpackb(
                data, use_list=False, strict_map_key=False, unicode_errors=PATHS
            )
        except ValueError:  # msgpack's errors derive from it
            return self.nodes
        pending = {n.path: n for n in self.nodes}
        left = []
        for path, files, dirs in records:
            node = pending.pop(path)
            if files is None:
                left.append(node)
                continue
            order.append(node)
            for child in node.adopt(FileRows.unpacked(files), dirs):
                pending[child.path] = child
        return left + list(pending.values())  # none of the latter unless a record is missing


Sent = tuple[str, bytes, dict[int, str] | None]  # FileRows.packed()


def _scan_plain(paths: list[str]) -> list[tuple[str, Sent | None, list[str] | None]]:
    records: list[tuple[str, Sent | None, list[str] | None]] = []
    stack = list(paths)
    while stack:
        path = stack.pop()
        try:
            files, dirs = _list_dir(path, _refuse)
        except (_LeftToParent, UsageError, OSError):  # the parent says what is wrong
            records.append((path, None, None))
            continue
        if _is_store(files, dirs):
            records.append((path, None, None))  # the parent skips it
            continue
        records.append((path, files.packed(), dirs))
        stack.extend(os.path.join(path, name) for name in dirs)
    return records


def _sign(node: DirScan) -> None:
    # In scandir order, unsorted: sorting cost more than the rest of the signing. The order
    # of an unchanged directory does not change; if it ever did, the cost is one cache miss.
    dirs = [(name, d.signature) for name, d in node.dirs.items()]
    node.signature = blake3.blake3(
        msgpack.packb(
            (node.path, node.files.packed(), dirs), use_bin_type=True, unicode_errors=PATHS
        )
    ).digest()
    children = node.dirs.values()
    node.newest_mtime_ns = max(
        node.files.newest_mtime_ns(), max((d.newest_mtime_ns for d in children), default=0)
    )
    node.total_size = node.files.total_size() + sum(d.total_size for d in children)
    node.total_files = len(node.files) + sum(d.total_files for d in children)
