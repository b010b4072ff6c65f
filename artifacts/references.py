"""References: entries that record where an object lives and what it was, not its bytes.

Adding a reference expands it (a directory, or a bucket prefix, into one entry per
object, as W&B does) and records each object's digest and size, and its version
where the store keeps one (S3 ``VersionId``, GCS ``generation``). Fetching one reads
that version when there is one, else the current object only if its digest is the
one recorded: any other bytes raise :class:`ReferenceChangedError` before they are
handed back. ``checksum=False`` records the URI alone and fetches whatever is there.

A descriptor is the msgpack map ``{"uri", "digest", "size"}``, plus ``"version"``
for bucket objects and ``"checksum": False`` for a reference recorded unchecked (see
docs/format.md).
"""

from __future__ import annotations

import base64
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import blake3

from cas.errors import ReferenceChangedError, UsageError
from cas.objects import encode_header
from cas.store import HASH_CHUNK, HASH_THREADS

from . import http_refs
from .dirwalk import walk_up
from .errors import LocalPathError, ReferenceGoneError

SCHEMES = ("file://", "s3://", "gs://", "gcs://", "http://", "https://")
DEFAULT_MAX_OBJECTS = 10_000_000  # W&B's default for a directory or prefix
Descriptor = dict[str, Any]


def expand(
    uri: str, checksum: bool = True, max_objects: int | None = None
) -> list[tuple[str, Descriptor]]:
    """``(path, descriptor)`` of each object ``uri`` names, in path order.

    ``path`` is "" for the object ``uri`` itself, else the object's path under the
    directory or prefix ``uri`` names.
    """
    if not uri.startswith(SCHEMES):
        raise UsageError(f"unsupported reference {uri!r}: use file://, s3://, gs:// or http(s)://")
    limit = DEFAULT_MAX_OBJECTS if max_objects is None else max_objects
    if type(limit) is not int or limit < 1:  # -1 found nothing, then said "not found"
        raise UsageError(f"max_objects is a whole number > 0, not {max_objects!r}")
    objects: Iterable[tuple[str, Descriptor]]
    if uri.startswith("file://"):
        objects = _expand_local(uri, checksum)
    elif not checksum:  # the URI alone: nothing is listed or read
        objects = [("", {"uri": uri, "digest": uri, "size": 0, "checksum": False})]
    elif uri.startswith("s3://"):
        objects = _expand_s3(uri)
    elif uri.startswith(("gs://", "gcs://")):
        objects = _expand_gcs(uri)
    else:
        objects = [("", http_refs.describe(uri))]
    found = list(itertools.islice(objects, limit + 1))  # one past the limit is enough
    if not found:
        raise UsageError(f"referenced object not found: {uri}")
    if len(found) > limit:
        raise UsageError(
            f"{uri} holds more than {limit} objects: pass a larger max_objects to add_reference"
        )
    return sorted(found, key=lambda item: item[0])


def unchecked(descriptor: Descriptor) -> bool:
    # Before "checksum" was written, an unchecked reference's digest was its URI.
    return descriptor.get("checksum") is False or descriptor.get("digest") == descriptor["uri"]


class Fetcher:
    """Copies referenced objects into files, verified; opens each bucket once."""

    def __init__(self) -> None:
        self._filesystems: dict[str, Any] = {}
        self._lock = threading.Lock()

    def fetch(self, descriptor: Descriptor, out: Any) -> int:
        """Write the logged bytes of the object to ``out``; returns their length."""
        uri = descriptor["uri"]
        if not uri.startswith(SCHEMES):
            raise UsageError(f"refusing to fetch reference {uri!r}: not one of {SCHEMES}")
        if uri.startswith("file://"):
            return _fetch_local(descriptor, out)
        if uri.startswith(("http://", "https://")):
            return _fetch_current(http_refs.opened(uri), descriptor, out)
        bucket, key = _split_bucket_uri(uri)
        fs = self._bucket_fs(uri, bucket)
        if unchecked(descriptor):
            return _fetch_current(fs.open(f"{bucket}/{key}", "rb"), descriptor, out)
        if uri.startswith("s3://"):
            return _fetch_s3(fs, bucket, key, descriptor, out)
        return _fetch_gcs(fs, bucket, key, descriptor, out)

    def _bucket_fs(self, uri: str, bucket: str) -> Any:
        scheme = uri.split("://", 1)[0]
        with self._lock:
            fs = self._filesystems.get(f"{scheme}://{bucket}")
            if fs is None:
                fs = self._filesystems[f"{scheme}://{bucket}"] = _bucket_fs(scheme, bucket)
            return fs


