"""A storage seen through a key prefix: ``Prefixed(storage, "fossils/")`` reads and
writes ``fossils/<key>`` of ``storage`` under the name ``<key>``.

So a whole object store (loose objects, packs, indexes) can live in one area of
another store's keys with the object store's own code, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO

from .base import Mode, Stat, Storage


class Prefixed(Storage):
    def __init__(self, storage: Storage, prefix: str) -> None:
        self.inner = storage
        self.prefix = prefix
        self.capabilities = storage.capabilities
        self.url = f"{storage.url.rstrip('/')}/{prefix.rstrip('/')}"

    def get(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        return self.inner.get(self.prefix + key, start, end)

    def get_versioned(self, key: str) -> tuple[bytes, str]:
        return self.inner.get_versioned(self.prefix + key)

    def put(self, key: str, data: bytes, mode: Mode = "overwrite") -> None:
        self.inner.put(self.prefix + key, data, mode)

    def put_file(self, key: str, local_path: str, mode: Mode = "overwrite") -> None:
        self.inner.put_file(self.prefix + key, local_path, mode)

    def move_in(self, key: str, local_path: str, mode: Mode = "overwrite") -> None:
        self.inner.move_in(self.prefix + key, local_path, mode)

    def open(self, key: str) -> BinaryIO:
        return self.inner.open(self.prefix + key)

    def stat(self, key: str) -> Stat:
        return self.inner.stat(self.prefix + key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(self.prefix + key)

    def delete(self, key: str) -> None:
        self.inner.delete(self.prefix + key)

    def list(self, prefix: str = "") -> Iterator[str]:
        for key in self.inner.list(self.prefix + prefix):
            yield key[len(self.prefix) :]

    def list_stats(self, prefix: str = "") -> Iterator[tuple[str, Stat]]:
        for key, stat in self.inner.list_stats(self.prefix + prefix):
            yield key[len(self.prefix) :], stat

    def tempfile(self) -> str:
        return self.inner.tempfile()

    def full_disk_named(self) -> AbstractContextManager[None]:
        return self.inner.full_disk_named()

    def local_path(self, key: str) -> str | None:
        return self.inner.local_path(self.prefix + key)
