"""A version's files on disk: ``download``, ``checkout``, ``verify``."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
from collections.abc import Iterator

from cas.errors import NotFoundError, UsageError

from ..destinations import check_destinations
from ..errors import UnsavedFilesError
from ..files import write_files
from ..unsaved import survey
from . import context
from .commands import Commands
from .output import bar, count, human, progress_shown


def directory(path: str | None) -> str | None:
    """``path`` as a directory to write into or read: refused when it is empty (an unset
    shell variable, which meant the working directory or the default) or a file stands
    on it or above it (the OS says only "File exists" or "Not a directory")."""
    if path is None:
        return None
    if not path:
        raise UsageError("an empty DIR (an unset variable?): give a directory, such as ./data")
    here = os.path.abspath(path)
    while not os.path.lexists(here):
        here = os.path.dirname(here)
    if os.path.islink(here) and not os.path.exists(here):
        raise UsageError(
            f"{here} is a symlink to {os.readlink(here)}, which does not exist (or loops): "
            "give a directory"
        )
    if not os.path.isdir(here):
        raise UsageError(f"{here} is a file, not a directory: give a directory")
    return path


@contextlib.contextmanager
def writing_into(root: str) -> Iterator[None]:
    """Name ``root`` when the OS refuses a write there: its error names the temporary
    file or staging directory written first (``.out.part-x1y2``), which the user never
    asked for; a full disk's, met writing a file's bytes, names nothing at all."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT) and (
            exc.filename is None or _within(exc.filename, root)  # a write names no file
        ):
            full = "no space left on" if exc.errno == errno.ENOSPC else "disk quota exceeded on"
            raise UsageError(
                f"{full} the device holding {root}: free some space there, or give a "
                "directory on a disk with room"
            ) from None
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM) or not _within(
            exc.filename, root
        ):
            raise
        refused = _refusing(exc.filename, root)
        fix = "give a directory you can write to" if refused == root else "make it writable"
        raise UsageError(f"cannot write into {refused}: {exc.strerror}; {fix}") from None


def _refusing(filename: str, root: str) -> str:
    """The directory that refused a write at ``filename``: the one holding it, below
    ``root`` (a download's temporary file, a file checkout deletes); else ``root``."""
    path, top = os.path.abspath(filename), os.path.abspath(root)
    if not path.startswith(top + os.sep) or os.path.dirname(path) == top:
        return root
    return os.path.join(root, os.path.relpath(os.path.dirname(path), top))


def _within(filename: object, root: str) -> bool:
    """Is ``filename`` ``root``, above it, below it, or the staging directory beside it?"""
    if not isinstance(filename, str):
        return False
    path, root = os.path.abspath(filename), os.path.abspath(root)
    staging = os.path.join(os.path.dirname(root), f".{os.path.basename(root)[:40]}.part-")
    return path.startswith((staging, root + os.sep)) or (root + os.sep).startswith(path + os.sep)


def cmd_download(args: argparse.Namespace) -> int:
    if args.dir is not None and args.root is not None:
        raise UsageError("give the directory as DIR or as --root, not both")
    given = directory(args.dir if args.dir is not None else args.root)
    registry = context.open_registry(args)
    artifact = context.load(registry, context.spec(args, args.spec), args.type)
    root = given or artifact.default_root()
    files = artifact.iter_entries(args.path_prefix)
    if args.path_prefix and not files:
        raise NotFoundError(f"{artifact.qualified_name} has no files under {args.path_prefix!r}")
    unchanged: set[str] = set()
    if not args.force and os.path.isdir(root):  # what a file there holds is not lost
        check_destinations(root, files)  # what may never be written there says so first
        found = survey(registry.objects, root, files, others=False)
        if found.unsaved:
            raise UnsavedFilesError(root, found.unsaved, "download")
        unchanged = found.unchanged
        files = [(path, entry) for path, entry in files if path not in unchanged]
    with writing_into(root):
        if progress_shown():
            with bar(sum(e.size for _, e in files), "downloading") as downloading:
                written = write_files(registry.objects, root, files, on_written=downloading.update)
        else:
            written = write_files(registry.objects, root, files)
    there = f" ({len(unchanged)} already there)" if unchanged else ""
    print(
        f"downloaded {len(files)} files ({human(written)}) of {artifact.qualified_name} to "
        f"{root}{there}"
    )
    return 0


def cmd_checkout(args: argparse.Namespace) -> int:
    directory(args.dir)
    artifact = context.load(context.open_registry(args), context.spec(args, args.spec))
    written: list[int] = []  # each file's size, as it is written
    removed: list[str] = []
    # The bar is drawn only on a terminal.
    with writing_into(args.dir), bar(artifact.size, "downloading") as downloading:
        artifact.checkout(
            args.dir,
            on_written=lambda size: (written.append(size), downloading.update(size)),
            on_removed=removed.append,
            force=args.force,
        )
    extra = f", removed {count(len(removed), 'other file')}" if removed else ""
    files = count(len(written), "file") + " written"
    print(f"checked out {artifact.qualified_name} into {args.dir} ({files}{extra})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    directory(args.dir)
    artifact = context.load(context.open_registry(args), context.spec(args, args.spec))
    if not os.path.isdir(args.dir):
        raise FileNotFoundError(2, "no such directory", args.dir)
    artifact.verify(args.dir)
    print(f"ok: {args.dir} matches {artifact.qualified_name}")
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "download",
        cmd_download,
        "write a version's files into a directory",
        "artifacts download dataset:v2 ./data\n"
        "artifacts download team/vision/dataset:latest --root ./data --type dataset\n"
        "artifacts download dataset:latest ./data --path-prefix images/",
    )
    p.add_argument("spec", metavar="NAME:VER")
    p.add_argument("dir", metavar="DIR", nargs="?", help="default: ./artifacts/NAME:VER")
    p.add_argument("--root", metavar="DIR", help="the same as DIR (W&B's option)")
    p.add_argument("--type", help="refuse the version unless the artifact has this type")
    p.add_argument("--path-prefix", metavar="P", help="only files whose path starts with P")
    p.add_argument(
        "--force", action="store_true", help="overwrite files whose bytes no version holds"
    )

    p = commands.add(
        "checkout",
        cmd_checkout,
        "make a directory hold exactly a version (deletes other files in it)",
        "artifacts checkout model:best ./model\nartifacts checkout dataset:v2 ./data --force",
    )
    p.add_argument("spec", metavar="NAME:VER")
    p.add_argument("dir", metavar="DIR")
    p.add_argument(
        "--force",
        action="store_true",
        help="delete or overwrite files whose bytes no version holds (refused without it)",
    )

    p = commands.add(
        "verify",
        cmd_verify,
        "check that a directory holds exactly a version's files",
        "artifacts verify dataset:v2 ./data",
    )
    p.add_argument("spec", metavar="NAME:VER")
    p.add_argument("dir", metavar="DIR")
