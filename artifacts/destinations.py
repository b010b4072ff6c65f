"""Where a download or checkout may write a version's files: never outside its root
(through a link), never into a store or a version control system's own files."""

from __future__ import annotations

import contextlib
import os
import stat

from cas.errors import UsageError
from cas.objects import TreeEntry
from cas.storage.store_dirs import is_store_dir, store_holding

from .names import split_path

# A version control system's own files (a directory, or git's ".git" file in a worktree
# or submodule): checkout leaves them as it leaves a store, so that a checkout into a
# project's root, which deletes every other file, leaves what its history can restore;
# and neither it nor a download writes a version's own (a project logged whole) there.
VCS_METADATA = frozenset({".git", ".hg", ".svn"})


def check_destinations(
    root: str, files: list[tuple[str, TreeEntry]], links_removed: bool = False
) -> None:
    """Refuse, before anything is written, to write ``files`` into ``root`` if one would
    land outside it (through a link) or in a store: ``root`` in one, or one below it;
    or if something of the user's is in the way: a file where the version has a
    directory, a directory where it has a file (a download deletes neither).

    ``links_removed``: every link or file standing in a file's way will have been
    deleted (a checkout), so only the real directories on its path count.
    """
    store = store_holding(root)
    if store is not None:
        raise UsageError(f"{root} is in the store at {store}; write somewhere else")
    for path, _ in files:  # first: neither "in the way" nor deleted, but never touched
        if any(name in path for name in VCS_METADATA):  # rare: then look closer
            _check_vcs(root, path)
    real_root = os.path.realpath(root)
    clear = {real_root}  # real directories below no store between them and the root
    seen: set[str] = set()
    present: dict[str, str] = {}  # folders there already -> their real path: files may block
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
            if os.path.isdir(real):
                present[folder] = real
        way = []
        while real not in clear:
            if is_store_dir(real):
                raise UsageError(
                    f"{path!r} would be written into the store at {real}; "
                    "write the version somewhere else"
                )
            if not links_removed and os.path.lexists(real) and not os.path.isdir(real):
                raise _in_the_way(root, real_root, real, path, "a file where it has a directory")
            way.append(real)
            real = os.path.dirname(real)
        clear.update(way)
    base = len(os.fsencode(os.path.abspath(root))) + _STAGING_LONGER
    limit = _path_max(root)
    for path, _ in files:
        folder, _, name = path.rpartition("/")
        # The file's path, or its temporary file's, must be one the system can name.
        longest = base + 1 + max(len(path.encode()), len(folder.encode()) + 1 + _PART_NAME)
        if longest >= limit:
            raise _too_long(root, path, limit)
        if links_removed:  # what stands on a file is deleted first: never a store
            dest = os.path.join(root, path)
            if os.path.isdir(dest) and not os.path.islink(dest) and is_store_dir(dest):
                raise UsageError(
                    f"{dest} is a store, where the version has the file {path!r}: checkout "
                    "never deletes a store; move it, or check out into another directory"
                )
        if folder in present:
            real = os.path.join(present[folder], name)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISDIR(os.lstat(real).st_mode):
                    raise _in_the_way(
                        root, real_root, real, path, "a directory where it has a file"
                    )


def _check_vcs(root: str, path: str) -> None:
    """Refuse a version's file at or below a version control system's own files there."""
    segments = path.split("/")
    for i, name in enumerate(segments):
        own = os.path.join(root, *segments[: i + 1])
        if name in VCS_METADATA and os.path.lexists(own):
            raise UsageError(
                f"{own} is a version control system's own, and the version has {path!r} "
                "there: it is never written over; move it aside, or write the version into "
                "another directory"
            )


# A staging directory's path is longer than its root's by at most 15 bytes
# (".<name[:40]>.part-<8 hex>" beside "<name>"), a temporary file's name at most 32
# (".part-<pid>-<n>").
_STAGING_LONGER = 16
_PART_NAME = 32


def _path_max(root: str) -> int:
    """The longest path, NUL included, the system takes on the filesystem of ``root``."""
    here = os.path.abspath(root)
    while not os.path.isdir(here):
        here = os.path.dirname(here)
    try:
        return os.pathconf(here, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 4096  # Linux's


def _too_long(root: str, path: str, limit: int) -> UsageError:
    shown = path if len(path) <= 80 else f"{path[:40]}…{path[-30:]}"
    return UsageError(
        f"the version's {shown!r} would be longer than this system allows below {root} "
        f"({limit} bytes, PATH_MAX): download into a directory with a shorter path, or "
        "other files alone (--path-prefix, path_prefix=)"
    )


def _in_the_way(root: str, real_root: str, real: str, path: str, what: str) -> UsageError:
    shown = os.path.join(root, os.path.relpath(real, real_root))
    return UsageError(
        f"{shown} is in the way of the version's {path!r} ({what}): move it, or download "
        "into another directory"
    )


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
