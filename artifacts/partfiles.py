"""The temporary files a download writes beside their destinations, into a directory
that already holds files (a new one is staged whole: see artifacts.staging), and
into the download cache's ``tmp/`` (artifacts.cache).

Each is named ``.part-<pid>-<n>``, and the process writing it holds an ``flock`` on
it from its creation until it is renamed into place. A process killed meanwhile
(SIGKILL, the OOM killer, a power loss) leaves it behind, unlocked: the next
download writing into that directory, or a checkout of the root (or, in the cache,
the next download through it and ``artifacts cache cleanup --remove-temp``), removes
it, and neither checkout nor verify takes it for a file of the user's. One still
locked is a live download's, and is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import re
import threading
from collections.abc import Callable, Iterator

# A short name: "<name>.part-<pid>" would pass NAME_MAX for a 250-byte name.
_NAME = re.compile(r"\.part-\d+-\d+")
_names = itertools.count()


def is_part_name(name: str) -> bool:
    """Whether ``name`` is that of a temporary file of a download's (live or not)."""
    return _NAME.fullmatch(name) is not None


class PartFile:
    """A new, empty temporary file beside ``dest``, locked until the ``with`` ends:
    ``path``, and ``fd``, a descriptor open on it for writing. Rename it to ``dest``
    inside the ``with``; it is deleted if the ``with`` fails. (A class, not a generator:
    it is made once per file, thousands of times a second.)"""

    __slots__ = ("fd", "path")

    def __init__(self, dest: str, mode: int = 0o666) -> None:
        folder = os.path.dirname(dest)
        while True:
            self.path = os.path.join(folder, f".part-{os.getpid()}-{next(_names)}")
            try:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            except FileExistsError:  # a killed process's that had our pid: take the next
                continue
            except OSError as exc:  # named as the file asked for, not its temporary name
                raise type(exc)(exc.errno, exc.strerror, dest) from None
            try:
                # Waits only for a remover that found the file before we locked it.
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            except OSError:
                return  # no locks on this filesystem: then nothing is removed
            if os.fstat(self.fd).st_nlink:
                return
            os.close(self.fd)  # removed as abandoned before we locked it: make another

    def __enter__(self) -> PartFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        finally:
            os.close(self.fd)  # the lock goes with it, once the file has its name


class Abandoned(Exception):
    """The download this file was part of stopped (Ctrl-C, another file failed)."""


class LiveParts:
    """The temporary files a download's threads are writing. On Ctrl-C the command
    does not wait for those threads (cas.threads: a file may be minutes from done, or
    its server silent), so it deletes their files here, and no new one is made: the
    destination is left without a partial file, where a thread killed at exit would
    leave its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._abandoned = False

    @contextlib.contextmanager
    def part(
        self, destination: Callable[[], str], mode: int = 0o666
    ) -> Iterator[tuple[str, PartFile]]:
        """``destination()`` and a PartFile beside it (made under the lock: it may make
        the folder, which must not appear once the download is abandoned)."""
        with self._lock:
            if self._abandoned:
                raise Abandoned
            dest = destination()
            part = PartFile(dest, mode)
            self._paths.add(part.path)
        try:
            with part:
                yield dest, part
        finally:
            with self._lock:
                self._paths.discard(part.path)

    def check(self) -> None:
        """Raise Abandoned once the download is: before a file is put in place."""
        if self._abandoned:
            raise Abandoned

    def abandon(self) -> None:
        """Delete every file being written; a thread writing on writes to no name, and
        its rename fails."""
        with self._lock:
            self._abandoned = True
            paths = list(self._paths)
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def remove_abandoned(folder: str) -> None:
    """Delete the temporary files in ``folder`` whose download is gone."""
    with os.scandir(folder) as entries:
        # startswith first: most folders hold thousands of names, none of them ours
        found = [e.path for e in entries if e.name.startswith(".part-") and is_part_name(e.name)]
    for path in found:
        remove_if_abandoned(path)


def remove_if_abandoned(path: str) -> int:
    """Delete ``path``, a temporary file of a download's, unless one holds it; returns
    the bytes removed."""
    try:
        # Not blocking on a FIFO, nor following a link: ours are neither.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return 0  # gone meanwhile, or no file of ours
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Under the lock, and still that file: not renamed into place meanwhile.
        st = os.fstat(fd)
        if os.path.samestat(st, os.lstat(path)):
            os.unlink(path)
            return st.st_size
    except OSError:
        pass  # in use, renamed meanwhile, or no locks here: left alone
    finally:
        os.close(fd)
    return 0
