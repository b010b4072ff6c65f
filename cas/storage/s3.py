"""Storage on S3 and S3-compatible servers, with real conditional writes.

``mode="create"`` sends ``If-None-Match: *`` and ``IfMatch(token)`` sends
``If-Match: <etag>``, so the server decides atomically; nothing is checked
client-side first. Tokens are ETags as returned by ``get_versioned``.

Large uploads (``put_file`` above :attr:`S3Storage.multipart_threshold`) use a
multipart upload whose *completion* carries the condition: AWS and SeaweedFS
honour that, but moto (5.x) ignores ``If-Match`` on ``CompleteMultipartUpload``.

As with any retried HTTP write, a conditional write whose response was lost
and which is then retried by the client reports PreconditionFailedError even
though it landed. :class:`cas.refs.RefStore` tells the two apart by re-reading
the ref: its value carries a sequence number, so finding exactly what it wrote
means the write landed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import aiohttp
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from botocore.exceptions import (
    FlexibleChecksumError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.handlers import add_expect_header
from botocore.parsers import ResponseParserError

from ..errors import (
    AccessDeniedError,
    BucketNotFoundError,
    CredentialsNotFoundError,
    CredentialsRefusedError,
    KeyNotFoundError,
    PreconditionFailedError,
    StorageError,
    UsageError,
)
from .base import Capabilities, IfMatch, Mode, Stat
from .network import (
    NetworkStorage,
    Policy,
    Upload,
    check_range,
    range_header,
    was_retried,
)
from .s3client import (
    CLOCK_CODES,
    CREDENTIAL_CODES,
    UNRENEWED,
    AmbientCredentials,
    client_config,
    may_share_session,
    shared_session,
)
from .sockets import SendProgress

# Error codes that mean "your condition did not hold". 409 ConditionalRequestConflict
# is AWS's answer when two conditional writes to one key race each other.
_CONDITION_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
# Answers worth retrying (as botocore's standard retry mode has them): the server
# erred, or asks us to slow down.
_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
    }
)


class S3Storage(NetworkStorage):
    """Keys under ``s3://bucket/prefix``.

    ``storage_options`` go to :class:`s3fs.S3FileSystem`: ``endpoint_url`` (or
    ``client_kwargs={"endpoint_url": ...}``), ``key``, ``secret``, ``anon``...
    """

    capabilities = Capabilities(
        atomic_create=True, conditional_update=True, durable=True, local=False
    )
    # Files up to this size are sent in one PutObject; larger ones stream as parts.
    multipart_threshold: int = 64 * 2**20
    part_size: int = 16 * 2**20  # S3 needs >= 5 MiB for every part but the last
    part_concurrency: int = 4
    list_page_size: int | None = None  # MaxKeys per listing page; None: the server's (1000)

    def __init__(self, url: str, fs: Any | None = None, **storage_options: Any) -> None:
        progress = SendProgress()
        if fs is None:
            if not url.startswith(("s3://", "s3a://")):
                raise UsageError(f"not an s3:// URL: {url!r}")
            # Other processes write the same keys: a listings cache would serve stale answers.
            storage_options.setdefault("use_listings_cache", False)
            if may_share_session(storage_options):
                storage_options["session"] = shared_session()
            storage_options["config_kwargs"] = client_config(
                Policy.from_environment(), storage_options.get("config_kwargs"), progress
            )
        super().__init__(url, fs=fs, send_progress=progress, **storage_options)
        self.fs.retries = 1  # our policy retries (cas.storage.network); s3fs must not too
        self._ambient = AmbientCredentials(self.fs, url)
        # The client made below resolves the credentials: have them resolved, bounded.
        self._run_once("", asyncio.sleep, 0)
        # botocore asks the server to accept every PUT before sending its body
        # ("Expect: 100-continue"), and aiohttp waits for that answer with no
        # timeout: a stalled server would hang the upload for ever.
        self.fs.s3.meta.events.unregister("before-call.s3", add_expect_header)
        bucket, _, prefix = self.root.partition("/")
        if not bucket:
            raise UsageError(f"no bucket in {url!r}")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""

    # -- plumbing -----------------------------------------------------------

    def _before_requests(self) -> None:
        self._ambient.ready(self.policy)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _call(self, method: str, key: str, **kwargs: Any) -> Any:
        return self._run(method, key, self.fs._call_s3, method, Bucket=self.bucket, **kwargs)

    def _retryable(self, exc: BaseException) -> bool:
        if isinstance(
            exc,
            (
                BotoConnectionError,
                HTTPClientError,
                ResponseParserError,
                FlexibleChecksumError,  # a body cut short, or garbled, on the way
                aiohttp.ClientError,
            ),
        ) or isinstance(exc, asyncio.TimeoutError):
            return True  # timeouts, refused or reset connections, garbled answers
        code, status = _client_error(exc)
        return status in _TRANSIENT_STATUS or code in _TRANSIENT_CODES

    def _translate(self, exc: BaseException, key: str) -> None:
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            raise CredentialsNotFoundError(
                self.url,
                f"{self.url}: no AWS credentials found: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
            ) from exc
        if isinstance(exc, UNRENEWED):
            raise CredentialsNotFoundError(
                self.url,
                f"{self.url}: the AWS credentials could not be had or renewed "
                f"({str(exc).strip()[:300]}): renew them (`aws sso login`, or the tool that "
                "gives them) and run the command again",
            ) from exc
        if _client_error(exc)[0] in CLOCK_CODES:
            raise StorageError(
                self.url,
                f"{self.url}: {self._endpoint()} refused a request signed by this machine's "
                f"clock ({self._answer(exc)}): the clock is too far from the server's; set it "
                "right (turn on NTP: `timedatectl set-ntp true`) and run the command again",
            ) from exc
        if _client_error(exc)[0] in CREDENTIAL_CODES:
            raise CredentialsRefusedError(
                self.url,
                f"{self.url}: {self._endpoint()} refused the credentials ({self._answer(exc)}): "
                "they have expired or are not valid; renew them (`aws sso login`, or fresh "
                "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN) and run "
                "the command again",
            ) from exc
        if _client_error(exc)[0] == "NoSuchBucket":
            raise BucketNotFoundError(self.url, self.bucket, self._endpoint()) from exc
        if isinstance(exc, PermissionError):  # s3fs's word for AccessDenied / 403
            raise AccessDeniedError(self._key(key), self.url) from exc

    def _answer(self, exc: BaseException) -> str | None:
        response = _response(exc)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status is None:
            return None
        error = response.get("Error", {})
        text = " ".join(str(error[part]) for part in ("Code", "Message") if error.get(part))
        return f"HTTP {status} {text}".rstrip()

    def _endpoint(self) -> str:
        client = getattr(self.fs, "_s3", None)
        if client is not None:
            return str(client.meta.endpoint_url)
        return self.fs.endpoint_url or "the default AWS endpoint"

    # -- reads --------------------------------------------------------------

    def get(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        if start is None and end is None:
            # One GetObject; fs.cat_file would HEAD the object for its size first.
            return self.get_versioned(key)[0]
        if end is not None and end <= (start or 0):
            return b""

        async def fetch() -> bytes:
            # Checked against the range the answer says it holds: a body cut short
            # without its length is read again, never handed out short.
            resp = await self.fs._call_s3(
                "get_object", Bucket=self.bucket, Key=self._key(key), Range=range_header(start, end)
            )
            body = resp["Body"]
            try:
                data = await body.read()
            finally:
                body.close()
            return check_range(key, resp.get("ContentRange"), data, start, end)

        try:
            return self._run("get_object", key, fetch)
        except FileNotFoundError:
            raise KeyNotFoundError(key) from None

    def get_versioned(self, key: str) -> tuple[bytes, str]:
        async def fetch() -> tuple[bytes, str]:
            # One GetObject: the body and the ETag describe the same version.
            resp = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=self._key(key))
            body = resp["Body"]
            try:
                data = await body.read()
            finally:
                body.close()
            return data, resp["ETag"]

        try:
            return self._run("get_object", key, fetch)
        except FileNotFoundError:
            raise KeyNotFoundError(key) from None

    def stat(self, key: str) -> Stat:
        # HEAD the object itself; fs.info would call a key prefix a "directory".
        try:
            head = self._call("head_object", key, Key=self._key(key))
        except FileNotFoundError:
            raise KeyNotFoundError(key) from None
        return Stat(size=int(head["ContentLength"]), mtime=head["LastModified"].timestamp())

    def list(self, prefix: str = "") -> Iterator[str]:
        for key, _ in self.list_stats(prefix):
            yield key

    def list_stats(self, prefix: str = "") -> Iterator[tuple[str, Stat]]:
        # One flat (delimiter-less) listing of everything under the prefix, page by page;
        # each entry carries the size and time a HEAD would give.
        strip = len(self.prefix)
        kwargs: dict[str, Any] = {"Prefix": self._key(prefix)}
        if self.list_page_size:
            kwargs["MaxKeys"] = self.list_page_size
        tokens: set[str] = set()
        while True:
            try:
                page = self._call("list_objects_v2", prefix, **kwargs)
            except FileNotFoundError:
                return
            for entry in page.get("Contents", ()):
                name: str = entry["Key"]
                if not name.endswith("/"):  # skip "folder" marker objects
                    stat = Stat(size=int(entry["Size"]), mtime=entry["LastModified"].timestamp())
                    yield name[strip:], stat
            if not page.get("IsTruncated"):
                return
            token = self._next_page(prefix, page.get("NextContinuationToken") or "", tokens)
            kwargs["ContinuationToken"] = token

    # -- writes -------------------------------------------------------------

    def put(self, key: str, data: bytes, mode: Mode = "overwrite") -> None:
        condition = _condition(mode)
        try:
            self._run("put_object", key, self._put_object, key, bytes(data), condition)
        except Exception as exc:
            _raise_if_condition_failed(key, mode, exc)
            raise

    def put_file(self, key: str, local_path: str, mode: Mode = "overwrite") -> None:
        condition = _condition(mode)
        size = os.path.getsize(local_path)
        try:
            if size <= self.multipart_threshold:
                with open(local_path, "rb") as f:
                    body = f.read()
                self._run("put_object", key, self._put_object, key, body, condition)
            else:
                self._run_once(key, self._multipart_upload, key, local_path, condition)
        except Exception as exc:
            _raise_if_condition_failed(key, mode, exc)
            raise

    async def _put_object(self, key: str, data: bytes, condition: dict[str, str]) -> Any:
        body = Upload(data)  # a fresh one for each attempt: the last was read to its end
        request = self.fs._call_s3(
            "put_object", Bucket=self.bucket, Key=self._key(key), Body=body, **condition
        )
        return await self._sending(body, request)

    async def _multipart_upload(self, key: str, local_path: str, condition: dict[str, str]) -> None:
        async def call(method: str, **kwargs: Any) -> Any:
            # Each request is retried on its own: a blip costs one part, not the upload.
            return await self._retrying(
                f"{method} {key}",
                self.fs._call_s3,
                method,
                Bucket=self.bucket,
                Key=self._key(key),
                **kwargs,
            )

        mpu = await call("create_multipart_upload")
        upload_id = mpu["UploadId"]

        async def upload_part(number: int, chunk: bytes) -> Any:
            body = Upload(chunk)
            request = self.fs._call_s3(
                "upload_part",
                Bucket=self.bucket,
                Key=self._key(key),
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
            )
            return await self._sending(body, request)

        async def send(number: int, chunk: bytes) -> dict[str, Any]:
            out = await self._retrying(f"upload_part {key}", upload_part, number, chunk)
            return {"PartNumber": number, "ETag": out["ETag"]}

        parts: list[dict[str, Any]] = []
        try:
            with open(local_path, "rb") as f:
                # Read a batch of parts at a time so memory stays bounded.
                while True:
                    batch = []
                    for _ in range(self.part_concurrency):
                        chunk = f.read(self.part_size)
                        if not chunk:
                            break
                        batch.append(send(len(parts) + len(batch) + 1, chunk))
                    if not batch:
                        break
                    parts.extend(await asyncio.gather(*batch))
            # The condition is checked when the object appears, i.e. on completion.
            await call(
                "complete_multipart_upload",
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **condition,
            )
        except Exception:
            try:
                await call("abort_multipart_upload", UploadId=upload_id)
            except Exception:
                pass  # the original error matters more; lifecycle rules reap leftovers
            raise


def _condition(mode: Mode) -> dict[str, str]:
    if mode == "overwrite":
        return {}
    if mode == "create":
        return {"IfNoneMatch": "*"}
    if isinstance(mode, IfMatch):
        return {"IfMatch": mode.token}
    raise UsageError(f"unknown write mode {mode!r}")


def _raise_if_condition_failed(key: str, mode: Mode, exc: BaseException) -> None:
    """Raise PreconditionFailedError if ``exc`` says the write's condition did not hold."""
    code, status = _client_error(exc)
    # A 409 on a conditional write is a race with another conditional write to the key.
    if code in _CONDITION_CODES or status == 412 or (mode != "overwrite" and status == 409):
        raise PreconditionFailedError(key, f"S3 said {code or status}", was_retried(exc)) from exc
    # S3 answers If-Match on a missing key with 404 NoSuchKey: that version is gone.
    if isinstance(mode, IfMatch) and code == "NoSuchKey":
        raise PreconditionFailedError(key, "it no longer exists") from exc


def _client_error(exc: BaseException | None) -> tuple[str | None, int | None]:
    """(error code, HTTP status) of the botocore error somewhere in ``exc``'s chain."""
    response = _response(exc)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return response.get("Error", {}).get("Code"), status


def _response(exc: BaseException | None) -> dict[str, Any]:
    """The parsed response of the botocore error somewhere in ``exc``'s chain, or {}."""
    seen = 0
    while exc is not None and seen < 10:
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            return response
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return {}
