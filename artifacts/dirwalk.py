"""Walking a directory that files are checked out into, however deep it is."""

from __future__ import annotations

import os
from collections.abc import Iterator

from cas.errors import UsageError
from cas.storage.store_dirs import is_store_dir


def walk_up(
    top: str, leave: frozenset[str] = frozenset()
) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(top, topdown=False)`` without recursion: trees may be deep, and before
    Python 3.12 os.walk recurses once a level. Links to directories are listed in
    ``dirs`` and not followed. A directory that may not be listed raises UsageError
    (os.walk skips it: a checkout would leave its files, a verify pass over them); one
    gone since it was listed is skipped. A store below ``top`` (``is_store_dir``) is no
    part of what it holds: it is neither listed nor entered, and nor is an entry named
    in ``leave``."""
    found = []  # (dirpath, dirs, files), every parent before its children
    stack = [top]
    while stack:
        dirpath = stack.pop()
        dirs, files, below = [], [], []
        try:
            with os.scandir(dirpath) as entries:
                for entry in entries:
                    if entry.name in leave:
                        continue
                    if not entry.is_dir():
                        files.append(entry.name)
                    elif entry.is_symlink():
                        dirs.append(entry.name)
                    elif not is_store_dir(entry.path):
                        dirs.append(entry.name)
                        below.append(entry.path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise UsageError(f"cannot read {dirpath}: {exc.strerror}; make it readable") from None
        found.append((dirpath, dirs, files))
        stack.extend(below)
    return reversed(found)
