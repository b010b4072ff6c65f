"""Storage backends behind one small interface (see :mod:`cas.storage.base`).

:func:`open_storage` picks a backend from a URL:

- ``memory://…``: a private in-memory dict (tests);
- a path or ``file://…``: a local directory;
- ``s3://bucket/prefix``: S3 through s3fs, with conditional writes;
- ``gs://bucket/prefix``: GCS through gcsfs, with generation preconditions;
- any other fsspec URL: the generic fsspec backend.
"""

from __future__ import annotations

from typing import Any

from .base import Capabilities, IfMatch, Mode, Stat, Storage
from .local import LocalStorage
from .memory import MemoryStorage

__all__ = [
    "Capabilities",
    "IfMatch",
    "LocalStorage",
    "MemoryStorage",
    "Mode",
    "Stat",
    "Storage",
    "open_storage",
]


def open_storage(url: str, **options: Any) -> Storage:
    if url.startswith("memory://"):
        return MemoryStorage(url)
    if "://" not in url or url.startswith("file://"):
        return LocalStorage(url)
    if url.startswith("s3://"):
        from .s3 import S3Storage

        return S3Storage(url, **options)
    if url.startswith(("gs://", "gcs://")):
        from .gcs import GCSStorage

        return GCSStorage(url, **options)
    from .fsspec import FsspecStorage

    return FsspecStorage(url, **options)
