"""Storage on Google Cloud Storage, with real conditional writes.

gcsfs has no way to pass ``ifGenerationMatch`` through its file API, so writes
go to the JSON API directly, through the filesystem's authenticated session:
``mode="create"`` is ``ifGenerationMatch=0`` and ``IfMatch(token)`` is
``ifGenerationMatch=<generation>``. Tokens are object generations (decimal
strings), and the server checks them atomically.

Uploads are :mod:`cas.storage.gcs_uploads`'s.

Real GCS limits writes to one object to about one per second; a hot ref will
see 429s, which are retried (:mod:`cas.storage.network`).
"""

from __future__ import annotations

import os

# gcsfs swaps in its gRPC "extended" filesystem unless told not to; emulators and
# our raw JSON calls need the plain HTTP one. Must be set before gcsfs is imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import asyncio  # noqa: E402
import base64  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote  # noqa: E402

import aiohttp  # noqa: E402
from gcsfs.core import GCSFileSystem  # noqa: E402
from gcsfs.retry import HttpError, is_retriable  # noqa: E402
from google.auth.exceptions import DefaultCredentialsError  # noqa: E402

from ..errors import (  # noqa: E402
    AccessDeniedError,
    BucketNotFoundError,
    CredentialsNotFoundError,
    CredentialsRefusedError,
    KeyNotFoundError,
    PreconditionFailedError,
    UsageError,
)
from .base import Capabilities, IfMatch, Mode, Stat  # noqa: E402
from .fsspec import _mtime  # noqa: E402
from .gcs_tokens import Renewal  # noqa: E402
from .gcs_uploads import GCSUploads  # noqa: E402
from .network import (  # noqa: E402
    IncompleteBodyError,
    Policy,
    check_range,
    range_header,
    was_retried,
)
from .resolver import BoundedResolver  # noqa: E402
from .sockets import SendProgress  # noqa: E402


class _GCSFileSystem(GCSFileSystem):
    # gcsfs retries each request up to 6 times, sleeping up to 36 s in all, with no
    # setting to change that: send each request once, and let our policy retry.
    _request = GCSFileSystem._request.__wrapped__
    resolve_timeout = 5.0  # seconds a host name may take to resolve: the connect timeout
    send_progress: SendProgress | None = None  # the store's, seen by its sockets

    async def _set_session(self) -> Any:
        # A session whose host names resolve within the connect timeout
        # (cas.storage.resolver), whose sockets show an upload's progress
        # (cas.storage.sockets); gcsfs makes its own connector for a client certificate.
        if self._session is None and not self._use_client_cert:
            given = self.session_kwargs
            if "connector" not in given:
                connector = aiohttp.TCPConnector(
                    resolver=BoundedResolver(self.resolve_timeout),
                    socket_factory=self.send_progress and self.send_progress.socket,
                )
                self.session_kwargs = {**given, "connector": connector}
                try:
                    return await super()._set_session()
                finally:
                    self.session_kwargs = given
        return await super()._set_session()


