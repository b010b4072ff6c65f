"""Timeouts and retries for storage reached over the network (S3, GCS).

One setting, ``ARTIFACTS_TIMEOUT`` (seconds, default 60), bounds how long one
request may go unanswered, retries included. From it come:

- the connect timeout, ``min(5, T/12)``, and the read timeout (silence while
  waiting for bytes, or while the server takes none of an upload's body: see
  :class:`Upload` and :mod:`.sockets`), ``min(15, T/4)``: a transfer that keeps
  moving is never cut;
- retries on timeouts, refused or reset connections, 5xx and throttling, with
  exponential backoff and jitter, for as long as the next attempt, were it to
  stall, would still end within T of the request's start.

The client libraries' own retries are turned off: they count attempts, not time
(botocore's backoff for a 5xx is tens of milliseconds, so a server restarting
for a few seconds would never be waited for), and two layers of retries
multiply. For T seconds after a store gave up, its requests get one attempt
and no retries: the cleanup after a failure (aborting an upload, re-reading a
ref whose write got no answer) does not wait for a dead server as long again.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from fsspec.asyn import sync

from ..errors import CasError, StorageError, StorageUnavailableError, UsageError
from .fsspec import FsspecStorage
from .resolver import resolution_error
from .sockets import SendProgress

T = TypeVar("T")
# A stream reads a key this many bytes at a time, each range one request.
STREAM_RANGE = 8 * 2**20
DEFAULT_TIMEOUT = 60.0
TIMEOUT_VARIABLE = "ARTIFACTS_TIMEOUT"
# "retrying …" lines; the CLI shows each on a terminal, long waits elsewhere.
logger = logging.getLogger("cas.storage")


@dataclass(frozen=True)
class Policy:
    total: float  # seconds one request may go unanswered, retries included

    @classmethod
    def from_environment(cls) -> Policy:
        text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
        if not text:
            return cls(DEFAULT_TIMEOUT)
        try:
            total = float(text)
        except ValueError:
            total = 0.0
        if not 0 < total < float("inf"):
            raise UsageError(f"{TIMEOUT_VARIABLE} must be a number of seconds > 0, not {text!r}")
        return cls(total)

    @property
    def connect_timeout(self) -> float:
        return min(5.0, self.total / 12)

    @property
    def read_timeout(self) -> float:
        return min(15.0, self.total / 4)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1, 2...)."""
        ceiling = min(self.total / 8, self.total / 120 * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)


