"""What ``add_dir`` does with a symlink, a special file or a name it meets (docs/artifacts.md,
section 10): a link to a file inside the root is staged as that file; one leading
outside, or to nothing, is refused; a linked directory, a FIFO, a socket or a device is
skipped with a warning (never opened: reading a FIFO waits for a writer); a name no
version can hold (not UTF-8, a backslash, the store's name) is refused, named."""

from __future__ import annotations

import os
import stat
import warnings

from cas.errors import InvalidNameError, UsageError
from cas.objects import MAX_NAME_BYTES, validate_entry_name
from cas.storage.store_dirs import STORE_DIR

from .errors import LocalPathError
from .files import LocalFile, stage_file
from .names import logical_path


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


def check_names(directory: str, names: list[str]) -> None:
    """Refuse a directory holding a name no version can hold, before anything is read.
    One look at all its names joined; each is checked alone only on suspicion (about a
    twentieth of a file's stat)."""
    text = "\0".join(names)
    if (
        text.isascii()  # then as many bytes as characters, and lower() is casefold()
        and "\\" not in text
        and STORE_DIR not in text.lower()
        and max(map(len, names), default=0) <= MAX_NAME_BYTES
    ):
        return
    for name in names:
        try:
            validate_entry_name(name)
        except InvalidNameError as exc:
            raise unloggable(os.path.join(directory, name), exc.reason) from None


def path_of_file(local_path: str, name: str | None) -> tuple[str, ...]:
    """Where ``add_file`` puts a file: at ``name``, else at its own name, refused naming
    the file if no version can hold that."""
    if name is not None:
        return logical_path(name)
    try:
        return logical_path(os.path.basename(local_path))
    except InvalidNameError as exc:
        raise unloggable(os.path.abspath(local_path), exc.reason) from None


def unloggable(path: str, reason: str) -> LocalPathError:
    """The error for a local file whose name no version can hold; its path shown with
    any byte that is no UTF-8 escaped (``\\xff``): as it is, it could not be printed."""
    shown = os.fsencode(path).decode("utf-8", "backslashreplace")
    return LocalPathError(f"cannot log {shown} ({reason}): rename it")
