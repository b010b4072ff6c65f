"""Every storage key a store uses, and their parsers: the layout of docs/format.md.

Nothing else builds or takes apart a key by hand::

    objects/<2 hex>/<62 hex>     one loose object: its exact bytes
    blobs/<2 hex>/<62 hex>       one large blob: its content alone, no header
    chunked/<2 hex>/<62 hex>     one large blob stored as chunks: its chunk list
    packs/<64 hex>.pack          many small objects, back to back
    packs/<64 hex>.idx           where each object of that pack starts
    refs/<name>                  a ref
    config.json                  the store's settings
    fossils/<any key above>      gc's fossils, laid out as a store of their own
    fossils/clock                the marker gc stamps to read the store's clock
    tmp/<anything>               writers' temporary files, never listed
    damaged/refs/<name>.<time>   a ref's bytes that could not be read, set aside
"""

from __future__ import annotations

from .objects import ObjectId

LOOSE_PREFIX = "objects/"
CONTENT_PREFIX = "blobs/"
CHUNKED_PREFIX = "chunked/"
LOOSE_PREFIXES = (CONTENT_PREFIX, CHUNKED_PREFIX, LOOSE_PREFIX)
PACKS_PREFIX = "packs/"
_PACK_SUFFIX = ".pack"
_INDEX_SUFFIX = ".idx"
REFS_PREFIX = "refs/"
CONFIG_KEY = "config.json"
# gc's first step moves unreachable objects here, laid out as a store of their own;
# readers fall back to it, writers never count on it (docs/format.md).
FOSSIL_PREFIX = "fossils/"
GC_CLOCK_KEY = FOSSIL_PREFIX + "clock"
TMP_DIR = "tmp"
TMP_PREFIX = TMP_DIR + "/"
DAMAGED_REFS_PREFIX = "damaged/refs/"  # fsck --repair keeps an unreadable ref's bytes here


def _fanned_out(prefix: str, object_id: ObjectId) -> str:
    hex_id = object_id.hex()
    return f"{prefix}{hex_id[:2]}/{hex_id[2:]}"


def loose_key(object_id: ObjectId) -> str:
    """Where a loose object's exact bytes live."""
    return _fanned_out(LOOSE_PREFIX, object_id)


def content_key(object_id: ObjectId) -> str:
    """Where a large blob's content lives, without its header (its id still covers both)."""
    return _fanned_out(CONTENT_PREFIX, object_id)


def chunked_key(object_id: ObjectId) -> str:
    """Where the chunk list of a large blob stored as chunks lives (its id covers the
    whole content, as for any blob)."""
    return _fanned_out(CHUNKED_PREFIX, object_id)


def parse_loose_key(key: str) -> ObjectId | None:
    """The id a loose key (any form) names, or None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or f"{parts[0]}/" not in LOOSE_PREFIXES:
        return None
    if len(parts[1]) != 2 or len(parts[2]) != 62:
        return None
    try:
        return bytes.fromhex(parts[1] + parts[2])
    except ValueError:
        return None


def pack_key(name: str) -> str:
    """Where the pack named ``name`` (the hex hash of its bytes) lives."""
    return f"{PACKS_PREFIX}{name}{_PACK_SUFFIX}"


def index_key(name: str) -> str:
    """Where the index of the pack named ``name`` lives."""
    return f"{PACKS_PREFIX}{name}{_INDEX_SUFFIX}"


def parse_index_key(key: str) -> str | None:
    """The name of the pack whose index ``key`` is, or None for any other key."""
    if key.startswith(PACKS_PREFIX) and key.endswith(_INDEX_SUFFIX):
        return key[len(PACKS_PREFIX) : -len(_INDEX_SUFFIX)]
    return None


def parse_pack_key(key: str) -> str | None:
    """The name of the pack ``key`` holds, or None for any other key."""
    if key.startswith(PACKS_PREFIX) and key.endswith(_PACK_SUFFIX):
        return key[len(PACKS_PREFIX) : -len(_PACK_SUFFIX)]
    return None


def ref_key(name: str) -> str:
    """Where the ref ``name`` lives (the name is validated by :mod:`cas.refs`)."""
    return REFS_PREFIX + name


def damaged_ref_key(name: str, stamp: str) -> str:
    """Where the bytes of the ref ``name``, unreadable, are kept once set aside at
    ``stamp`` (a time, so that a ref set aside again keeps both)."""
    return f"{DAMAGED_REFS_PREFIX}{name}.{stamp}"


def parse_ref_key(key: str) -> str:
    """The name of the ref stored at ``key``, a key listed under :data:`REFS_PREFIX`."""
    return key[len(REFS_PREFIX) :]
