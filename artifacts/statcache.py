"""A cache of (path, size, mtime_ns, inode) -> blob id, so unchanged files are not re-read.

An entry is trusted only if the file's modification time is older than the
moment the entry was recorded by more than :data:`RACY_MARGIN_NS`: a file
changed within the timestamp's granularity of being hashed is "racily clean"
and is hashed again. The cache is only ever a hint; ids it returns are
checked against the store before use.
"""

from __future__ import annotations

import os
import time

import msgpack

from cas import Repository
from cas.repo import default_cache_dir

from .files import LocalFile

RACY_MARGIN_NS = 2_000_000_000  # covers coarse filesystem clocks (FAT: 2 s)
_FORMAT = 1


class StatCache:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self._entries: dict[str, tuple[int, int, int, bytes, int]] = {}
        self._dirty = False
        if path and os.path.exists(path):
            try:
                with open(path, "rb") as f:
                    data = msgpack.unpackb(f.read(), raw=False, strict_map_key=False)
                if data.get("format") == _FORMAT:
                    self._entries = {k: tuple(v) for k, v in data["entries"].items()}
            except Exception:
                self._entries = {}  # a damaged cache is only a slower cache

    @classmethod
    def for_store(cls, repo: Repository) -> StatCache:
        local = repo.storage.local_path("cache")
        base = local or default_cache_dir(repo.url)
        if not repo.storage.capabilities.durable:
            return cls(None)
        return cls(os.path.join(base, "stat.msgpack"))

    def lookup(self, f: LocalFile) -> bytes | None:
        hit = self._entries.get(f.path)
        if hit is None:
            return None
        size, mtime_ns, inode, blob_id, recorded_ns = hit
        if (size, mtime_ns, inode) != (f.size, f.mtime_ns, f.inode):
            return None
        if mtime_ns >= recorded_ns - RACY_MARGIN_NS:
            return None  # racily clean: it may have changed within the clock's granularity
        return blob_id

    def record(self, f: LocalFile, blob_id: bytes) -> None:
        self._entries[f.path] = (f.size, f.mtime_ns, f.inode, blob_id, time.time_ns())
        self._dirty = True

    def forget(self, path: str) -> None:
        if self._entries.pop(path, None) is not None:
            self._dirty = True

    def save(self) -> None:
        if not self.path or not self._dirty:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(msgpack.packb({"format": _FORMAT, "entries": self._entries}, use_bin_type=True))
        os.replace(tmp, self.path)  # concurrent savers: one wins, both leave a valid cache
        self._dirty = False
