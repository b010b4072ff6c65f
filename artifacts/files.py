"""Between the user's files and the store: staging, references, download, verify."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import stat as stat_mod
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import blake3
import msgpack

from cas import ObjectStore
from cas.errors import CasError, InvalidObjectError, UsageError
from cas.objects import TreeEntry, encode_header
from cas.store import HASH_CHUNK, HASH_THREADS

from .names import split_path

STORE_DIR = ".artifacts"  # the default store's directory (artifacts.run.STORE_DIR)


REFERENCE_SCHEMES = ("file://", "s3://", "gs://", "gcs://", "http://", "https://")


class LocalFile(NamedTuple):
    """A file staged for the next version; it is read when the version is logged."""

    path: str
    size: int
    mtime_ns: int
    ctime_ns: int  # changes with the bytes even when the mtime is put back
    inode: int
    executable: bool


class Reference(NamedTuple):
    """An object elsewhere, recorded by its URI and digest, never copied."""

    descriptor: dict[str, Any]


def stage_file(path: str) -> LocalFile:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    if not stat_mod.S_ISREG(st.st_mode):
        raise UsageError(f"not a regular file: {path}")
    return LocalFile(
        os.path.abspath(path),
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
        bool(st.st_mode & 0o100),
    )


def blob_id_of_file(path: str) -> bytes:
    """The id this file would have as a blob, without storing it."""
    hasher = blake3.blake3(max_threads=HASH_THREADS)
    hasher.update(encode_header("blob", os.path.getsize(path)))
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            hasher.update(chunk)
    return hasher.digest()


def reference_descriptor(uri: str, checksum: bool = True) -> tuple[str, dict[str, Any]]:
    """(default entry name, descriptor) for an external object."""
    import fsspec

    if uri.startswith("file://"):
        path = uri[len("file://") :]
        if not os.path.isfile(path):
            raise UsageError(f"no such file: {path}")
        digest = blob_id_of_file(path).hex() if checksum else uri
        return os.path.basename(path), {
            "uri": uri,
            "digest": digest,
            "size": os.path.getsize(path),
        }
    if not uri.startswith(REFERENCE_SCHEMES[1:]):
        raise UsageError(f"unsupported reference {uri!r}: use file://, s3://, gs:// or http(s)://")
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        info = fs.info(path)
    except FileNotFoundError:
        raise UsageError(f"referenced object not found: {uri}") from None
    except Exception as exc:
        raise UsageError(f"cannot read reference {uri}: {exc}") from None
    digest = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("crc32c")
    descriptor = {
        "uri": uri,
        "digest": str(digest).strip('"') if digest and checksum else uri,
        "size": int(info.get("size") or 0),
        "version": info.get("VersionId") or info.get("generation"),
    }
    return uri.rstrip("/").rsplit("/", 1)[-1], descriptor


def read_descriptor(store: ObjectStore, entry: TreeEntry) -> dict[str, Any]:
    try:
        descriptor = msgpack.unpackb(store.read_blob(entry.id), raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        descriptor = None
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("uri"), str):
        raise InvalidObjectError(f"reference {entry.name!r} has no valid descriptor")
    return descriptor


@dataclass(frozen=True)
class Entry:
    """One file of a logged version, as the manifest lists it."""

    path: str
    digest: str  # hex id of the blob (or of a reference's descriptor)
    size: int
    executable: bool = False
    ref: str | None = None  # the URI, for references

    @classmethod
    def from_tree_entry(cls, store: ObjectStore, path: str, entry: TreeEntry) -> Entry:
        ref = read_descriptor(store, entry)["uri"] if entry.kind == "ref" else None
        return cls(path, entry.id.hex(), entry.size, entry.executable, ref)


class VerificationError(CasError):
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
) -> int:
    """Write each file once, verified, into ``root``; returns bytes written.

    No corrupt or partial file ever takes a name. Into a new (or empty) ``root``
    everything is written in a hidden staging directory beside it, which one
    rename makes ``root`` at the end: a rename per file costs a quarter of
    creating it. Into a directory with files, each file is written under a
    temporary name and renamed once its bytes are verified. Small blobs are
    read from their packs in spans (see ``read_packed_blobs``).
    """
    staging = _staging_dir(root)
    try:
        written = _write_files(store, staging or root, files, threads, on_written, staging)
    except BaseException:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    if staging:
        try:
            os.rename(staging, root)  # replaces root only if it is (still) empty
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise UsageError(f"{root} filled up while downloading into it: {exc}") from None
    return written


def _staging_dir(root: str) -> str | None:
    """A new directory beside ``root`` to download into, if ``root`` is new or empty."""
    if os.path.lexists(root) and (
        os.path.islink(root) or not os.path.isdir(root) or not _empty_dir(root)
    ):
        return None  # a file, a link or a directory with files: written in place
    parent, name = os.path.split(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix=f".{name[:40]}.part-", dir=parent)


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
) -> int:
    os.makedirs(root, exist_ok=True)
    real_root = os.path.realpath(root)
    # A file's folder (as its path spells it) -> that directory, made and checked to
    # lie inside the root: once per folder, not once per file.
    ready: dict[str, str] = {}

    def destination(path: str) -> str:
        folder, _, name = path.rpartition("/")
        parent = ready.get(folder)
        if parent is None:
            parent = os.path.join(root, *split_path(folder)) if folder else root
            _makedirs(parent)
            real_parent = os.path.realpath(parent)
            if os.path.commonpath([real_root, real_parent]) != real_root:
                raise UsageError(f"refusing to write {path!r} outside {root}")
            ready[folder] = parent
        split_path(name)  # the name alone: the folder passed above
        return os.path.join(parent, name)

    by_id: dict[bytes, list[tuple[str, TreeEntry]]] = {}
    for path, entry in files:
        if entry.kind == "blob":
            by_id.setdefault(entry.id, []).append((path, entry))
    located = store.locate_packed(by_id) if by_id else []
    packed = {object_id for object_id, *_ in located}
    rest = [(p, e) for p, e in files if e.kind != "blob" or e.id not in packed]

    def write_packed(chunk: list[tuple[bytes, str, int, int]]) -> int:
        written = 0
        for object_id, payload in store.read_packed_blobs(chunk):
            for path, entry in by_id[object_id]:
                _install(destination(path), payload, entry.executable, direct=bool(staging))
                written += len(payload)
                if on_written is not None:
                    on_written(len(payload))
        return written

    def write_other(item: tuple[str, TreeEntry]) -> int:
        path, entry = item
        dest = destination(path)
        tmp = _tmp_name(dest)
        try:
            with open(tmp, "wb") as out:
                if entry.kind == "ref":
                    size = _copy_reference(read_descriptor(store, entry), out)
                else:
                    size = store.copy_blob_to(entry.id, out)
            if entry.executable:
                os.chmod(tmp, 0o755)
            os.replace(tmp, dest)  # only a verified file ever takes the name
            if on_written is not None:
                on_written(size)
            return size
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    if threads <= 1 or len(rest) < 2:
        return write_packed(located) + sum(map(write_other, rest))
    # Big files stream in a few threads; the small ones are created by this one:
    # creating files from several threads measured 2-3x slower here (the
    # directory and journal locks), and their bytes are already in memory.
    with ThreadPoolExecutor(threads) as pool:
        others = pool.map(write_other, rest)
        return write_packed(located) + sum(others)


def _tmp_name(dest: str) -> str:
    # A short name: "<name>.part-<pid>" would pass NAME_MAX for a 250-byte name.
    return os.path.join(os.path.dirname(dest), f".part-{os.getpid()}-{next(_tmp_names)}")


def _install(dest: str, data: bytes, executable: bool, direct: bool = False) -> None:
    """Write verified bytes under a temporary name, then give them ``dest``;
    ``direct``: straight to ``dest``, in a staging directory no one else sees."""
    tmp = dest if direct else _tmp_name(dest)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o777 if executable else 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        if executable:
            os.chmod(tmp, 0o755)
        if not direct:
            os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_tmp_names = itertools.count()


def _makedirs(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)`` without recursion: trees may be deep."""
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


def _copy_reference(descriptor: dict[str, Any], out: Any) -> int:
    import fsspec

    uri = descriptor.get("uri")
    if not isinstance(uri, str) or not uri.startswith(REFERENCE_SCHEMES):
        raise UsageError(f"refusing to fetch reference {uri!r}: not one of {REFERENCE_SCHEMES}")
    with fsspec.open(uri, "rb") as src:
        data_len = 0
        while chunk := src.read(1 << 20):
            out.write(chunk)
            data_len += len(chunk)
    return data_len


def verify_dir(store: ObjectStore, root: str, files: list[tuple[str, TreeEntry]]) -> None:
    problems = []
    expected = {path for path, _ in files}
    for path, entry in files:
        dest = os.path.join(root, *split_path(path))
        if not os.path.isfile(dest):
            problems.append(f"missing {path}")
        elif entry.kind == "ref":
            if os.path.getsize(dest) != entry.size:
                problems.append(f"size differs: {path}")
        elif blob_id_of_file(dest) != entry.id:
            problems.append(f"content differs: {path}")
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            if rel not in expected:
                problems.append(f"unexpected {rel}")
    if problems:
        raise VerificationError(root, sorted(problems))
