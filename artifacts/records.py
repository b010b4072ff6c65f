"""Records this layer keeps as blobs of canonical msgpack (an artifact's own record, a
registry's settings), read back checked: a store may be hostile or damaged."""

from __future__ import annotations

from typing import Any

import msgpack


def map_of(data: bytes, keys: tuple[str, ...]) -> dict[str, Any] | None:
    """The map ``data`` holds if it is a map of exactly ``keys``, else None."""
    try:
        fields = msgpack.unpackb(data, raw=False)
    except Exception:
        return None
    return fields if isinstance(fields, dict) and set(fields) == set(keys) else None