class GCSStorage(GCSUploads):
    """Keys under ``gs://bucket/prefix``.

    ``storage_options`` go to :class:`gcsfs.GCSFileSystem`: ``project``,
    ``token`` (``"anon"`` for emulators), ``endpoint_url``... With none of them,
    gcsfs finds credentials itself, and ``STORAGE_EMULATOR_HOST=http://host:port``
    sends every request to an emulator, anonymously.
    """

    capabilities = Capabilities(
        atomic_create=True, conditional_update=True, durable=True, local=False
    )
    list_page_size: int | None = None  # maxResults per listing page; None: the server's

    def __init__(self, url: str, fs: Any | None = None, **storage_options: Any) -> None:
        progress = SendProgress()
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
            policy = Policy.from_environment()
            storage_options.setdefault(
                "requests_timeout",
                aiohttp.ClientTimeout(
                    sock_connect=policy.connect_timeout, sock_read=policy.read_timeout
                ),
            )
            fs = _GCSFileSystem(skip_instance_cache=True, **storage_options)
            fs.resolve_timeout = policy.connect_timeout
            fs.send_progress = progress
        super().__init__(url, fs=fs, send_progress=progress)
        self._renewal = Renewal(getattr(self.fs, "credentials", None), url)
        bucket, _, prefix = self.root.partition("/")
        if not bucket:
            raise UsageError(f"no bucket in {url!r}")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""

    # -- plumbing -----------------------------------------------------------

    def _call(self, verb: str, key: str, *args: Any, **kwargs: Any) -> Any:
        return self._run(verb, key, self.fs._call, *args, **kwargs)

    def _before_requests(self) -> None:
        self._renewal.ensure(self.policy)

    def _retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, HttpError) and exc.code == 401:
            return False  # gcsfs retries it; credentials refused stay refused
        # A JSON answer (metadata, a listing page) that does not parse was cut short.
        return is_retriable(exc) or isinstance(exc, (asyncio.TimeoutError, json.JSONDecodeError))

    def _translate(self, exc: BaseException, key: str) -> None:
        if isinstance(exc, DefaultCredentialsError):
            raise CredentialsNotFoundError(
                self.url,
                f"{self.url}: no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS "
                "or run `gcloud auth application-default login` (STORAGE_EMULATOR_HOST for "
                "an emulator)",
            ) from exc
        if isinstance(exc, HttpError) and exc.code == 401:  # credentials it cannot use
            raise CredentialsRefusedError(
                self.url,
                f"{self.url}: {self._endpoint()} refused the credentials ({self._answer(exc)}): "
                "they have expired or are not valid; renew them (`gcloud auth "
                "application-default login`, or GOOGLE_APPLICATION_CREDENTIALS) and run the "
                "command again",
            ) from exc
        if type(exc) is OSError and str(exc).startswith("Forbidden:"):  # gcsfs's 403
            raise AccessDeniedError(self._name(key), self.url) from exc

    def _answer(self, exc: BaseException) -> str | None:
        if not isinstance(exc, HttpError):
            return None
        # gcsfs appends ", <code>" to the server's message.
        lines = str(exc.message).removesuffix(f", {exc.code}").strip().splitlines()
        return f"HTTP {exc.code} {lines[0][:160] if lines else ''}".rstrip()

    def _endpoint(self) -> str:
        return str(self.fs._location)

    def _media_url(self, key: str) -> str:
        name = quote(self._name(key), safe="")
        return f"{self.fs._location}/download/storage/v1/b/{quote(self.bucket, safe='')}/o/{name}"

    # -- reads --------------------------------------------------------------

    def get(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        if start is None and end is None:
            return self.get_versioned(key)[0]
        if end is not None and end <= (start or 0):
            return b""
        try:
            _, data = self._run("GET", key, self._fetch, key, start, end)
        except FileNotFoundError:
            raise KeyNotFoundError(key) from None
        return data

    async def _fetch(
        self, key: str, start: int | None = None, end: int | None = None, **params: Any
    ) -> tuple[Any, bytes]:
        """GET ``key``'s bytes (``[start, end)`` of them if either is given), checked
        against the range or the MD5 the answer came with: a body cut short without its
        length is read again, never handed out short."""
        ranged = start is not None or end is not None
        if ranged:
            params["headers"] = {"Range": range_header(start, end)}
        headers, data = await self.fs._call("GET", self._media_url(key), alt="media", **params)
        if "Content-Range" not in headers:
            _check_md5(key, headers.get("X-Goog-Hash"), data)
        return headers, check_range(key, headers.get("Content-Range"), data, start, end)

    def get_versioned(self, key: str) -> tuple[bytes, str]:
        try:
            headers, data = self._run("GET", key, self._fetch, key)
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
                _, data = self._run("GET", key, self._fetch, key, generation=generation)
            except FileNotFoundError:
                continue
            return data, str(generation)
        raise OSError(f"{key} kept changing while it was being read")

    def _metadata(self, key: str) -> dict[str, Any]:
        return self._call(
            "GET metadata of", key, "GET", "b/{}/o/{}", self.bucket, self._name(key), json_out=True
        )

    def stat(self, key: str) -> Stat:
        # Ask for the object itself; fs.info would call a key prefix a "directory".
        try:
            meta = self._metadata(key)
        except FileNotFoundError:
            raise KeyNotFoundError(key) from None
        return Stat(size=int(meta["size"]), mtime=_mtime(meta))

    def list(self, prefix: str = "") -> Iterator[str]:
        for key, _ in self.list_stats(prefix):
            yield key

    def list_stats(self, prefix: str = "") -> Iterator[tuple[str, Stat]]:
        # One flat (delimiter-less) listing of everything under the prefix, page by page;
        # each item carries the size and time the object's metadata gives.
        strip = len(self.prefix)
        params: dict[str, Any] = {
            "prefix": self._name(prefix),
            "fields": "items(name,size,updated),nextPageToken",
        }
        if self.list_page_size:
            params["maxResults"] = self.list_page_size
        tokens: set[str] = set()
        while True:
            try:
                page = self._call(
                    "list", prefix, "GET", "b/{}/o", self.bucket, json_out=True, **params
                )
            except FileNotFoundError:  # a listing finds no bucket, not no keys
                raise BucketNotFoundError(self.url, self.bucket, self._endpoint()) from None
            for item in page.get("items", ()):
                name: str = item["name"]
                if not name.endswith("/"):  # skip "folder" placeholder objects
                    yield name[strip:], Stat(size=int(item["size"]), mtime=_mtime(item))
            token = self._next_page(prefix, page.get("nextPageToken") or None, tokens)
            if token is None:
                return
            params["pageToken"] = token

    # -- writes -------------------------------------------------------------

    def put(self, key: str, data: bytes, mode: Mode = "overwrite") -> None:
        condition = _condition(key, mode)
        try:
            self._run("upload", key, self._multipart_upload, self._name(key), data, condition)
        except FileExistsError as exc:  # gcsfs's name for HTTP 412
            raise PreconditionFailedError(
                key, "generation did not match", was_retried(exc)
            ) from None

    def put_file(self, key: str, local_path: str, mode: Mode = "overwrite") -> None:
        condition = _condition(key, mode)
        size = os.path.getsize(local_path)
        try:
            if size <= self.multipart_threshold:
                with open(local_path, "rb") as f:
                    data = f.read()
                self._run("upload", key, self._multipart_upload, self._name(key), data, condition)
            else:
                self._run_once(key, self._resumable_upload, key, local_path, size, condition)
        except FileExistsError as exc:
            raise PreconditionFailedError(
                key, "generation did not match", was_retried(exc)
            ) from None


def _check_md5(key: str, hashes: str | None, data: bytes) -> None:
    """Raise IncompleteBodyError unless ``data`` has the MD5 in ``hashes``, an
    ``X-Goog-Hash`` header ("crc32c=…,md5=…"; a composite object has no MD5)."""
    for item in (hashes or "").split(","):
        name, _, value = item.strip().partition("=")
        if name == "md5":
            digest = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest())
            if digest.decode() != value:
                raise IncompleteBodyError(key, "its MD5 is not the one sent with it")


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
