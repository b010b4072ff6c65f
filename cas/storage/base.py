"""The storage interface: a dumb key/value file store with preconditions.

Keys are ``/``-separated relative paths such as ``objects/ab/cdef…``. A backend
knows nothing of objects or refs; the layers above give keys their meaning.

Every write names its precondition: ``"overwrite"``, ``"create"`` (fail if the
key exists) or ``IfMatch(token)`` (fail unless the key still holds the version
that ``get_versioned`` returned with that token). A failed precondition raises
:class:`~cas.errors.PreconditionFailedError` and changes nothing.
"""

from __future__ import annotations

import abc
import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Literal

from ..errors import KeyNotFoundError, StorageError


@dataclass(frozen=True, slots=True)
class IfMatch:
    """Write only if the key still holds the version named by ``token``."""

    token: str


Mode = Literal["overwrite", "create"] | IfMatch


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can promise; callers branch on data, not on types."""

    atomic_create: bool  # "create" is a real atomic test-and-set
    conditional_update: bool  # IfMatch is a real atomic compare-and-swap
    durable: bool  # survives the process (memory does not)
    local: bool  # keys are files on this machine (mmap, os.link are possible)


@dataclass(frozen=True, slots=True)
class Stat:
    size: int
    mtime: float  # seconds since the epoch, as the backend reports it


class Storage(abc.ABC):
    """Abstract key/value storage. Implementations are small private modules."""

    capabilities: Capabilities
    url: str

    @abc.abstractmethod
    def get(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """Return the bytes of ``key`` (or the half-open range ``[start, end)``).

        Raises :class:`~cas.errors.KeyNotFoundError` if it does not exist.
        """

    @abc.abstractmethod
    def get_versioned(self, key: str) -> tuple[bytes, str]:
        """Return the bytes of ``key`` and a token naming that exact version.

        Content and token are read in one request, so the token can be used
        with :class:`IfMatch` without a race between reading and checking.
        """

    @abc.abstractmethod
    def put(self, key: str, data: bytes, mode: Mode = "overwrite") -> None:
        """Store ``data`` at ``key`` atomically: readers see all or nothing."""

    @abc.abstractmethod
    def put_file(self, key: str, local_path: str, mode: Mode = "overwrite") -> None:
        """Store the contents of a local file at ``key``, streamed, atomically."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open ``key`` for streaming reads."""

    @abc.abstractmethod
    def stat(self, key: str) -> Stat:
        """Size and modification time of ``key``."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every key that starts with ``prefix``, in no particular order."""

    def list_stats(self, prefix: str = "") -> Iterator[tuple[str, Stat]]:
        """Every key that starts with ``prefix``, with its :meth:`stat` (the same size
        and time). A bucket's listing carries both, a thousand keys a request; here
        each key is stat-ed (cheap on a local disk)."""
        for key in self.list(prefix):
            try:
                yield key, self.stat(key)
            except KeyNotFoundError:
                continue  # deleted since the listing

    def sync(self) -> None:
        """Make every write made through this storage so far survive a power loss.

        Refs call it before they move, so a ref never reaches an object that a
        power loss could take away. A bucket's PUT is durable once it returns,
        so only backends that buffer writes have anything to do.
        """

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except LookupError:
            return False
        return True

    def move_in(self, key: str, local_path: str, mode: Mode = "overwrite") -> None:
        """Like :meth:`put_file`, for a temporary file of ours that may be consumed."""
        try:
            self.put_file(key, local_path, mode)
        finally:
            os.unlink(local_path)

    def tempfile(self) -> str:
        """A fresh temporary file, on the same filesystem as the store where possible."""
        with self.full_disk_named():
            fd, path = tempfile.mkstemp(prefix="cas-")
        os.close(fd)
        return path

    def local_path(self, key: str) -> str | None:
        """The file behind ``key`` when the backend is local, else None."""
        return None

    @contextmanager
    def full_disk_named(self) -> Iterator[None]:
        """A context in which a full disk met writing into this store's temporary files
        (here: in the system's temporary directory) is said of them, with what to do:
        the OS names no place."""
        try:
            yield
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise StorageError(
                self.url,
                f"no space left on the device holding {tempfile.gettempdir()}, where files "
                f"bound for {self.url} are staged: free some space there, or set TMPDIR "
                "to a directory with room",
            ) from None

    def close(self) -> None:
        """Release resources. Stores are usable as context managers."""

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
