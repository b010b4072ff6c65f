"""Storage in a local directory.

Every write goes to a temporary file under ``<root>/tmp`` and is then put in
place by ``os.link`` (create-only: a duplicate fails instead of overwriting)
or ``os.replace`` (overwrite), so a reader never sees half a file. An
``IfMatch`` write holds an ``flock`` on a per-key lock file while it compares
and replaces, which makes compare-and-swap atomic across processes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

import blake3

from ..errors import InvalidNameError, KeyNotFoundError, PreconditionFailedError
from .base import Capabilities, IfMatch, Mode, Stat, Storage

_HIDDEN = ("tmp/", "locks/")

STORE_DIR = ".artifacts"  # a project's store; no tree may hold an entry of this name
# What a store's directory holds: the backend's own directories (tmp/ made on opening,
# locks/ by the first writer), the keys only a store has (objects/ alone is too common a
# name to tell), and the rest of its layout (docs/format.md, section 5).
_OWN_DIRS = ("tmp", "locks")
_STORE_KEYS = ("refs", "packs", "blobs", "config.json")
STORE_ENTRIES = frozenset((*_OWN_DIRS, *_STORE_KEYS, "objects", "cache", "fossils"))


def looks_like_store(has: Callable[[str], bool]) -> bool:
    """Does a directory holding the names for which ``has`` is true hold a store?"""
    return any(map(has, _OWN_DIRS)) and any(map(has, _STORE_KEYS))


def is_store_dir(path: str) -> bool:
    """Is ``path`` a store's directory: a project's ``.artifacts``, or any directory laid
    out as a local store, whatever its name?"""
    if not os.path.isdir(path):
        return False
    if os.path.basename(os.path.abspath(path)) == STORE_DIR:
        return True
    return looks_like_store(lambda name: os.path.lexists(os.path.join(path, name)))


def store_holding(path: str) -> str | None:
    """The store directory that ``path`` (real, links resolved) is, or lies in through
    one of the store's own entries; None if there is none.

    Only an entry of a store's layout makes a path inside it: a directory above that
    merely looks like a store (``~`` with ``tmp/`` and ``refs/``) does not count.
    """
    here = os.path.realpath(path)
    below = None  # the name on the way down from ``here`` to ``path``
    while True:
        if (below is None or below in STORE_ENTRIES) and is_store_dir(here):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here, below = parent, os.path.basename(here)


class LocalStorage(Storage):
    capabilities = Capabilities(
        atomic_create=True, conditional_update=True, durable=True, local=True
    )

    def __init__(self, root: str) -> None:
        if root.startswith("file://"):
            root = root[len("file://") :]
        self.root = os.path.abspath(root)
        self.url = self.root
        self.tmp_dir = os.path.join(self.root, "tmp")
        os.makedirs(self.tmp_dir, exist_ok=True)

    def _path(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/") or "\\" in key or "\0" in key:
            raise InvalidNameError(key, "not a valid storage key")
        return os.path.join(self.root, key)

    def local_path(self, key: str) -> str:
        return self._path(key)

    def get(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        try:
            if end is None:
                with open(self._path(key), "rb") as f:
                    if start:
                        f.seek(start)
                    return f.read()
            fd = os.open(self._path(key), os.O_RDONLY)  # a range: one pread, no buffering
        except FileNotFoundError:
            raise KeyNotFoundError(key) from None
        try:
            return os.pread(fd, max(0, end - (start or 0)), start or 0)
        finally:
            os.close(fd)

    def get_versioned(self, key: str) -> tuple[bytes, str]:
        data = self.get(key)
        return data, _token(data)

    def put(self, key: str, data: bytes, mode: Mode = "overwrite") -> None:
        fd, tmp = tempfile.mkstemp(dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if mode != "overwrite":
                    # Conditional writes are refs: make them durable before they count.
                    f.flush()
                    os.fsync(f.fileno())
            self._install(key, tmp, mode)
        finally:
            _unlink(tmp)

    def put_file(self, key: str, local_path: str, mode: Mode = "overwrite") -> None:
        fd, tmp = tempfile.mkstemp(dir=self.tmp_dir)
        os.close(fd)
        try:
            shutil.copyfile(local_path, tmp)
            self._install(key, tmp, mode)
        finally:
            _unlink(tmp)

    def move_in(self, key: str, local_path: str, mode: Mode = "overwrite") -> None:
        if os.path.dirname(os.path.abspath(local_path)) != self.tmp_dir:
            return super().move_in(key, local_path, mode)
        try:
            self._install(key, local_path, mode)
        finally:
            _unlink(local_path)

    def _install(self, key: str, tmp: str, mode: Mode) -> None:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if mode == "create":
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise PreconditionFailedError(key, "already exists") from None
        elif isinstance(mode, IfMatch):
            with self._locked(key):
                try:
                    current = _token(self.get(key))
                except KeyNotFoundError:
                    current = None
                if current != mode.token:
                    raise PreconditionFailedError(key, "changed since it was read")
                os.replace(tmp, path)
        else:
            os.replace(tmp, path)

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        lock_path = os.path.join(self.root, "locks", key.replace("/", "%") + ".lock")
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def tempfile(self) -> str:
        """A fresh temporary file inside the store, ready for :meth:`move_in`."""
        fd, tmp = tempfile.mkstemp(dir=self.tmp_dir)
        os.close(fd)
        return tmp

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise KeyNotFoundError(key) from None

    def stat(self, key: str) -> Stat:
        try:
            st = os.stat(self._path(key))
        except FileNotFoundError:
            raise KeyNotFoundError(key) from None
        return Stat(size=st.st_size, mtime=st.st_mtime)

    def delete(self, key: str) -> None:
        _unlink(self._path(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        base, _, _ = prefix.rpartition("/")
        top = self._path(base) if base else self.root  # validates: no escaping the root
        strip = len(self.root) + 1
        for dirpath, _dirs, files in os.walk(top):
            rel = dirpath[strip:]
            for name in files:
                key = f"{rel}/{name}" if rel else name
                if key.startswith(prefix) and not key.startswith(_HIDDEN):
                    yield key


def _token(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