# ---- file:// ------------------------------------------------------------------------


def _expand_local(uri: str, checksum: bool) -> Iterator[tuple[str, Descriptor]]:
    path = uri[len("file://") :]
    if os.path.isfile(path):
        yield "", _describe_local(uri, path, checksum)
        return
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(
            f"{path} is not a regular file or a directory: a FIFO, a socket or a device is "
            "never read (a FIFO would wait for a writer); copy what it holds to a file"
        )
    if not os.path.isdir(path):
        raise LocalPathError(f"no such file or directory: {path}")  # W&B: a ValueError
    base = uri if uri.endswith("/") else f"{uri}/"
    for rel in _walk_files(path):
        yield rel, _describe_local(base + rel, os.path.join(path, rel), checksum)


def _walk_files(root: str) -> Iterator[str]:
    """Paths (with "/") of the files below ``root``, following links to files, as W&B."""
    for dirpath, _dirs, names in walk_up(root):  # deep trees too; stores left out
        for name in names:
            full = os.path.join(dirpath, name)
            if os.path.isfile(full):
                yield os.path.relpath(full, root).replace(os.sep, "/")


def _describe_local(uri: str, path: str, checksum: bool) -> Descriptor:
    size = os.path.getsize(path)
    if not checksum:
        return {"uri": uri, "digest": uri, "size": size, "checksum": False}
    with open(path, "rb") as f:
        digest, read = _copy_hashing(f.read, _discard, size)
    if read != size:
        raise UsageError(f"{path} changed while it was read: add the reference again")
    return {"uri": uri, "digest": digest, "size": size}


def _fetch_local(descriptor: Descriptor, out: Any) -> int:
    uri = descriptor["uri"]
    try:
        with open(uri[len("file://") :], "rb") as f:
            digest, size = _copy_hashing(f.read, out.write, descriptor["size"])
    except FileNotFoundError:
        raise ReferenceGoneError(uri, "it no longer exists") from None
    if not unchecked(descriptor) and (digest, size) != (descriptor["digest"], descriptor["size"]):
        raise ReferenceChangedError(uri, f"now {size} bytes with another digest")
    return size


def _copy_hashing(
    read: Callable[[int], bytes], write: Callable[[bytes], object], size: int
) -> tuple[str, int]:
    """Copy until EOF; returns (hex blob id the bytes have if ``size`` long, bytes copied).

    The blob id of a file (see ``blob_id_of_file``), computed as the bytes stream by.
    """
    hasher = blake3.blake3(max_threads=HASH_THREADS)
    hasher.update(encode_header("blob", size))
    copied = 0
    while chunk := read(HASH_CHUNK):
        hasher.update(chunk)
        write(chunk)
        copied += len(chunk)
    return hasher.hexdigest(), copied


def _discard(_chunk: bytes) -> None:
    pass


# ---- buckets ------------------------------------------------------------------------


def _split_bucket_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    if not bucket:
        raise UsageError(f"no bucket in reference {uri!r}")
    return bucket, key


def _bucket_fs(scheme: str, bucket: str) -> Any:
    """The filesystem our own stores use (credentials and endpoint from the environment)."""
    from cas.storage import open_storage

    return open_storage(f"{scheme}://{bucket}").fs  # type: ignore[attr-defined]


