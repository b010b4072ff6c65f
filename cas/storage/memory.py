"""In-memory storage, for tests and scratch work. Each instance owns its dict."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import KeyNotFoundError, PreconditionFailedError
from .base import Capabilities, IfMatch, Mode, Stat, Storage


class MemoryStorage(Storage):
    capabilities = Capabilities(
        atomic_create=True, conditional_update=True, durable=False, local=False
    )

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._items: dict[str, tuple[bytes, int, float]] = {}
        self._lock = threading.Lock()
        self._writes = 0

    def get(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        return self.get_versioned(key)[0][start:end]

    def get_versioned(self, key: str) -> tuple[bytes, str]:
        try:
            data, version, _ = self._items[key]
        except KeyError:
            raise KeyNotFoundError(key) from None
        return data, str(version)

    def put(self, key: str, data: bytes, mode: Mode = "overwrite") -> None:
        with self._lock:
            current = self._items.get(key)
            if mode == "create" and current is not None:
                raise PreconditionFailedError(key, "already exists")
            if isinstance(mode, IfMatch) and (current is None or str(current[1]) != mode.token):
                raise PreconditionFailedError(key, "changed since it was read")
            self._writes += 1
            self._items[key] = (bytes(data), self._writes, time.time())

    def put_file(self, key: str, local_path: str, mode: Mode = "overwrite") -> None:
        with open(local_path, "rb") as f:
            self.put(key, f.read(), mode)

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self.get(key))

    def stat(self, key: str) -> Stat:
        try:
            data, _, mtime = self._items[key]
        except KeyError:
            raise KeyNotFoundError(key) from None
        return Stat(size=len(data), mtime=mtime)

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def list(self, prefix: str = "") -> Iterator[str]:
        with self._lock:
            keys = [k for k in self._items if k.startswith(prefix)]
        yield from keys
