"""Which directories are stores: a project's ``.artifacts``, or any directory laid
out as a local store, whatever its name. Logs, downloads and checkouts skip them or
refuse to write inside them; a new store is made only where none holds it."""

from __future__ import annotations

import os
from collections.abc import Callable

from ..errors import UsageError

STORE_DIR = ".artifacts"  # a project's store; no tree may hold an entry of this name
# What a store's directory holds: the backend's own directories (tmp/ made on opening,
# locks/ by the first writer), the keys only a store has (objects/ alone is too common a
# name to tell), and the rest of its layout (docs/format.md, section 5).
_OWN_DIRS = ("tmp", "locks")
_STORE_KEYS = ("refs", "packs", "blobs", "config.json")
STORE_ENTRIES = frozenset((*_OWN_DIRS, *_STORE_KEYS, "objects", "chunked", "cache", "fossils"))


def looks_like_store(has: Callable[[str], bool]) -> bool:
    """Does a directory holding the names for which ``has`` is true hold a store?"""
    return any(map(has, _OWN_DIRS)) and any(map(has, _STORE_KEYS))


def is_store_dir(path: str) -> bool:
    """Is ``path`` a store's directory: a project's ``.artifacts``, or any directory laid
    out as a local store, whatever its name?"""
    if not os.path.isdir(path):
        return False
    if os.path.basename(os.path.abspath(path)) == STORE_DIR:
        return True
    return looks_like_store(lambda name: os.path.lexists(os.path.join(path, name)))


def holds_store_keys(path: str) -> bool:
    """Does ``path`` hold a key only a store has? A store synced down from a bucket, or
    copied without tmp/ and locks/, has those alone."""
    return any(os.path.lexists(os.path.join(path, name)) for name in _STORE_KEYS)


def may_hold_store(path: str) -> bool:
    """Is directory ``path`` a store, or empty, so that a writer may lay one out in it
    (and not among other files: a path mistyped for a store's)?"""
    if is_store_dir(path) or holds_store_keys(path):
        return True
    with os.scandir(path) as entries:
        return all(entry.name == "tmp" for entry in entries)  # tmp/: opened, never written


def store_holding(path: str) -> str | None:
    """The store directory that ``path`` (real, links resolved) is, or lies in; None if
    there is none.

    A project's ``.artifacts`` holds everything below it. In a store of another name,
    only an entry of its layout makes a path inside it: a directory above that merely
    looks like a store (``~`` with ``tmp/`` and ``refs/``) does not count.
    """
    here = os.path.realpath(path)
    below = None  # the name on the way down from ``here`` to ``path``
    while True:
        inside = below is None or below in STORE_ENTRIES or os.path.basename(here) == STORE_DIR
        if inside and is_store_dir(here):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here, below = parent, os.path.basename(here)


def check_not_in_store(path: str) -> None:
    """Refuse to make a store at ``path`` inside another's directory (``S/sub``,
    ``S/refs/x``), whatever its name: its files would be the other store's keys."""
    here = os.path.realpath(path)
    while (parent := os.path.dirname(here)) != here:
        if is_store_dir(parent):
            raise UsageError(
                f"{path} is inside the store at {parent}: give a path outside it for a store"
            )
        here = parent
