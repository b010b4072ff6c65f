"""Storage in a local directory.

Every write goes to a temporary file under ``<root>/tmp`` and is then put in
place by ``os.link`` (create-only: a duplicate fails instead of overwriting)
or ``os.replace`` (overwrite), so a reader never sees half a file. An
``IfMatch`` write holds an ``flock`` on a per-key lock file while it compares
and replaces, which makes compare-and-swap atomic across processes.

Durability is batched, as git's ``core.fsyncMethod=batch``: files put in place
are remembered, and :meth:`LocalStorage.sync` fsyncs them and every directory
above them at once, before a ref moves or anything is deleted.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, BinaryIO, TypeVar

import blake3

from ..errors import (
    InvalidNameError,
    KeyNotFoundError,
    PreconditionFailedError,
    StorageError,
    UsageError,
)
from .base import Capabilities, IfMatch, Mode, Stat, Storage
from .store_dirs import STORE_ENTRIES

_HIDDEN = ("tmp/", "locks/")
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)  # what a refused write says
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
T = TypeVar("T")
SYNC_THREADS = 32  # fsyncs in flight at once: each mostly waits on the disk


def _naming_a_full_disk(method: Callable[..., T]) -> Callable[..., T]:
    """``method`` of a LocalStorage, with a full disk said of the store."""

    @functools.wraps(method)
    def named(self: LocalStorage, *args: Any, **kwargs: Any) -> T:
        with self.full_disk_named():
            return method(self, *args, **kwargs)

    return named


logger = logging.getLogger("cas.storage")
# A ref's lock is held for a compare and a rename (microseconds): past this, a wait for
# it says so; past that, it gives up.
LOCK_TOLD = 1.0
LOCK_PATIENCE = 30.0


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
        # Put in place since the last sync: files whose bytes may not be on disk yet,
        # and directories whose entries may not be.
        self._unsynced_files: set[str] = set()
        self._unsynced_dirs: set[str] = set()
        self._unsynced_lock = threading.Lock()
        self._sync_lock = threading.Lock()  # a second sync waits until the first's are on disk
        new = self.root
        while not os.path.isdir(new):
            if os.path.lexists(new):  # else makedirs says only "Not a directory: …/tmp"
                raise UsageError(f"{new} is a file, not a store: give a directory for the store")
            self._unsynced_dirs.add(new)
            new = os.path.dirname(new)
        if new != self.root:  # a new store: its name, in the directory that now holds it
            self._unsynced_dirs.add(new)
        self._check_layout()
        try:
            os.makedirs(self.tmp_dir, exist_ok=True)
        except OSError as exc:  # a store on read-only media or a full disk can still be
            if exc.errno not in (*_READ_ONLY, *_NO_SPACE):  # read: a write says why not
                raise

    def _check_layout(self) -> None:
        """A file where one of the store's directories belongs (a hand edit, a bad copy)
        hides what that directory held: listed, it reads as empty, a store with no refs."""
        for name in sorted(STORE_ENTRIES - {"config.json"}):
            path = os.path.join(self.root, name)
            if os.path.lexists(path) and not os.path.isdir(path):
                raise StorageError(
                    self.root,
                    f"the store at {self.root} is damaged: {path} is a file where its "
                    f"directory belongs; move the file aside and restore {name}/ from a copy "
                    "of the store",
                )

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

    def _new_temp(self) -> tuple[int, str]:
        """A new file in the store's tmp/, where every write starts."""
        try:
            try:
                return tempfile.mkstemp(dir=self.tmp_dir)
            except FileNotFoundError:  # tmp/ could not be made as the store opened
                os.makedirs(self.tmp_dir, exist_ok=True)
                return tempfile.mkstemp(dir=self.tmp_dir)
        except OSError as exc:
            if exc.errno not in _READ_ONLY:
                raise
            # Said of the store: the OS names the temporary file it could not make.
            raise StorageError(
                self.url,
                f"the store at {self.root} cannot be written: {exc.strerror}; read it only, "
                "or clone it into a place you can write",
            ) from None

    @contextmanager
    def full_disk_named(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            if exc.errno not in _NO_SPACE:
                raise
            full = "no space left on" if exc.errno == errno.ENOSPC else "disk quota exceeded on"
            raise StorageError(
                self.url,
                f"{full} the device holding the store at {self.root}: free some space "
                "there, or clone the store to a disk with room; then run the command again",
            ) from None

    @_naming_a_full_disk
    def put(self, key: str, data: bytes, mode: Mode = "overwrite") -> None:
        fd, tmp = self._new_temp()
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                synced = mode != "overwrite"
                if synced:
                    # A ref's bytes reach the disk before it replaces the old ones: a
                    # power loss leaves the old ref or the new, never an empty file.
                    f.flush()
                    os.fsync(f.fileno())
            self._install(key, tmp, mode, synced)
        finally:
            _unlink(tmp)

    @_naming_a_full_disk
    def put_file(self, key: str, local_path: str, mode: Mode = "overwrite") -> None:
        fd, tmp = self._new_temp()
        os.close(fd)
        try:
            shutil.copyfile(local_path, tmp)
            self._install(key, tmp, mode)
        finally:
            _unlink(tmp)

    @_naming_a_full_disk
    def move_in(self, key: str, local_path: str, mode: Mode = "overwrite") -> None:
        if os.path.dirname(os.path.abspath(local_path)) != self.tmp_dir:
            return super().move_in(key, local_path, mode)
        try:
            self._install(key, local_path, mode)
        finally:
            _unlink(local_path)

    def _install(self, key: str, tmp: str, mode: Mode, synced: bool = False) -> None:
        """Put ``tmp`` in place at ``key``; ``synced``: its bytes are already on disk."""
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if mode == "create":
            try:
                os.link(tmp, path)
            except FileExistsError:
                # Another writer's copy, maybe not on disk yet, now stands for ours.
                self._put_in_place(key, synced=False)
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
        self._put_in_place(key, synced)

    def _put_in_place(self, key: str, synced: bool) -> None:
        """Remember ``key`` for the next :meth:`sync`, with each directory above it."""
        parts = key.split("/")[:-1]
        with self._unsynced_lock:
            if not synced:
                self._unsynced_files.add(self._path(key))
            for depth in range(len(parts) + 1):
                self._unsynced_dirs.add(os.path.join(self.root, *parts[:depth]))

    @_naming_a_full_disk
    def sync(self) -> None:
        """Fsync every file put in place since the last sync, then the directories
        holding their names: one batch, not a sync per file."""
        with self._sync_lock:
            with self._unsynced_lock:
                files, self._unsynced_files = self._unsynced_files, set()
                dirs, self._unsynced_dirs = self._unsynced_dirs, set()
            try:  # bytes before names: a name must not outlive its bytes
                _fsync_all(files, os.O_RDONLY)
                _fsync_all(dirs, os.O_RDONLY | os.O_DIRECTORY)
            except BaseException:
                with self._unsynced_lock:  # still owed: the next sync tries again
                    self._unsynced_files |= files
                    self._unsynced_dirs |= dirs
                raise

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        lock_path = os.path.join(self.root, "locks", key.replace("/", "%") + ".lock")
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._lock_patiently(fd, key)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _lock_patiently(self, fd: int, key: str) -> None:
        """Take the lock, saying so past :data:`LOCK_TOLD` and giving up at
        :data:`LOCK_PATIENCE`: it is held for a compare and a rename, so a long wait is a
        holder stopped (Ctrl-Z, a debugger, a frozen mount), which no wait would outlast."""
        start = time.monotonic()
        told = False
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                waited = time.monotonic() - start
            if waited >= LOCK_PATIENCE:
                raise StorageError(
                    self.url,
                    f"{key} in {self.root} stayed locked by another process for "
                    f"{waited:.0f} s: it may be stopped (Ctrl-Z, a debugger); let it "
                    "finish, or end it, then try again",
                )
            if not told and waited >= LOCK_TOLD:
                told = True
                logger.info("waiting for %s in %s: another process holds its lock", key, self.root)
            time.sleep(delay)
            delay = min(2 * delay, 0.05)

    @_naming_a_full_disk
    def tempfile(self) -> str:
        """A fresh temporary file inside the store, ready for :meth:`move_in`."""
        fd, tmp = self._new_temp()
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
        # What replaces the deleted file (gc's new pack) must not be lost while the
        # deletion survives: the writes before a delete reach the disk first.
        self.sync()
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


def _fsync_all(paths: set[str], flags: int) -> None:
    """Fsync them all at once: the disk flushes their batch once, where one after
    another each waits for a flush of its own (six directories: 2 ms against 30)."""
    if len(paths) <= 1:
        for path in paths:
            _fsync(path, flags)
        return
    with ThreadPoolExecutor(min(len(paths), SYNC_THREADS)) as pool:
        list(pool.map(_fsync, paths, [flags] * len(paths)))


def _fsync(path: str, flags: int) -> None:
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return  # deleted since (gc): nothing to keep
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
