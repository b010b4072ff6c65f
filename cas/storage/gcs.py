"""Storage on Google Cloud Storage, with real conditional writes.

gcsfs has no way to pass ``ifGenerationMatch`` through its file API, so writes
go to the JSON API directly, through the filesystem's authenticated session:
``mode="create"`` is ``ifGenerationMatch=0`` and ``IfMatch(token)`` is
``ifGenerationMatch=<generation>``. Tokens are object generations (decimal
strings), and the server checks them atomically.

Uploads use ``uploadType=multipart`` (metadata and bytes in one request)
because that is the upload type fake-gcs-server checks conditions on as well;
files above :attr:`GCSStorage.multipart_threshold` use a resumable upload with
the condition on its initiation, which GCS checks when the upload completes
(fake-gcs-server ignores conditions on resumable uploads).

Real GCS limits writes to one object to about one per second; a hot ref will
see 429s, which gcsfs retries.
"""

from __future__ import annotations

import os

# gcsfs swaps in its gRPC "extended" filesystem unless told not to; emulators and
# our raw JSON calls need the plain HTTP one. Must be set before gcsfs is imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import asyncio  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Awaitable, Callable, Iterator  # noqa: E402
from typing import Any, TypeVar  # noqa: E402
from urllib.parse import quote  # noqa: E402

from fsspec.asyn import sync  # noqa: E402
from gcsfs.core import GCSFileSystem, upload_chunk  # noqa: E402
from gcsfs.retry import is_retriable  # noqa: E402

from ..errors import KeyNotFoundError, PreconditionFailedError, UsageError  # noqa: E402
from .base import Capabilities, IfMatch, Mode, Stat  # noqa: E402
from .fsspec import FsspecStorage, _mtime  # noqa: E402

T = TypeVar("T")
_CONTENT_TYPE = "application/octet-stream"


