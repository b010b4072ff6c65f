"""Staged files that changed between being added and being logged.

W&B's ``add_file`` and ``add_dir`` (policy "mutable", the default) copy a file when
it is added. We record its stat then, and read it when the draft is logged: that is
what makes logs fast. So that this is never silent, logging stats each staged file
again (a stat, never a read; a directory is scanned again), and a file whose size,
mtime, ctime or inode moved is logged as it is now, with a
:class:`~artifacts.errors.StagedFileChangedWarning`. ``policy="immutable"`` is the
user's promise that the file will not change: it is not looked at again.
"""

from __future__ import annotations

import warnings

from .draft import Draft
from .errors import StagedFileChangedWarning
from .files import LocalFile, stage_file
from .scan import DirScan, scan_tree
from .snapshot import DirSource

SHOWN = 5  # files named in a directory's warning; the others are counted

_ADVICE = (
    "(W&B would have logged it as it was when added; add it with policy='immutable' "
    "to promise it will not change)"
)


def refresh(draft: Draft) -> None:
    """Replace each staged file's stat with its stat now, warning for those that moved;
    files promised immutable are left as staged."""
    for path, staged in list(draft.edits.items()):
        if isinstance(staged, LocalFile) and not staged.immutable:
            now = stage_file(staged.path)
            if _stat(now) != _stat(staged):
                warnings.warn(
                    f"{staged.path} changed after it was added: it is logged as it is now "
                    + _ADVICE,
                    StagedFileChangedWarning,
                    stacklevel=4,
                )
                draft.edits[path] = now
        elif isinstance(staged, DirSource) and not staged.immutable:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the scan's own warnings: add_dir gave them
                now_scan = scan_tree(staged.scan.path)
            if now_scan.signature != staged.scan.signature:
                changed = _changed_files(staged.scan, now_scan)
                if changed:
                    _warn_dir(staged.scan.path, changed)
                draft.edits[path] = DirSource(now_scan)


def _stat(f: LocalFile) -> tuple[int, int, int, int]:
    return f.size, f.mtime_ns, f.ctime_ns, f.inode


def _changed_files(before: DirScan, now: DirScan) -> list[str]:
    """The paths (below the directory) of files changed, added or removed, sorted."""
    old = {"/".join(rel): _stat(f) for rel, f in before.iter_files()}
    changed = [
        "/".join(rel) for rel, f in now.iter_files() if old.pop("/".join(rel), None) != _stat(f)
    ]
    return sorted(changed + list(old))


def _warn_dir(directory: str, changed: list[str]) -> None:
    named = ", ".join(changed[:SHOWN]) + (
        f" (+{len(changed) - SHOWN} more)" if len(changed) > SHOWN else ""
    )
    warnings.warn(
        f"{len(changed)} file(s) of {directory} changed after it was added: {named}; "
        "the directory is logged as it is now " + _ADVICE,
        StagedFileChangedWarning,
        stacklevel=4,
    )
