"""Where a download or checkout may write a version's files: never outside its root
(through a link), never into a store."""

from __future__ import annotations

import os

from cas.errors import UsageError
from cas.objects import TreeEntry
from cas.storage.store_dirs import is_store_dir, store_holding

from .names import split_path


def check_destinations(
    root: str, files: list[tuple[str, TreeEntry]], links_removed: bool = False
) -> None:
    """Refuse, before anything is written, to write ``files`` into ``root`` if one would
    land outside it (through a link) or in a store: ``root`` in one, or one below it.

    ``links_removed``: every link or file standing in a file's way will have been
    deleted (a checkout), so only the real directories on its path count.
    """
    store = store_holding(root)
    if store is not None:
        raise UsageError(f"{root} is in the store at {store}; write somewhere else")
    real_root = os.path.realpath(root)
    clear = {real_root}  # real directories below no store between them and the root
    seen: set[str] = set()
    for path, _ in files:
        folder = path.rpartition("/")[0]
        if folder in seen:
            continue  # once per folder, not once per file
        seen.add(folder)
        segments = split_path(folder) if folder else ()
        if links_removed:
            real = _real_dirs(real_root, segments)
        else:
            real = os.path.realpath(os.path.join(root, *segments))
            if os.path.commonpath([real_root, real]) != real_root:
                raise UsageError(f"refusing to write {path!r} outside {root}")
        way = []
        while real not in clear:
            if is_store_dir(real):
                raise UsageError(
                    f"{path!r} would be written into the store at {real}; "
                    "write the version somewhere else"
                )
            way.append(real)
            real = os.path.dirname(real)
        clear.update(way)


def _real_dirs(real_root: str, segments: tuple[str, ...]) -> str:
    """The deepest directory of ``segments`` below ``real_root`` reached through real
    directories only (no link, no file)."""
    here = real_root
    for name in segments:
        below = os.path.join(here, name)
        if os.path.islink(below) or not os.path.isdir(below):
            break
        here = below
    return here