class GCSStorage(FsspecStorage):
    """Keys under ``gs://bucket/prefix``.

    ``storage_options`` go to :class:`gcsfs.GCSFileSystem`: ``project``,
    ``token`` (``"anon"`` for emulators), ``endpoint_url``... With none of them,
    gcsfs finds credentials itself, and ``STORAGE_EMULATOR_HOST=http://host:port``
    sends every request to an emulator, anonymously.
    """

    capabilities = Capabilities(
        atomic_create=True, conditional_update=True, durable=True, local=False
    )
    multipart_threshold: int = 64 * 2**20
    chunk_size: int = 16 * 2**20  # resumable chunks must be multiples of 256 KiB
    list_page_size: int | None = None  # maxResults per listing page; None: the server's

    def __init__(self, url: str, fs: Any | None = None, **storage_options: Any) -> None:
        if fs is None:
            if not url.startswith(("gs://", "gcs://")):
                raise UsageError(f"not a gs:// URL: {url!r}")
            # Other processes write the same keys: a listings cache would serve stale answers.
            storage_options.setdefault("use_listings_cache", False)
            if _emulator() and "token" not in storage_options:
                # An emulator takes no credentials (as Google's own clients assume):
                # do not look for, or refresh, real ones to send it.
                storage_options["token"] = "anon"
            # The plain HTTP filesystem even if gcsfs was imported before us with the
            # extended one enabled: our writes are JSON-API calls on its session.
            fs = GCSFileSystem(skip_instance_cache=True, **storage_options)
        super().__init__(url, fs=fs)
        bucket, _, prefix = self.root.partition("/")
        if not bucket:
            raise UsageError(f"no bucket in {url!r}")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""

    # -- plumbing -----------------------------------------------------------

    def _name(self, key: str) -> str:
        return self.prefix + key

    def _run(self, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        return sync(self.fs.loop, func, *args, **kwargs)

    def _media_url(self, key: str) -> str:
        name = quote(self._name(key), safe="")
        return f"{self.fs._location}/download/storage/v1/b/{quote(self.bucket, safe='')}/o/{name}"

    def _upload_url(self) -> str:
        return f"{self.fs._location}/upload/storage/v1/b/{quote(self.bucket, safe='')}/o"

    # -- reads --------------------------------------------------------------

    def get_versioned(self, key: str) -> tuple[bytes, str]:
        url = self._media_url(key)
        try:
            headers, data = self._run(self.fs._call, "GET", url, alt="media")
            generation = headers.get("X-Goog-Generation")
            if generation is not None:  # GCS and fake-gcs-server send it with the bytes
                return data, str(generation)
        except FileNotFoundError:
            raise KeyNotFoundError(key) from None
        # No generation header: pin the read to the generation the metadata names, so
        # bytes and token still describe one version (404: replaced in between, retry).
        for _ in range(10):
            try:
                generation = self._metadata(key)["generation"]
            except FileNotFoundError:
                raise KeyNotFoundError(key) from None
            try:
                _, data = self._run(self.fs._call, "GET", url, alt="media", generation=generation)
            except FileNotFoundError:
                continue
            return data, str(generation)
        raise OSError(f"{key} kept changing while it was being read")

    def _metadata(self, key: str) -> dict[str, Any]:
        return self._run(
            self.fs._call, "GET", "b/{}/o/{}", self.bucket, self._name(key), json_out=True
        )

    def stat(self, key: str) -> Stat:
        # Ask for the object itself; fs.info would call a key prefix a "directory".
        try:
            meta = self._metadata(key)
        except FileNotFoundError:
            raise KeyNotFoundError(key) from None
        return Stat(size=int(meta["size"]), mtime=_mtime(meta))

    def list(self, prefix: str = "") -> Iterator[str]:
        # One flat (delimiter-less) listing of everything under the prefix, page by page.
        strip = len(self.prefix)
        params: dict[str, Any] = {
            "prefix": self._name(prefix),
            "fields": "items(name),nextPageToken",
        }
        if self.list_page_size:
            params["maxResults"] = self.list_page_size
        while True:
            try:
                page = self._run(
                    self.fs._call, "GET", "b/{}/o", self.bucket, json_out=True, **params
                )
            except FileNotFoundError:
                return
            for item in page.get("items", ()):
                name: str = item["name"]
                if not name.endswith("/"):  # skip "folder" placeholder objects
                    yield name[strip:]
            token = page.get("nextPageToken")
            if not token:
                return
            params["pageToken"] = token

    # -- writes -------------------------------------------------------------

    def put(self, key: str, data: bytes, mode: Mode = "overwrite") -> None:
        condition = _condition(key, mode)
        self._run(self._multipart_upload, key, bytes(data), condition)

    def put_file(self, key: str, local_path: str, mode: Mode = "overwrite") -> None:
        condition = _condition(key, mode)
        size = os.path.getsize(local_path)
        try:
            if size <= self.multipart_threshold:
                with open(local_path, "rb") as f:
                    data = f.read()
                self._run(self._multipart_upload, key, data, condition)
            else:
                self._run(self._resumable_upload, self._name(key), local_path, size, condition)
        except FileExistsError:
            raise PreconditionFailedError(key, "generation did not match") from None

    async def _multipart_upload(self, key: str, data: bytes, condition: dict[str, str]) -> None:
        name = self._name(key)
        # A random boundary: a fixed one could occur inside the data and cut it short.
        boundary = f"cas-{uuid.uuid4().hex}".encode()
        meta = json.dumps({"name": name, "contentType": _CONTENT_TYPE}).encode()
        body = b"".join(
            [
                b"--" + boundary + b"\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n",
                meta,
                b"\r\n--" + boundary + b"\r\nContent-Type: " + _CONTENT_TYPE.encode(),
                b"\r\n\r\n",
                data,
                b"\r\n--" + boundary + b"--\r\n",
            ]
        )
        # Retried here rather than inside gcsfs, to know whether a 412 follows an
        # attempt that got no answer (and may have landed): same policy as gcsfs's.
        for attempt in range(self.fs.retries):
            if attempt:
                await asyncio.sleep(min(random.random() + 2 ** (attempt - 1), 32))
            try:
                await _request_once(
                    self.fs,
                    "POST",
                    self._upload_url(),
                    uploadType="multipart",
                    name=name,
                    headers={"Content-Type": f'multipart/related; boundary="{boundary.decode()}"'},
                    data=body,
                    **condition,
                )
                return
            except FileExistsError:  # gcsfs's name for HTTP 412
                raise PreconditionFailedError(
                    key, "generation did not match", retried=attempt > 0
                ) from None
            except Exception as exc:
                if attempt == self.fs.retries - 1 or not is_retriable(exc):
                    raise

    async def _resumable_upload(
        self, name: str, local_path: str, size: int, condition: dict[str, str]
    ) -> None:
        headers, _ = await self.fs._call(
            "POST",
            self._upload_url(),
            uploadType="resumable",
            name=name,
            json={"name": name, "contentType": _CONTENT_TYPE},
            headers={"X-Upload-Content-Type": _CONTENT_TYPE},
            **condition,
        )
        location = headers["Location"]
        try:
            with open(local_path, "rb") as f:
                offset = 0
                while chunk := f.read(self.chunk_size):
                    await upload_chunk(self.fs, location, chunk, offset, size, _CONTENT_TYPE)
                    offset += len(chunk)
        except Exception:
            try:
                await self.fs._call("DELETE", location)
            except Exception:
                pass  # the upload's own error matters more; sessions expire anyway
            raise


# GCSFileSystem._request without gcsfs's retry decorator: one attempt.
_request_once = GCSFileSystem._request.__wrapped__


def _emulator() -> bool:
    """True when ``STORAGE_EMULATOR_HOST`` points gcsfs at an emulator."""
    return os.environ.get("STORAGE_EMULATOR_HOST", "") not in ("", "default")


def _condition(key: str, mode: Mode) -> dict[str, str]:
    if mode == "overwrite":
        return {}
    if mode == "create":
        return {"ifGenerationMatch": "0"}
    if isinstance(mode, IfMatch):
        if not mode.token.isdigit():
            # Not a generation (e.g. a token from another backend): it cannot match.
            raise PreconditionFailedError(key, f"{mode.token!r} is not a GCS generation")
        return {"ifGenerationMatch": mode.token}
    raise UsageError(f"unknown write mode {mode!r}")
