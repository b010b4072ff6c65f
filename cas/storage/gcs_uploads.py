"""Objects into Google Cloud Storage, by the JSON API, through gcsfs's session.

Uploads use ``uploadType=multipart`` (metadata and bytes in one request)
because that is the upload type fake-gcs-server checks conditions on as well;
files above :attr:`GCSUploads.multipart_threshold` use a resumable upload with
the condition on its initiation, which GCS checks when the upload completes
(fake-gcs-server ignores conditions on resumable uploads).

Bodies are sent as an :class:`~cas.storage.network.Upload` (an ``io.BytesIO``),
so that aiohttp streams them instead of warning that raw bytes might lock the
event loop, and an upload the server stops taking is given up.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any
from urllib.parse import quote

from ..errors import StorageError
from .network import NetworkStorage, Upload, was_retried

CONTENT_TYPE = "application/octet-stream"


class GCSUploads(NetworkStorage):
    """The writes of :class:`~cas.storage.gcs.GCSStorage`, which sets ``bucket`` and
    ``prefix`` and chooses the upload for each write."""

    bucket: str
    prefix: str
    multipart_threshold: int = 64 * 2**20
    chunk_size: int = 16 * 2**20  # resumable chunks must be multiples of 256 KiB

    def _name(self, key: str) -> str:
        return self.prefix + key

    def _upload_url(self) -> str:
        return f"{self.fs._location}/upload/storage/v1/b/{quote(self.bucket, safe='')}/o"

    async def _multipart_upload(self, name: str, data: bytes, condition: dict[str, str]) -> None:
        # A random boundary: a fixed one could occur inside the data and cut it short.
        boundary = f"cas-{uuid.uuid4().hex}".encode()
        meta = json.dumps({"name": name, "contentType": CONTENT_TYPE}).encode()
        body = b"".join(
            [
                b"--" + boundary + b"\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n",
                meta,
                b"\r\n--" + boundary + b"\r\nContent-Type: " + CONTENT_TYPE.encode(),
                b"\r\n\r\n",
                data,
                b"\r\n--" + boundary + b"--\r\n",
            ]
        )
        upload = Upload(body)  # a fresh stream per attempt: aiohttp closes it
        request = self.fs._call(
            "POST",
            self._upload_url(),
            uploadType="multipart",
            name=name,
            headers={"Content-Type": f'multipart/related; boundary="{boundary.decode()}"'},
            data=upload,
            json_out=True,
            **condition,
        )
        await self._sending(upload, request)

    async def _resumable_upload(
        self, key: str, local_path: str, size: int, condition: dict[str, str]
    ) -> None:
        name = self._name(key)
        headers, _ = await self._retrying(
            f"start upload of {key}",
            self.fs._call,
            "POST",
            self._upload_url(),
            uploadType="resumable",
            name=name,
            json={"name": name, "contentType": CONTENT_TYPE},
            headers={"X-Upload-Content-Type": CONTENT_TYPE},
            **condition,
        )
        location = headers["Location"]
        digest = hashlib.md5(usedforsecurity=False)  # of the file, as it is sent
        hashed = 0
        stored: dict[str, Any] | None = None  # the object, as the last answer describes it
        try:
            with open(local_path, "rb") as f:
                offset = 0
                while offset < size:
                    f.seek(offset)
                    chunk = f.read(self.chunk_size)
                    if offset <= hashed < offset + len(chunk):  # each byte once, in order
                        digest.update(chunk[hashed - offset :])
                        hashed = offset + len(chunk)
                    try:
                        offset, stored = await self._retrying(
                            f"upload {key}", self._send_chunk, location, chunk, offset, size
                        )
                    except FileNotFoundError as exc:
                        # The last chunk landed, its answer was lost, and the session was
                        # gone when it was sent again (fake-gcs-server; GCS answers 200).
                        last = offset + len(chunk) == size  # then the file is all hashed
                        if not (last and was_retried(exc) and await self._holds(name, digest)):
                            raise
                        offset, stored = size, None
            if stored is not None:
                await self._check_stored(key, stored, size, digest)
        except Exception:
            try:
                await self._retrying(f"cancel upload of {key}", self.fs._call, "DELETE", location)
            except Exception:
                pass  # the upload's own error matters more; sessions expire anyway
            raise

    async def _holds(self, name: str, digest: Any) -> bool:
        """Does object ``name`` hold the bytes whose MD5 is ``digest``? (GCS keeps the
        MD5 of every object uploaded whole or resumably)"""
        try:
            meta = await self._retrying(
                f"GET metadata of {name}",
                self.fs._call,
                "GET",
                "b/{}/o/{}",
                self.bucket,
                name,
                json_out=True,
            )
        except FileNotFoundError:
            return False
        return meta.get("md5Hash") == base64.b64encode(digest.digest()).decode()

    async def _check_stored(self, key: str, stored: dict[str, Any], size: int, digest: Any) -> None:
        """Delete the object an upload completed, and raise, unless it is the file
        (``size`` bytes whose MD5 is ``digest``): fake-gcs-server appends a chunk sent
        again (its answer lost) whatever its offset, and completed a longer object."""
        md5_text = base64.b64encode(digest.digest()).decode()
        if int(stored.get("size", -1)) == size and stored.get("md5Hash", md5_text) == md5_text:
            return
        await self._retrying(
            f"delete the wrong upload of {key}",
            self.fs._call,
            "DELETE",
            "b/{}/o/{}",
            self.bucket,
            self._name(key),
            ifGenerationMatch=stored["generation"],  # ours, not a later writer's
        )
        raise StorageError(
            self.url,
            f"{self.url}: the server put the upload of {key} together wrong "
            f"({stored.get('size')} bytes, not the file's {size}); it was deleted, "
            "run the command again",
        )

    async def _send_chunk(
        self, location: str, chunk: bytes, offset: int, size: int
    ) -> tuple[int, dict[str, Any] | None]:
        """Send ``chunk``, the bytes at ``offset`` of a resumable upload of ``size``
        bytes; return the offset the server wants next (it may keep less than sent)
        and, once the upload is complete, the object it made."""
        end = offset + len(chunk) - 1
        upload = Upload(chunk)
        request = self.fs._call(
            "POST",
            location,
            headers={
                "Content-Range": f"bytes {offset}-{end}/{size}",
                "Content-Type": CONTENT_TYPE,
            },
            data=upload,
        )
        headers, body = await self._sending(upload, request)
        next_offset = offset + len(chunk)
        if "Range" in headers:  # "bytes=0-N": what the server holds so far
            next_offset = int(headers["Range"].split("-")[1]) + 1
        # Complete: GCS answers with the object (fake-gcs-server with a Range too).
        return next_offset, json.loads(body) if next_offset >= size and body else None
