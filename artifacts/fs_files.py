"""The files ``artifacts://`` opens: a blob read a range at a time, a reference
fetched whole and checked (see :mod:`artifacts.fs` and docs/fsspec.md); and the local
file ``get`` writes, named only once read whole."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import IO, Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from cas.objects import TreeEntry
from cas.store import LOOSE_THRESHOLD, InOrderVerifier, ObjectStore

from .partfiles import PartFile
from .references import Fetcher

SPOOL_BYTES = 64 << 20  # a fetched reference larger than this waits on disk, not in memory


class BlobFile(AbstractBufferedFile):
    """A file of a version, opened read-only; each read fetches only the bytes it needs.

    A small file (packed) is read whole and verified on the first read. A large
    one is read a range at a time: a range on its own cannot be checked against
    the blob's id, so the ranges read in order from the start are hashed as they
    come and the read that reaches the end raises if they were not the logged
    bytes (:class:`cas.store.InOrderVerifier`).
    """

    DEFAULT_BLOCK_SIZE = 1 << 20  # read-ahead: a small read fetches at most this much more

    def __init__(
        self,
        fs: AbstractFileSystem,
        path: str,
        entry: TreeEntry,
        store: ObjectStore,
        **kwargs: Any,
    ):
        kwargs.pop("size", None)  # the entry's size is the size (blockcache passes None)
        super().__init__(fs, path, mode="rb", size=entry.size, **kwargs)
        self._store = store
        self._id = entry.id
        self._whole: bytes | None = None
        self._verifier = InOrderVerifier(entry.id, entry.size)

    def _fetch_range(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        if start >= end:
            return b""
        if self.size < LOOSE_THRESHOLD:
            if self._whole is None:
                self._whole = self._store.read_blob(self._id)
            return self._whole[start:end]
        data = self._store.read_blob_range(self._id, start, end)
        self._verifier.feed(start, data)
        return data


def fetched(descriptor: dict[str, Any]) -> IO[bytes]:
    """A reference's logged bytes, fetched whole and verified as a download fetches them,
    before any is handed out: a range of an external object cannot be checked."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    try:
        Fetcher().fetch(descriptor, spool)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def got_whole(get: Callable[[IO[bytes]], object], lpath: str) -> None:
    """The local file ``lpath``, written by ``get(out)`` under a temporary name beside it
    (artifacts.partfiles): it takes its name only once ``get`` has read the file to its
    end, where a large blob's bytes are verified, so a corrupt one leaves no file; a
    link at ``lpath`` is replaced, never written through."""
    dest = os.path.abspath(lpath)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with PartFile(dest) as part:
        with open(part.fd, "wb", closefd=False) as out:
            get(out)
        os.replace(part.path, dest)
