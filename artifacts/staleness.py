"""Staged files that changed between being added and being logged.

W&B's ``add_file`` and ``add_dir`` (policy "mutable", the default) copy a file when
it is added. We record its stat then, and read it when the draft is logged only if
the stat cache cannot vouch for the bytes it had then: what makes logs fast. A file
the cache vouches for is logged as it was when added, as W&B logs it, unread. A file
that must be read is stat'ed first (a stat per file read, no more), and one whose
size, mtime, ctime or inode moved since it was added is logged as it is now, with a
:class:`~artifacts.errors.StagedFileChangedWarning`. ``policy="immutable"`` is the
user's promise that the file will not change: it is not stat'ed again.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable

from .errors import StagedFileChangedWarning
from .files import stat_ns

SHOWN = 5  # files named in one warning; the others are counted

# A staged file: the path read, and its (size, mtime_ns, ctime_ns, inode) when added.
Staged = tuple[str, tuple[int, int, int, int]]


def warn_changed(files: Iterable[Staged]) -> None:
    """One warning naming those of ``files`` that changed since they were added (a file
    gone is left to its read to report)."""
    changed = []
    for path, when_added in files:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if (st.st_size, stat_ns(st.st_mtime_ns), stat_ns(st.st_ctime_ns), st.st_ino) != when_added:
            changed.append(path)
    if not changed:
        return
    named = ", ".join(changed[:SHOWN])
    if len(changed) > SHOWN:
        named += f" (+{len(changed) - SHOWN} more)"
    warnings.warn(
        f"{len(changed)} staged file(s) changed after they were added, logged as they are "
        f"now: {named} (W&B would have logged them as they were when added; add a file "
        "with policy='immutable' to promise it will not change)",
        StagedFileChangedWarning,
        stacklevel=2,
    )