def _sync(fs: Any, coroutine_function: Any, *args: Any, **kwargs: Any) -> Any:
    """``coroutine_function(*args, **kwargs)`` run on ``fs``'s event loop."""
    from fsspec.asyn import sync  # here: only bucket references need fsspec's loop

    return sync(fs.loop, coroutine_function, *args, **kwargs)


def _expand_s3(uri: str) -> Iterator[tuple[str, Descriptor]]:
    bucket, key = _split_bucket_uri(uri)
    fs = _bucket_fs("s3", bucket)
    if key and not key.endswith("/"):
        try:
            head = fs.call_s3("head_object", Bucket=bucket, Key=key)
        except FileNotFoundError:
            pass  # not an object: a prefix
        else:
            yield "", _s3_descriptor(uri, head["ETag"], head["ContentLength"], head)
            return
    prefix = f"{key.rstrip('/')}/" if key else ""
    for obj in _s3_latest_objects(fs, bucket, prefix):
        if not obj["Key"].endswith("/"):  # else a folder marker, not a file
            rel = obj["Key"][len(prefix) :]
            uri = f"s3://{bucket}/{prefix}{rel}"
            yield rel, _s3_descriptor(uri, obj["ETag"], obj["Size"], obj)


def _s3_latest_objects(fs: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """The current version of each object under ``prefix``, with its ``VersionId``.

    One listing of versions gives each object's id with its ETag; without the
    permission to list versions, a plain listing (no ids) does.
    """
    pages = _s3_pages(fs, "list_object_versions", Bucket=bucket, Prefix=prefix)
    try:
        first = next(pages)
    except PermissionError:
        for page in _s3_pages(fs, "list_objects_v2", Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])
        return
    for page in itertools.chain([first], pages):
        yield from (v for v in page.get("Versions", []) if v["IsLatest"])


# The fields of a listing page that say where the next page starts -> how to ask for it.
_NEXT_PAGE = {
    "list_object_versions": (
        ("NextKeyMarker", "KeyMarker"),
        ("NextVersionIdMarker", "VersionIdMarker"),
    ),
    "list_objects_v2": (("NextContinuationToken", "ContinuationToken"),),
}


