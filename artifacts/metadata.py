"""Artifact metadata: made storable when it is set, as W&B makes it JSON-friendly.

A version's metadata is msgpack inside its commit, so it may hold only dicts
with string keys, lists, strings, booleans, None, finite floats and 64-bit
integers. What W&B converts is converted the same way here; anything else is
refused with a :class:`UsageError` when the metadata is set, not after logging
has stored every file.
"""

from __future__ import annotations

import datetime
import json
import math
import sys
from collections.abc import Mapping
from typing import Any

from .errors import MetadataError

# Deeper metadata is surely a mistake; msgpack cannot read nesting past ~1000 back anyway.
MAX_DEPTH = 100
STORABLE = "metadata holds dicts, lists, strings, numbers, booleans and None"


def normalize_metadata(metadata: Any, what: str = "metadata") -> dict[str, Any]:
    """``metadata`` (or a run's config: ``what``) as it will be stored; a new dict, the
    argument is left alone."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise MetadataError(f"{what} must be a dict, not a {type(metadata).__name__}")
    return _normalize(metadata, what, 0)


def artifact_metadata(metadata: Any) -> dict[str, Any]:
    """An artifact's metadata as W&B takes it: a dict, or the JSON text of one (``""``:
    none), converted by ``normalize_metadata``."""
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata) if metadata else None
        except ValueError as e:
            raise MetadataError(f"metadata text is not JSON ({e}): give a dict") from None
    return normalize_metadata(metadata)


def _normalize(value: Any, where: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise MetadataError(f"{where} nests deeper than {MAX_DEPTH} levels")
    value = _plain(value, where)
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            name = _key(key, where)
            if name in result:
                raise MetadataError(f"{where} has two keys that are both {name!r} as strings")
            result[name] = _normalize(item, f"{where}[{name!r}]", depth + 1)
        return result
    if isinstance(value, list | tuple):
        return [_normalize(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None  # NaN and ±inf, as W&B
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**64:
            raise MetadataError(f"{where} = {value} does not fit in 64 bits")
        return int(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    raise MetadataError(f"{where} is a {type(value).__name__}: {STORABLE}")


def _plain(value: Any, where: str) -> Any:
    """numpy values, dates and bytes as the plain values W&B makes of them."""
    # A numpy value means numpy is imported already: never import it here.
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            return value.tolist()
        if isinstance(value, numpy.generic):
            value = value.item()
            if isinstance(value, numpy.floating):  # longdouble and the like stay numpy's
                value = float(value)
    if isinstance(value, datetime.date):  # a datetime is a date too
        return value.isoformat()
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise MetadataError(
                f"{where} is bytes that are not UTF-8; store them as base64"
            ) from None
    return value


def _key(key: Any, where: str) -> str:
    """A dict key as a string, as ``json.dumps`` makes it (W&B's conversion)."""
    key = _plain(key, where)
    if isinstance(key, str):
        return str(key)
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    raise MetadataError(f"{where} has a key that is a {type(key).__name__}: keys are strings")
