"""Between the user's files and the store: staging, references, download, verify."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat as stat_mod
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import msgpack

from cas import ObjectStore
from cas.errors import CasError, InvalidObjectError, UsageError
from cas.objects import TreeEntry
from cas.threads import worker_pool

from .cache import DownloadCache, download_cache
from .destinations import VCS_METADATA, check_destinations
from .dirwalk import walk_up
from .errors import LocalPathError, ReferenceGoneError
from .hashing import blob_id_of_file
from .names import split_path
from .partfiles import (
    LiveParts,
    PartFile,
    is_part_name,
    remove_abandoned,
    remove_if_abandoned,
)
from .references import Fetcher, unchecked
from .staging import make_staging_dir


class LocalFile(NamedTuple):
    """A file staged for the next version; it is read when the version is logged."""

    path: str
    size: int
    mtime_ns: int
    ctime_ns: int  # changes with the bytes even when the mtime is put back
    inode: int
    executable: bool
    # policy="immutable": the user promised it will not change before the log, so it
    # is not stat'ed again then (artifacts.staleness)
    immutable: bool = False


class Reference(NamedTuple):
    """An object elsewhere, recorded by its URI and digest, never copied."""

    descriptor: dict[str, Any]


_NS_MAX = (1 << 63) - 1


def stat_ns(ns: int) -> int:
    """A file's time in nanoseconds as a staged file keeps it: one past 2262 or before
    1678 (a bad clock, an archive's dates) as the last a signed 64-bit number holds. The
    stat cache then never vouches for the file, as for any file dated in the future."""
    return min(max(ns, -_NS_MAX - 1), _NS_MAX)


def stage_file(path: str, immutable: bool = False) -> LocalFile:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise LocalPathError(f"no such file: {path}") from None
    if not stat_mod.S_ISREG(st.st_mode):
        raise LocalPathError(f"not a regular file: {path}")
    return LocalFile(
        os.path.abspath(path),
        st.st_size,
        stat_ns(st.st_mtime_ns),
        stat_ns(st.st_ctime_ns),
        st.st_ino,
        bool(st.st_mode & 0o100),
        immutable,
    )


def read_descriptor(store: ObjectStore, entry: TreeEntry) -> dict[str, Any]:
    try:
        descriptor = msgpack.unpackb(store.read_blob(entry.id), raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        descriptor = None
    if (
        not isinstance(descriptor, dict)
        or not isinstance(descriptor.get("uri"), str)
        or not isinstance(descriptor.get("digest"), str)
        or type(descriptor.get("size")) is not int
    ):
        raise InvalidObjectError(f"reference {entry.name!r} has no valid descriptor")
    return descriptor


class VerificationError(CasError, ValueError):
    """A directory that does not match the version it is checked against."""

    def __init__(self, root: str, problems: list[str]) -> None:
        self.root = root
        self.problems = problems
        shown = "; ".join(problems[:5]) + (
            f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        )
        super().__init__(f"{root} does not match: {shown}")


def write_files(
    store: ObjectStore,
    root: str,
    files: list[tuple[str, TreeEntry]],
    threads: int = 4,
    on_written: Callable[[int], object] | None = None,
    skip_cache: bool | None = None,
    swept: bool = False,
    allow_missing_references: bool = False,
) -> int:
    """Write each file once, verified, into ``root``; returns bytes written, and calls
    ``on_written(size)`` once per file as it is written.

    Blobs of a bucket store go through the download cache (``artifacts.cache``) unless
    ``skip_cache``: those it holds are copied from it, the others stored in it.

    No corrupt or partial file ever takes a name. Into a new (or empty) ``root``
    everything is written in a hidden staging directory beside it, which one
    rename makes ``root`` at the end: a rename per file costs a quarter of
    creating it. Into a directory with files, each file is written under a
    temporary name and renamed once its bytes are verified (artifacts.partfiles: the
    leftovers of a killed download are removed from each folder written into, unless
    ``swept``, by a checkout that just walked them all). A reference whose object is
    gone raises ReferenceGoneError, or with ``allow_missing_references`` is left out
    with a warning (W&B's download option). Small blobs are
    read from their packs in spans (see ``read_packed_blobs``). Where a file would
    go outside ``root`` or into a store, nothing is written (see check_destinations).
    """
    check_destinations(root, files)
    cache = download_cache(store, skip_cache)
    staging, lock = _staging_dir(root)
    try:
        try:
            written = _write_files(
                store, staging or root, files, threads, on_written, staging, cache, swept,
                allow_missing_references,
            )  # fmt: skip
        except BaseException:
            if staging:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            if cache is not None:
                cache.close()  # its files still written (Ctrl-C) deleted, then trimmed
        if staging:
            try:
                with contextlib.suppress(FileNotFoundError):  # an empty root keeps its mode
                    os.chmod(staging, stat_mod.S_IMODE(os.stat(root).st_mode))
                os.rename(staging, root)  # replaces root only if it is (still) empty
            except OSError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise UsageError(f"{root} filled up while downloading into it: {exc}") from None
    finally:
        if lock is not None:
            os.close(lock)
    return written


def remove_others(
    root: str,
    files: list[tuple[str, TreeEntry]],
    on_removed: Callable[[str], object] | None = None,
) -> None:
    """Delete what ``root`` holds besides ``files``, links to directories and directories
    left empty too; a store below ``root`` (see ``is_store_dir``) is never entered, nor
    is a version control system's own files (:data:`VCS_METADATA`). A download's
    temporary file is no file of the user's: deleted unreported if abandoned, left
    alone if in use (artifacts.partfiles)."""
    keep = {os.path.join(root, *p.split("/")) for p, _ in files}
    for dirpath, dirs, names in walk_up(root, VCS_METADATA):  # children before parents
        links = [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]
        for name in names + links:
            path = os.path.join(dirpath, name)
            if path in keep:
                continue
            if is_part_name(name):
                remove_if_abandoned(path)
            else:
                os.unlink(path)
                if on_removed is not None:
                    on_removed(path)
        if dirpath != root and not os.listdir(dirpath):
            os.rmdir(dirpath)


def _staging_dir(root: str) -> tuple[str, int] | tuple[None, None]:
    """A new directory beside ``root`` to download into, if ``root`` is new or empty, and
    the descriptor holding its lock (see artifacts.staging)."""
    if os.path.lexists(root) and (
        os.path.islink(root)
        or not os.path.isdir(root)
        or not _empty_dir(root)
        or os.path.ismount(root)  # a volume: nothing may be renamed onto it (EBUSY)
    ):
        return None, None  # a file, a link, a mount point or a directory with files
    if os.path.lexists(root) and not os.access(root, os.W_OK, effective_ids=_EFFECTIVE):
        # Renamed over, it would take files though its owner made it read-only.
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), root)
    parent, name = os.path.split(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    return make_staging_dir(parent, name)


_EFFECTIVE = os.access in os.supports_effective_ids


def _empty_dir(path: str) -> bool:
    with os.scandir(path) as entries:  # the first entry answers: no need to list them all
        return next(entries, None) is None


def _write_files(
    store: ObjectStore,
    root: str,
    files: list[tuple[str, TreeEntry]],
    threads: int,
    on_written: Callable[[int], object] | None,
    staging: str | None,
    cache: DownloadCache | None,
    swept: bool,
    allow_missing_references: bool,
) -> int:
    os.makedirs(root, exist_ok=True)
    # A file's folder (as its path spells it) -> that directory, made once: the
    # folders were checked (check_destinations) before anything was written.
    ready: dict[str, str] = {}

    def destination(path: str) -> str:
        folder, _, name = path.rpartition("/")
        parent = ready.get(folder)
        if parent is None:
            parent = os.path.join(root, *folder.split("/")) if folder else root
            if not _makedirs(parent) and not (staging or swept):
                remove_abandoned(parent)  # it held files: maybe a killed download's
            ready[folder] = parent
        split_path(name)  # the name alone: the folder was checked
        return os.path.join(parent, name)

    fetcher = Fetcher()
    live = LiveParts()
    by_id: dict[bytes, list[tuple[str, TreeEntry]]] = {}
    for path, entry in files:
        if entry.kind == "blob":
            by_id.setdefault(entry.id, []).append((path, entry))
    cached = {i for i in by_id if cache.has(i)} if cache is not None else set()
    located = store.locate_packed(by_id.keys() - cached) if by_id else []
    packed = {object_id for object_id, *_ in located}
    rest = [(p, e) for p, e in files if e.kind != "blob" or e.id not in packed]

    def write_packed(chunk: list[tuple[bytes, str, int, int]]) -> int:
        written = 0
        for object_id, payload in store.read_packed_blobs(chunk):
            if cache is not None:
                cache.put_bytes(object_id, payload)
            for path, entry in by_id[object_id]:
                _install(destination(path), payload, entry.executable, direct=bool(staging))
                written += len(payload)
                if on_written is not None:
                    on_written(len(payload))
        return written

    def write_other(item: tuple[str, TreeEntry]) -> int:
        try:
            return write_one(*item)
        except ReferenceGoneError as gone:
            if not allow_missing_references:
                raise
            warnings.warn(f"not downloaded: {gone}", stacklevel=1)  # maybe in a worker thread
            return 0

    def write_one(path: str, entry: TreeEntry) -> int:
        # An executable is made so, through the umask, as git does: never chmod'ed 0o755.
        with live.part(lambda: destination(path), _mode(entry.executable)) as (dest, part):
            tmp = part.path
            # Via its descriptor: opened by name, a file abandoned meanwhile is made again
            if entry.kind == "ref":
                with open(part.fd, "wb", closefd=False) as out:
                    size = fetcher.fetch(read_descriptor(store, entry), out)
            elif cache is not None and cache.copy_to(entry.id, entry.size, tmp):
                size = entry.size
            else:
                with open(part.fd, "wb", closefd=False) as out:
                    size = store.copy_blob_to(entry.id, out)
                if cache is not None:
                    cache.put_file(entry.id, tmp)
            live.check()
            os.replace(tmp, dest)  # only a verified file ever takes the name
        if on_written is not None:
            on_written(size)
        return size

    if threads <= 1 or len(rest) < 2:
        return write_packed(located) + sum(map(write_other, rest))
    # Big files stream in a few threads; the small ones are created by this one:
    # creating files from several threads measured 2-3x slower here (the
    # directory and journal locks), and their bytes are already in memory.
    with worker_pool(threads) as pool:
        try:
            others = pool.map(write_other, rest)
            return write_packed(located) + sum(others)
        except BaseException:
            live.abandon()  # the pool does not wait for the files being written
            raise


def _install(dest: str, data: bytes, executable: bool, direct: bool = False) -> None:
    """Write verified bytes under a temporary name (artifacts.partfiles), then give them
    ``dest``; ``direct``: straight to ``dest``, in a staging directory no one else sees."""
    if not direct:
        with PartFile(dest, _mode(executable)) as part:
            _write_all(part.fd, data)
            os.replace(part.path, dest)
        return
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _mode(executable))
    try:
        _write_all(fd, data)
    except BaseException:
        os.unlink(dest)
        raise
    finally:
        os.close(fd)


def _mode(executable: bool) -> int:
    """A new file's mode, before the umask (or a directory's default ACL) takes from it."""
    return 0o777 if executable else 0o666


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _makedirs(path: str) -> bool:
    """``os.makedirs(path, exist_ok=True)`` without recursion: trees may be deep. Whether
    ``path`` was made (False: it was there)."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
    return bool(missing)


def verify_dir(store: ObjectStore, root: str, files: list[tuple[str, TreeEntry]]) -> None:
    problems = []
    expected = {path for path, _ in files}
    for path, entry in files:
        dest = os.path.join(root, *split_path(path))
        if not os.path.isfile(dest):
            problems.append(f"missing {path}")
        elif entry.kind == "ref":
            checked = not unchecked(read_descriptor(store, entry))
            if checked and os.path.getsize(dest) != entry.size:
                problems.append(f"size differs: {path}")
        elif blob_id_of_file(dest) != entry.id:
            problems.append(f"content differs: {path}")
    for dirpath, _dirs, names in walk_up(root, VCS_METADATA):
        for name in names:
            if is_part_name(name):
                continue  # a download's, live or killed: no file of the user's
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            if rel not in expected:
                problems.append(f"unexpected {rel}")
    if problems:
        raise VerificationError(root, sorted(problems))
