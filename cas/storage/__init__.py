"""Storage backends behind one small interface (see :mod:`cas.storage.base`).

:func:`open_storage` picks a backend from a URL:

- ``memory://…``: a private in-memory dict (tests);
- a path or ``file://…``: a local directory;
- ``s3://bucket/prefix``: S3 through s3fs, with conditional writes;
- ``gs://bucket/prefix``: GCS through gcsfs, with generation preconditions;
- any other fsspec URL: the generic fsspec backend.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import UsageError
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
    "check_url",
    "open_storage",
]

# Schemes this module opens itself; any other goes to fsspec, which must know it.
_OWN_SCHEMES = ("memory", "file", "s3", "gs", "gcs")
_SCHEME_WITHOUT_SLASHES = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):/?(?!/)")


def check_url(url: str) -> None:
    """Refuse, before anything is asked of a store or recorded, a URL no backend opens as
    its writer meant: an empty one, an unknown scheme, and a scheme without its ``//``
    (``s3:/bucket`` would be a local directory named ``s3:``)."""
    if not url:
        raise UsageError("an empty URL: give a path, or a URL such as s3://BUCKET/PREFIX")
    if url == "file://":  # else the working directory, a store laid out among its files
        raise UsageError("file:// without a path (an unset variable?): give file:///PATH")
    scheme, slashes, rest = url.partition("://")
    if not slashes:
        typo = _SCHEME_WITHOUT_SLASHES.match(url)
        if typo and _known_scheme(typo.group(1).lower()):
            fixed = f"{typo.group(1).lower()}://{url[typo.end() :]}"
            raise UsageError(f"{url!r} is a local path, not a URL: did you mean {fixed}?")
        return
    if _known_scheme(scheme):
        return
    if _known_scheme(scheme.lower()):
        raise UsageError(
            f"unknown storage scheme {scheme!r}: did you mean {scheme.lower()}://{rest}?"
        )
    raise UsageError(
        f"unknown storage scheme {scheme!r} in {url!r}: give a path, s3://BUCKET/PREFIX, "
        "gs://BUCKET/PREFIX or another fsspec URL"
    )


def _known_scheme(scheme: str) -> bool:
    if scheme in _OWN_SCHEMES:
        return True
    from fsspec.registry import known_implementations, registry

    return scheme in known_implementations or scheme in registry


def open_storage(url: str, **options: Any) -> Storage:
    check_url(url)
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