def _s3_pages(fs: Any, method: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    markers = _NEXT_PAGE[method]
    while True:
        page = fs.call_s3(method, **kwargs)
        yield page
        if not page.get("IsTruncated"):
            return
        for answer, ask in markers:
            if page.get(answer):
                kwargs[ask] = page[answer]


def _s3_descriptor(uri: str, etag: str, size: int, meta: dict[str, Any]) -> Descriptor:
    version = meta.get("VersionId")
    return {
        "uri": uri,
        "digest": etag.strip('"'),
        "size": int(size),
        "version": None if version in (None, "null") else version,  # "null": unversioned
    }


def _fetch_s3(fs: Any, bucket: str, key: str, descriptor: Descriptor, out: Any) -> int:
    """One GetObject (of the recorded version, if any): its ETag and length describe
    the very bytes of its body, so they are checked before any is written."""
    uri, version = descriptor["uri"], descriptor.get("version")
    try:
        args = {"VersionId": version} if version else {}
        resp = fs.call_s3("get_object", Bucket=bucket, Key=key, **args)
    except FileNotFoundError:
        raise ReferenceGoneError(uri, "it no longer exists") from None
    body = resp["Body"]
    try:
        etag, size = resp["ETag"].strip('"'), int(resp["ContentLength"])
        if (etag, size) != (descriptor["digest"], descriptor["size"]):
            raise ReferenceChangedError(uri, f"now {size} bytes with ETag {etag}")
        copied = 0
        while chunk := _sync(fs, body.read, HASH_CHUNK):
            out.write(chunk)
            copied += len(chunk)
    finally:
        body.close()
    if copied != size:
        raise ReferenceChangedError(uri, f"{copied} bytes read of {size}")
    return copied


def _expand_gcs(uri: str) -> Iterator[tuple[str, Descriptor]]:
    bucket, key = _split_bucket_uri(uri)
    fs = _bucket_fs("gs", bucket)
    if key and not key.endswith("/"):
        try:
            meta = _gcs_call(fs, "GET", "b/{}/o/{}", bucket, key, json_out=True)
        except FileNotFoundError:
            pass  # not an object: a prefix
        else:
            yield "", _gcs_descriptor(uri, meta)
            return
    prefix = f"{key.rstrip('/')}/" if key else ""
    base = f"{uri.split('://', 1)[0]}://{bucket}/{prefix}"
    params: dict[str, Any] = {"prefix": prefix}
    while True:
        page = _gcs_call(fs, "GET", "b/{}/o", bucket, json_out=True, **params)
        for meta in page.get("items", []):
            if not meta["name"].endswith("/"):  # else a folder marker, not a file
                rel = meta["name"][len(prefix) :]
                yield rel, _gcs_descriptor(base + rel, meta)
        if not page.get("nextPageToken"):
            return
        params["pageToken"] = page["nextPageToken"]


def _gcs_call(fs: Any, *args: Any, **kwargs: Any) -> Any:
    """A JSON-API call through gcsfs (its session, retries and timeouts)."""
    return _sync(fs, fs._call, *args, **kwargs)


def _gcs_descriptor(uri: str, meta: dict[str, Any]) -> Descriptor:
    # md5Hash is what we can check the bytes against; composite objects have only crc32c.
    return {
        "uri": uri,
        "digest": meta.get("md5Hash") or meta["crc32c"],
        "size": int(meta["size"]),
        "version": str(meta["generation"]),
    }


def _fetch_gcs(fs: Any, bucket: str, key: str, descriptor: Descriptor, out: Any) -> int:
    """The recorded generation (or, lacking one, the current generation whose hash is
    the one recorded), read in ranges pinned to it, its md5 checked as it streams."""
    uri, generation = descriptor["uri"], descriptor.get("version")
    pin = {"generation": generation} if generation else {}
    try:
        meta = _gcs_call(fs, "GET", "b/{}/o/{}", bucket, key, json_out=True, **pin)
    except FileNotFoundError:
        gone = f"generation {generation} no longer exists" if generation else "it no longer exists"
        raise ReferenceGoneError(uri, gone) from None
    size = int(meta["size"])
    # Older descriptors recorded the object's etag instead of a hash.
    known = {meta.get("md5Hash"), meta.get("crc32c"), meta.get("etag")} - {None}
    if descriptor["digest"] not in known or size != descriptor["size"]:
        raise ReferenceChangedError(uri, f"now {size} bytes with md5 {meta.get('md5Hash')}")
    import hashlib  # here: loading OpenSSL costs every command a few milliseconds

    md5 = hashlib.md5(usedforsecurity=False)
    offset = 0
    while offset < size:
        end = min(offset + HASH_CHUNK, size) - 1
        _, chunk = _gcs_call(fs,
            "GET", "b/{}/o/{}", bucket, key, alt="media", generation=meta["generation"],
            headers={"Range": f"bytes={offset}-{end}"},
        )  # fmt: skip
        if not chunk:
            break
        md5.update(chunk)
        out.write(chunk)
        offset += len(chunk)
    if offset != size or (
        "md5Hash" in meta and base64.b64encode(md5.digest()).decode() != meta["md5Hash"]
    ):
        raise ReferenceChangedError(uri, "the bytes read do not match its hash")
    return size


# ---- http(s) and unchecked references -----------------------------------------------


def _fetch_current(opened: Any, descriptor: Descriptor, out: Any) -> int:
    """Whatever the URI holds now: for unchecked references, and http(s), whose
    servers give no version to ask for (the size, if recorded, is checked)."""
    uri = descriptor["uri"]
    try:
        with opened as src:
            size = _copy_hashing(src.read, out.write, 0)[1]
    except FileNotFoundError:
        raise ReferenceGoneError(uri, "it no longer exists") from None
    if not unchecked(descriptor) and descriptor["size"] and size != descriptor["size"]:
        raise ReferenceChangedError(uri, f"now {size} bytes, not {descriptor['size']}")
    return size
