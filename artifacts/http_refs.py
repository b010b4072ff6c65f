"""http(s) references: described by what the server answers to HEAD (or GET), fetched
whole. Each request is bounded as an http(s) store's are (cas.storage.fsspec): a server
that does not answer fails within ``ARTIFACTS_TIMEOUT``, said as such; "not found" is
said only when the server answers so."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from cas.errors import StorageUnavailableError, UsageError

_NOT_THERE = (404, 410)  # the statuses that say the object is not there


def describe(uri: str) -> dict[str, Any]:
    """The descriptor of the object at ``uri``: its ETag, if the server gives one."""
    try:
        info = _filesystem().info(uri)
    except FileNotFoundError as exc:
        raise _unanswered(uri, exc) or UsageError(f"referenced object not found: {uri}") from None
    except Exception as exc:
        raise _unanswered(uri, exc) or UsageError(f"cannot read reference {uri}: {exc}") from None
    digest = info.get("ETag") or info.get("etag")
    return {
        "uri": uri,
        "digest": str(digest).strip('"') if digest else uri,
        "size": int(info.get("size") or 0),
        "version": None,
    }


@contextmanager
def opened(uri: str) -> Iterator[IO[bytes]]:
    """The object at ``uri``, open for reading; FileNotFoundError only when the server
    says it is not there."""
    try:
        with _filesystem().open(uri, "rb") as src:
            yield src
    except Exception as exc:
        failure = _unanswered(uri, exc)
        if failure is None:
            raise
        raise failure from None


def _filesystem() -> Any:
    # Here, not above: fsspec, aiohttp and asyncio cost a command that reads none.
    import fsspec

    from cas.storage.fsspec import silence_bound

    return fsspec.filesystem(
        "http", client_kwargs={"timeout": silence_bound()}, skip_instance_cache=True
    )


def _unanswered(uri: str, exc: BaseException) -> StorageUnavailableError | None:
    """The error of a request the server did not answer, or answered with a failure
    other than "not there"; None for any other (fsspec says all as FileNotFoundError)."""
    import aiohttp

    from cas.storage.network import TIMEOUT_VARIABLE, Policy

    cause = exc.__cause__ if isinstance(exc, FileNotFoundError) else exc
    if isinstance(cause, aiohttp.ClientResponseError):
        if cause.status in _NOT_THERE:
            return None
        return StorageUnavailableError(uri, f"{uri} answered {cause.status} {cause.message}")
    if isinstance(cause, (asyncio.TimeoutError, TimeoutError)):
        total = Policy.from_environment().total
        return StorageUnavailableError(
            uri,
            f"{uri} did not answer: silent for {total:g} s; allow longer with "
            f"{TIMEOUT_VARIABLE}=SECONDS",
        )
    if isinstance(cause, (aiohttp.ClientError, OSError)) and not isinstance(
        cause, FileNotFoundError
    ):
        return StorageUnavailableError(
            uri, f"{uri} did not answer: {cause}; check that the server is up and reachable"
        )
    return None