class NetworkStorage(FsspecStorage):
    """An fsspec storage on an async filesystem, whose requests run through
    :meth:`_run`: retried by the policy, and failures turned into our errors.

    Subclasses say which errors are worth retrying (:meth:`_retryable`), what
    other library errors mean (:meth:`_translate`), and where the server is; their
    reads check that each answer's body is whole (:func:`check_range`).
    """

    def __init__(
        self,
        url: str,
        fs: Any | None = None,
        send_progress: SendProgress | None = None,
        **storage_options: Any,
    ) -> None:
        super().__init__(url, fs=fs, **storage_options)
        self.policy = Policy.from_environment()
        # How the connections' sockets (when the filesystem made them with its
        # socket_factory) see an upload move: cas.storage.sockets.
        self.send_progress = send_progress or SendProgress()
        self._gave_up_at: float | None = None

    # -- for subclasses -----------------------------------------------------

    def _retryable(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def _translate(self, exc: BaseException, key: str) -> None:
        """Raise our error for library error ``exc`` (from a request about ``key``)
        if it has a meaning of its own."""

    def _endpoint(self) -> str:
        raise NotImplementedError

    def _before_requests(self) -> None:
        """What a request needs done first, within the policy's bound (GCS: its
        credentials renewed)."""

    def _answer(self, exc: BaseException) -> str | None:
        """What the server answered, if ``exc`` is an answer ("HTTP 503 SlowDown: …"),
        or None if no answer came (a timeout, a refused or dropped connection)."""
        raise NotImplementedError

    # -- requests -----------------------------------------------------------

    def _run(
        self, verb: str, key: str, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        """Run ``func(*args, **kwargs)``, a request to ``verb`` ``key``, on the
        filesystem's loop, retried as one request."""
        return self._run_once(key, self._retrying, f"{verb} {key}", func, *args, **kwargs)

    def _run_once(
        self, key: str, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        """Run ``func`` on the filesystem's loop without retrying it as a whole (it
        retries each of its requests through :meth:`_retrying`)."""
        try:
            self._before_requests()
            return sync(self.fs.loop, func, *args, **kwargs)
        except CasError:
            raise
        except Exception as exc:
            self._translate(exc, key)
            raise

    async def _retrying(
        self, what: str, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        policy = self.policy
        start = time.monotonic()
        # Soon after giving up, one attempt and no retries: the cleanup after a failure
        # (aborting an upload, re-reading a ref whose write got no answer) must not
        # wait for a dead server as long again, but may still reach a live one.
        just_gave_up = self._gave_up_at is not None and start - self._gave_up_at < policy.total
        stall = policy.connect_timeout + policy.read_timeout
        attempt = 1
        while True:
            try:
                result = await func(*args, **kwargs)
            except (CasError, asyncio.CancelledError):
                raise
            except Exception as exc:
                unresolved = resolution_error(exc)
                if unresolved is not None and unresolved.lasting:
                    # No such name: asking again for the timeout's length would not help.
                    raise StorageError(
                        self.url,
                        f"{self.url}: the host name {unresolved.host} of {self._endpoint()} "
                        f"does not resolve ({unresolved.strerror}): check the endpoint URL "
                        "and this machine's DNS",
                    ) from exc
                if not (isinstance(exc, TransferFault) or self._retryable(exc)):
                    # A failed condition after an attempt that got no answer may be that
                    # attempt's own write: the ref store re-reads the ref to tell.
                    setattr(exc, _RETRIED, attempt > 1)
                    raise
                now = time.monotonic()
                delay = policy.backoff(attempt)
                if just_gave_up or now + delay + stall > start + policy.total:
                    self._gave_up_at = now
                    raise StorageUnavailableError(
                        self.url, self._gave_up(what, exc, attempt, now - start)
                    ) from exc
                attempt += 1
                logger.info(
                    "retrying %s: %s: %s (attempt %d)",
                    self.url,
                    what,
                    self._answer(exc) or _reason(exc),  # "HTTP 503 SlowDown …", or why none
                    attempt,
                    extra={"waited": now - start},  # off a terminal, long waits alone are said
                )
                await asyncio.sleep(delay)
            else:
                self._gave_up_at = None
                return result

    async def _sending(self, body: Upload, request: Awaitable[T]) -> T:
        """Await ``request``, which sends ``body``; fail it once the server has taken
        none of the body for a read timeout. aiohttp starts its read timeout only once
        the body is sent and has none for sending it: a server that stopped reading
        (a stopped process, a wedged gateway) kept an upload waiting for ever. Taken:
        a piece of the body read, or bytes the store's sockets were waiting to send
        sent (pieces are read far apart on a slow link)."""
        task = asyncio.ensure_future(request)
        try:
            while True:
                quiet = min(body.untaken_for(), self.send_progress.stuck_for())
                quiet_left = self.policy.read_timeout - quiet
                if quiet_left <= 0:
                    raise UploadStalledError(self.policy.read_timeout)
                done, _ = await asyncio.wait({task}, timeout=quiet_left)
                if done:
                    return task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})

    def _gave_up(self, what: str, exc: BaseException, attempts: int, seconds: float) -> str:
        """One line: what was waited for, and whether the server answered at all."""
        tried = f"{what} failed {attempts} times in {seconds:.1f} s"
        longer = f"allow longer with {TIMEOUT_VARIABLE}=SECONDS (now {self.policy.total:g})"
        answer = self._answer(exc)
        unresolved = resolution_error(exc)
        if unresolved is not None:
            return (
                f"{self.url}: the host name {unresolved.host} of {self._endpoint()} did not "
                f"resolve: {tried} (last: {unresolved.strerror}); check this machine's DNS "
                f"resolver, or {longer}"
            )
        if answer is None:
            return (
                f"{self.url} did not answer at {self._endpoint()}: {tried} (last: "
                f"{_reason(exc)}); check that the server is up and reachable, or {longer}"
            )
        # It answered, refusing for now (throttling, 5xx): a busy server, not a lost one.
        return (
            f"{self.url} was busy or failing at {self._endpoint()}: {tried} (last answer: "
            f"{answer}); try again later, or {longer}"
        )

    def _next_page(self, prefix: str, token: str | None, seen: set[str]) -> str | None:
        """``token``, the page token a listing of ``prefix`` got to ask for its next
        page, once checked that it was not given before (None: the listing is done; "":
        a page said more follow and gave none). A server giving one again answers every
        request and would list for ever."""
        if token is None:
            return None
        if not token or token in seen:
            fault = (
                f"gave page token {token[:40]!r} again, after {len(seen)} pages"
                if token
                else "said more pages follow, and gave no token to ask for them"
            )
            raise StorageError(
                self.url,
                f"{self.url}: listing {prefix or 'the store'}, the server at "
                f"{self._endpoint()} {fault}: a fault of the server or of a proxy before it "
                "(nothing was changed)",
            )
        seen.add(token)
        return token

    # -- deletes and streams ------------------------------------------------------

    def delete(self, key: str) -> None:
        try:
            self._run("delete", key, self.fs._rm_file, self._path(key))
        except FileNotFoundError:
            pass

    def open(self, key: str) -> BinaryIO:
        # Range by range through get(), so that every request of a long read is retried
        # like any other (the filesystem's own file objects do not retry, and a body cut
        # short ended the read).
        size = self.stat(key).size
        return io.BufferedReader(_RangeReader(self, key, size), STREAM_RANGE)  # type: ignore[return-value]


class _RangeReader(io.RawIOBase):
    """``key`` of ``storage``, read in order, a range (one request) per call."""

    def __init__(self, storage: NetworkStorage, key: str, size: int) -> None:
        self._storage = storage
        self._key = key
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        end = min(self._size, self._position + len(buffer))
        if end <= self._position:
            return 0
        data = self._storage.get(self._key, self._position, end)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def readall(self) -> bytes:
        # RawIOBase's would ask for 8 KiB at a time: a request each.
        parts = []
        while part := self.read(STREAM_RANGE):
            parts.append(part)
        return b"".join(parts)


class TransferFault(OSError):
    """A fault of a transfer that we, not the client library, found: retried as a
    timeout is, whatever the backend."""


class IncompleteBodyError(TransferFault):
    """An answer whose body is not all it said it holds: a connection closed half-way
    through a body sent without its length looks, to HTTP, like a body that ends there.
    Caught by the range or the checksum the server sent with it; read again."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"the answer for {key} was cut short: {why}")


class UploadStalledError(TransferFault):
    """The server took none of a request's body for a read timeout."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the server took none of the request's body for {seconds:g} s")


class Upload(io.BytesIO):
    """A request's body that tells whether the server still takes it: aiohttp reads
    the next piece of it only once the last one went into the socket.

    The clock starts at the first read after the last seek: botocore reads a body
    through (its checksums) and seeks back before the request waits for a
    connection, and that wait, however long, is no stall."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self._size = len(data)
        self._last_taken: float | None = None

    def read(self, size: int | None = -1) -> bytes:
        self._last_taken = time.monotonic()
        return super().read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._last_taken = None
        return super().seek(offset, whence)

    def untaken_for(self) -> float:
        """Seconds since the server last took a piece, while some is left to send."""
        if self._last_taken is None or self.closed or self.tell() >= self._size:
            return 0.0  # not being sent yet, or all sent (aiohttp closes it then)
        return time.monotonic() - self._last_taken


def range_header(start: int | None, end: int | None) -> str:
    """The ``Range`` header asking for bytes ``[start, end)`` (``end`` None: to the end)."""
    return f"bytes={start or 0}-{'' if end is None else end - 1}"


def check_range(
    key: str, content_range: str | None, data: bytes, start: int | None, end: int | None
) -> bytes:
    """Bytes ``[start, end)`` of ``key`` from ``data``, the body of the answer to a
    request for them; raise :class:`IncompleteBodyError` unless ``data`` is all of the
    range the answer's ``Content-Range`` ("bytes 10-99/1000") says it holds, from
    ``start``. With no ``Content-Range`` the answer is the whole object (its length
    checked by HTTP, or its checksum by the caller): a server or cache that ignores
    ranges answers 200 with all of it, and the range is cut from it."""
    start = start or 0
    if not content_range:
        if end is not None and len(data) < end:
            raise IncompleteBodyError(key, f"{len(data)} bytes of the object, not {end}")
        return data[start:end]
    first, _, last = content_range.removeprefix("bytes ").partition("/")[0].partition("-")
    expected = int(last) - int(first) + 1
    if len(data) != expected:
        raise IncompleteBodyError(key, f"{len(data)} of {expected} bytes")
    if int(first) != start:
        raise IncompleteBodyError(key, f"its range starts at byte {first}, not {start}")
    return data


_RETRIED = "_cas_retried"  # set on the error a request ended with: was it sent again?


def was_retried(exc: BaseException) -> bool:
    """Did the request that raised ``exc`` (through :meth:`NetworkStorage._retrying`)
    send its write more than once?"""
    return getattr(exc, _RETRIED, False)


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    name = type(exc).__name__
    return f"{name}: {text[:160]}" if text else name
