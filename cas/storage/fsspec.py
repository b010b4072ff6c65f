"""Storage on any fsspec filesystem.

The generic backend can only promise what fsspec promises: ``mode="create"``
and ``IfMatch`` are checked and then written, which is not atomic. Backends
for object stores with real conditional writes (S3, GCS) subclass this and
override the writes (:meth:`put`, :meth:`put_file`) and :meth:`get_versioned`.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import blake3
import fsspec

from ..errors import (
    KeyNotFoundError,
    PreconditionFailedError,
    StorageUnavailableError,
    UsageError,
)
from .base import Capabilities, IfMatch, Mode, Stat, Storage

# A server that was not there to answer (what the network backends retry).
_UNANSWERED = frozenset(
    (errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT)
)


class FsspecStorage(Storage):
    capabilities = Capabilities(
        atomic_create=False, conditional_update=False, durable=True, local=False
    )

    def __init__(self, url: str, fs: Any | None = None, **storage_options: Any) -> None:
        self.url = url
        if fs is None:
            if url.startswith(("http://", "https://")):
                storage_options.setdefault("client_kwargs", {"timeout": silence_bound()})
            # skip_instance_cache: every store owns its filesystem object.
            try:
                with self._answered():  # some connect at once (ftp://)
                    fs, root = fsspec.core.url_to_fs(
                        url, skip_instance_cache=True, **storage_options
                    )
            except ImportError as exc:  # the scheme's package is not installed
                raise UsageError(f"cannot open {url}: {exc}") from None
        else:
            root = fs._strip_protocol(url)
        self.fs = fs
        self.root = root.rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}"

    @contextmanager
    def _answered(self) -> Iterator[None]:
        """A connection nobody answered, as the network backends say it (they retry it
        first; this generic one cannot know what a retry would cost its filesystem)."""
        try:
            yield
        except (FileNotFoundError, PermissionError):
            raise
        except OSError as exc:
            if exc.errno not in _UNANSWERED and not isinstance(
                exc, (ConnectionError, TimeoutError)
            ):
                raise
            from .network import TIMEOUT_VARIABLE, Policy  # not above: network builds on this

            if isinstance(exc, TimeoutError):
                total = Policy.from_environment().total
                reason = f"silent for {total:g} s; allow longer with {TIMEOUT_VARIABLE}=SECONDS"
            else:
                reason = f"{exc}; check that the server is up and reachable"
            raise StorageUnavailableError(self.url, f"{self.url} did not answer: {reason}") from exc

    def get(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        try:
            with self._answered():
                return self.fs.cat_file(self._path(key), start=start, end=end)
        except FileNotFoundError:
            raise KeyNotFoundError(key) from None

    def get_versioned(self, key: str) -> tuple[bytes, str]:
        data = self.get(key)
        return data, blake3.blake3(data).hexdigest()

    def put(self, key: str, data: bytes, mode: Mode = "overwrite") -> None:
        self._check(key, mode)
        path = self._path(key)
        with self._answered():
            self._make_parent(path)
            self.fs.pipe_file(path, data)

    def _check(self, key: str, mode: Mode) -> None:
        """Raise PreconditionFailedError unless ``key`` is in the state ``mode`` needs."""
        if mode == "create":
            if self.exists(key):
                raise PreconditionFailedError(key, "already exists")
        elif isinstance(mode, IfMatch):
            try:
                _, token = self.get_versioned(key)
            except KeyNotFoundError:
                token = None
            if token != mode.token:
                raise PreconditionFailedError(key, "changed since it was read")

    def _make_parent(self, path: str) -> None:
        # Filesystems with real directories (file://, sftp...) need the parent first.
        self.fs.makedirs(self.fs._parent(path), exist_ok=True)

    def put_file(self, key: str, local_path: str, mode: Mode = "overwrite") -> None:
        self._check(key, mode)
        path = self._path(key)
        with self._answered():
            self._make_parent(path)
            self.fs.put_file(local_path, path)

    def open(self, key: str) -> BinaryIO:
        try:
            with self._answered():
                return self.fs.open(self._path(key), "rb")
        except FileNotFoundError:
            raise KeyNotFoundError(key) from None

    def stat(self, key: str) -> Stat:
        try:
            with self._answered():
                info = self.fs.info(self._path(key))
        except FileNotFoundError:
            raise KeyNotFoundError(key) from None
        return Stat(size=int(info["size"]), mtime=_mtime(info))

    def delete(self, key: str) -> None:
        try:
            with self._answered():
                self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            pass

    def list(self, prefix: str = "") -> Iterator[str]:
        for key, _ in self._listing(prefix, detail=False):
            yield key

    def list_stats(self, prefix: str = "") -> Iterator[tuple[str, Stat]]:
        for key, info in self._listing(prefix, detail=True):
            yield key, Stat(size=int(info["size"]), mtime=_mtime(info))

    def _listing(self, prefix: str, detail: bool) -> Iterator[tuple[str, Any]]:
        # List the deepest directory the prefix names, then filter by name.
        base, _, _ = prefix.rpartition("/")
        top = self._path(base) if base else self.root
        try:
            # on_error: fsspec's walk otherwise takes any error (a refused connection
            # too) for an empty directory.
            with self._answered():
                found = self.fs.find(top, detail=detail, on_error="raise")
        except FileNotFoundError:
            return
        strip = len(self.root) + 1
        for path, info in found.items() if detail else ((p, None) for p in found):
            key = path[strip:]
            if key.startswith(prefix):
                yield key, info


def silence_bound() -> Any:
    """aiohttp's timeouts for one request of an http(s) store: silence as long as the
    network policy allows (its own default waits five minutes, saying nothing)."""
    import aiohttp

    from .network import Policy  # not above: network builds on this module

    total = Policy.from_environment().total
    return aiohttp.ClientTimeout(total=None, sock_connect=total, sock_read=total)


def _mtime(info: dict[str, Any]) -> float:
    for field in ("mtime", "LastModified", "updated", "created"):
        value = info.get(field)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        if isinstance(value, str):
            from datetime import datetime

            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        return float(value)
    return 0.0
