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

import contextlib
import errno
import os
import tempfile
import time
from collections.abc import Iterator
from typing import IO, Any

import msgpack

from cas import Repository
from cas.repo import default_cache_dir

from .files import LocalFile

RACY_MARGIN_NS = 2_000_000_000  # covers coarse filesystem clocks (FAT: 2 s)
# 4: a stream of records, read and written one directory at a time (3 was one map)
_FORMAT = 4

# A local path may hold bytes that are not UTF-8 (os.fsdecode's surrogates): packed as
# those bytes. A path that is UTF-8 packs as it always did.
PATHS = "surrogateescape"

# (size, mtime_ns, ctime_ns, inode, blob id, when it was hashed)
FileRow = tuple[int, int, int, int, bytes, int]
# A directory's (signature, tree id, size, recorded_ns), and where its packed rows lie:
# (file, offset, length); the rows are read only when asked for.
_DirEntry = tuple[bytes, bytes, int, int, IO[bytes], int, int]


class StatCache:
    """Two maps, saved in one file:

    - ``files``: absolute path -> :data:`FileRow`, for files added one by one;
    - ``dirs``: directory path -> (signature, tree id, size, recorded_ns, rows),
      where ``rows`` maps each file's name to its :data:`FileRow`.

    The file is a msgpack stream: ``{"format": 4}``, then one record per directory,
    ``[path, signature, tree id, size, recorded_ns, rows]``, then the ``files`` map.
    Loading it reads each record's header and skips its rows, so a cache of a
    million files costs memory per directory, not per file; the rows of one
    directory are read when asked for. A directory recorded here is written to the
    next file at once, not held, and the rest are copied over when it is saved.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._old: IO[bytes] | None = None  # the file loaded
        self._new: IO[bytes] | None = None  # the next one, written as directories are recorded
        self._tmp: str | None = None  # its path, until it replaces the cache
        self._open()

    def _open(self) -> None:
        self._files: dict[str, FileRow] = {}
        self._dirs: dict[str, _DirEntry] = {}
        self._rows: tuple[str, dict[str, FileRow]] = ("", {})  # the last directory's, unpacked
        self._dirty = False
        if self.path and os.path.exists(self.path):
            try:
                self._old = open(self.path, "rb")
                self._files = self._load(self._old)
            except Exception:
                self._files, self._dirs = {}, {}  # a damaged cache is only a slower cache

    def _load(self, f: IO[bytes]) -> dict[str, FileRow]:
        """Index the directories of the cache file ``f``; returns its ``files`` map."""
        unpacker = msgpack.Unpacker(f, raw=False, strict_map_key=False, unicode_errors=PATHS)
        if unpacker.unpack() != {"format": _FORMAT}:
            return {}
        while True:
            try:
                count = unpacker.read_array_header()
            except ValueError:  # not an array: the files map, which ends the stream
                files = unpacker.unpack()
                if not isinstance(files, dict):
                    raise ValueError("no files map") from None
                return files
            if count != 6:
                raise ValueError("not a directory record")
            path, signature, tree_id, size, recorded_ns = (unpacker.unpack() for _ in range(5))
            offset = unpacker.tell()
            unpacker.skip()
            length = unpacker.tell() - offset
            self._dirs[path] = (signature, tree_id, size, recorded_ns, f, offset, length)

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
        rows: PackedRows,
        hashed_ns: int,
    ) -> None:
        """``hashed_ns``: a time taken before any file of the tree was read."""
        if not self.path:
            return  # nowhere to keep it
        with self._hint_only():
            self._write_dir(directory, (signature, tree_id, size, hashed_ns), rows.packed())
        if self._rows[0] == directory:
            self._rows = ("", {})
        self._dirty = True

    def _write_dir(
        self, directory: str, head: tuple[bytes, bytes, int, int], rows: bytes | bytearray
    ) -> None:
        """Append a directory's record to the next file; its rows are read from there."""
        new = self._next()
        new.seek(0, os.SEEK_END)  # a read of rows may have moved it
        packer = msgpack.Packer(use_bin_type=True, unicode_errors=PATHS)
        new.write(packer.pack_array_header(6))
        for field in (directory, *head):
            new.write(packer.pack(field))
        offset = new.tell()
        new.write(rows)
        self._dirs[directory] = (*head, new, offset, len(rows))

    def _next(self) -> IO[bytes]:
        """The next cache file, begun on first use beside the cache."""
        if self._new is None:
            assert self.path is not None
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), suffix=".tmp")
            self._new = open(fd, "w+b")
            self._new.write(msgpack.packb({"format": _FORMAT}))
        return self._new

    def _dir_rows(self, directory: str) -> dict[str, FileRow]:
        if self._rows[0] == directory:
            return self._rows[1]
        entry = self._dirs.get(directory)
        try:
            rows = (
                msgpack.unpackb(_read(*entry[4:]), raw=False, unicode_errors=PATHS) if entry else {}
            )
        except Exception:
            rows = {}
        self._rows = (directory, rows)  # one directory's: asked for file by file
        return rows

    def save(self) -> None:
        """Finish the next cache file and put it in place: the directories recorded
        here are in it already; the others are copied over, one at a time."""
        if not self.path or not self._dirty:
            return
        with self._hint_only():
            new = self._next()
            for directory, entry in list(self._dirs.items()):
                if entry[4] is not new:
                    self._write_dir(directory, entry[:4], _read(*entry[4:]))
            new.seek(0, os.SEEK_END)
            new.write(msgpack.packb(self._files, use_bin_type=True, unicode_errors=PATHS))
            new.close()
        if self.path is None:
            return  # its disk is full: dropped
        assert self._tmp is not None
        os.replace(self._tmp, self.path)  # concurrent savers: one wins, both leave a valid cache
        self._tmp = self._new = None
        self.close()
        self._open()  # read back as another process would

    def close(self) -> None:
        """Let go of the cache's files; what was recorded and not saved is dropped."""
        for f in (self._old, self._new):
            if f is not None:
                with contextlib.suppress(OSError):  # the next file's last bytes: dropped
                    f.close()
        if self._tmp is not None:
            os.unlink(self._tmp)
        self._old = self._new = self._tmp = None
        self._files, self._dirs, self._rows, self._dirty = {}, {}, ("", {}), False

    @contextlib.contextmanager
    def _hint_only(self) -> Iterator[None]:
        """Writes to the next cache file. The cache is a hint: a full disk under it
        drops the file (and the cache, this time), not the command."""
        try:
            yield
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            self.close()
            self.path = None  # nothing more is written

    def __enter__(self) -> StatCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PackedRows:
    """A directory's map of file name -> :data:`FileRow`, packed as the rows come: a big
    directory's rows wait for its tree as msgpack bytes, not as tuples."""

    def __init__(self, count: int) -> None:
        # A small buffer: a packer's own starts at 256 KiB, for every small directory too.
        self._packer = msgpack.Packer(use_bin_type=True, buf_size=1024, unicode_errors=PATHS)
        self._packed = bytearray(self._packer.pack_map_header(count))

    def add(self, name: str, row: FileRow) -> None:
        self._packed += self._packer.pack(name)
        self._packed += self._packer.pack(row)

    def packed(self) -> bytearray:
        return self._packed  # not copied: a big directory's rows weigh megabytes


def _read(f: IO[bytes], offset: int, length: int) -> bytes:
    f.seek(offset)
    return f.read(length)


def _vouches(row: FileRow | list[Any], size: int, mtime_ns: int, ctime_ns: int, inode: int) -> bool:
    if (row[0], row[1], row[2], row[3]) != (size, mtime_ns, ctime_ns, inode):
        return False
    recorded_ns = row[5]
    # Racily clean: it may have changed within the clock's granularity after it was hashed.
    return mtime_ns < recorded_ns - RACY_MARGIN_NS
