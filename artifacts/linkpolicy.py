"""What ``add_dir`` does with a symlink or a special file it meets (docs/artifacts.md,
section 10): a link to a file inside the root is staged as that file; one leading
outside, or to nothing, is refused; a linked directory, a FIFO, a socket or a device is
skipped with a warning (never opened: reading a FIFO waits for a writer)."""

from __future__ import annotations

import os
import stat
import warnings

from cas.errors import UsageError

from .files import LocalFile, stage_file


def follow_link(entry: os.DirEntry[str], real_root: str, root: str) -> LocalFile | None:
    """A link's target as the symlink policy stages it; None for what is skipped,
    with a warning: a link to a directory, and anything not a regular file."""
    if not entry.is_symlink():
        skip_special(entry.path)
        return None
    target = os.path.realpath(entry.path)
    remedy = f"copy its target into {root}, or remove the link"
    if os.path.commonpath([real_root, target]) != real_root:
        raise UsageError(f"symlink {entry.path} points outside {root}: {remedy}")
    if os.path.isdir(target):
        warnings.warn(f"not following symlinked directory {entry.path}", stacklevel=5)
        return None
    if not os.path.lexists(target):
        raise UsageError(f"symlink {entry.path} points to nothing: {remedy}")
    if not os.path.isfile(target):
        skip_special(entry.path)
        return None
    return stage_file(target)


def skip_special(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:  # gone since it was listed
        return
    kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
    warnings.warn(f"skipping {path}: a {kind}, not a regular file", stacklevel=6)
