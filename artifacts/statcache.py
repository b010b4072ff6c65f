"""A cache of (path, size, mtime_ns, ctime_ns, inode) -> blob id, so unchanged files are
not re-read.

The ctime is there for a file rewritten in place whose mtime was put back
(``touch -d``, ``os.utime``, a tool restoring it): only the ctime, which no
user can set, changes with its bytes. As in git, a file whose ctime changed
for another reason (``chmod``, a new hard link) is read again once. Whether
an entry is racy is still judged by the mtime alone, as git does.

An entry is trusted only if the file's modification time is older than the
moment its file was hashed by more than :data:`RACY_MARGIN_NS`: a file
changed within the timestamp's granularity of being hashed is "racily clean"
and is hashed again. Whole directories are cached the same way, by a
signature of their files' stats (see :mod:`artifacts.snapshot`). The cache is
only ever a hint; ids it returns are checked against the store before use.
"""

from __future__ import annotations

import os
import time
from typing import Any

import msgpack

from cas import Repository
from cas.repo import default_cache_dir

from .files import LocalFile

RACY_MARGIN_NS = 2_000_000_000  # covers coarse filesystem clocks (FAT: 2 s)
_FORMAT = 3  # 3: rows hold the ctime

# (size, mtime_ns, ctime_ns, inode, blob id, when it was hashed)
FileRow = tuple[int, int, int, int, bytes, int]


class StatCache:
    """Two maps, saved in one msgpack file:

    - ``files``: absolute path -> :data:`FileRow`, for files added one by one;
    - ``dirs``: directory path -> (signature, tree id, size, recorded_ns, rows),
      where ``rows`` maps each file's name to its :data:`FileRow`, packed, so
      that loading the cache costs one entry per directory, not per file.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._files: dict[str, FileRow] = {}
        self._dirs: dict[str, list[Any]] = {}
        self._rows: dict[str, dict[str, FileRow]] = {}  # unpacked rows, per directory
        self._dirty = False
        if path and os.path.exists(path):
            try:
                with open(path, "rb") as f:
                    data = msgpack.unpackb(f.read(), raw=False, strict_map_key=False)
                if data.get("format") == _FORMAT:
                    self._files = data["files"]
                    self._dirs = data["dirs"]
            except Exception:
                self._files, self._dirs = {}, {}  # a damaged cache is only a slower cache

    @classmethod
    def for_store(cls, repo: Repository) -> StatCache:
        local = repo.storage.local_path("cache")
        base = local or default_cache_dir(repo.url)
        if not repo.storage.capabilities.durable:
            return cls(None)
        return cls(os.path.join(base, "stat.msgpack"))

    @staticmethod
    def now_ns() -> int:
        return time.time_ns()

    def lookup(self, f: LocalFile) -> bytes | None:
        """The blob id of a file staged alone, if the cache vouches for it."""
        row = self._files.get(f.path)
        if row is None:
            row = self._dir_rows(os.path.dirname(f.path)).get(os.path.basename(f.path))
        if row is None or not _vouches(row, f.size, f.mtime_ns, f.ctime_ns, f.inode):
            return None
        return row[4]

    def file(
        self, directory: str, name: str, size: int, mtime_ns: int, ctime_ns: int, inode: int
    ) -> FileRow | None:
        """The row of file ``name`` of ``directory``, if the cache vouches for it."""
        row = self._dir_rows(directory).get(name)
        vouched = row is not None and _vouches(row, size, mtime_ns, ctime_ns, inode)
        return row if vouched else None

    def tree(
        self, directory: str, signature: bytes, newest_mtime_ns: int
    ) -> tuple[bytes, int] | None:
        """(tree id, size) of a directory whose signature is unchanged and not racy."""
        entry = self._dirs.get(directory)
        if entry is None or entry[0] != signature:
            return None
        if newest_mtime_ns >= entry[3] - RACY_MARGIN_NS:
            return None  # a file in it may have changed within the clock's granularity
        return entry[1], entry[2]

    def record(self, f: LocalFile, blob_id: bytes, hashed_ns: int) -> None:
        """``hashed_ns``: a time taken before the file was read."""
        self._files[f.path] = (f.size, f.mtime_ns, f.ctime_ns, f.inode, blob_id, hashed_ns)
        self._dirty = True

    def record_tree(
        self,
        directory: str,
        signature: bytes,
        tree_id: bytes,
        size: int,
        rows: dict[str, FileRow],
        hashed_ns: int,
    ) -> None:
        """``hashed_ns``: a time taken before any file of the tree was read."""
        packed = msgpack.packb(rows, use_bin_type=True)
        self._dirs[directory] = [signature, tree_id, size, hashed_ns, packed]
        self._rows.pop(directory, None)  # unpacked again if asked: a million rows weigh
        self._dirty = True

    def _dir_rows(self, directory: str) -> dict[str, FileRow]:
        rows = self._rows.get(directory)
        if rows is None:
            entry = self._dirs.get(directory)
            try:
                rows = msgpack.unpackb(entry[4], raw=False) if entry else {}
            except Exception:
                rows = {}
            self._rows[directory] = rows
        return rows

    def save(self) -> None:
        if not self.path or not self._dirty:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        data = {"format": _FORMAT, "files": self._files, "dirs": self._dirs}
        with open(tmp, "wb") as f:
            f.write(msgpack.packb(data, use_bin_type=True))
        os.replace(tmp, self.path)  # concurrent savers: one wins, both leave a valid cache
        self._dirty = False


def _vouches(row: FileRow | list[Any], size: int, mtime_ns: int, ctime_ns: int, inode: int) -> bool:
    if (row[0], row[1], row[2], row[3]) != (size, mtime_ns, ctime_ns, inode):
        return False
    recorded_ns = row[5]
    # Racily clean: it may have changed within the clock's granularity after it was hashed.
    return mtime_ns < recorded_ns - RACY_MARGIN_NS
