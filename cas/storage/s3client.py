"""How an S3 store's client is made: a botocore session shared per set of
credentials, our timeouts, and one attempt per request (cas.storage.network retries);
which of its errors are about the credentials themselves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from typing import Any

from aiobotocore.httpsession import AIOHTTPSession
from botocore.exceptions import (
    CredentialRetrievalError,
    NoAuthTokenError,
    RefreshWithMFAUnsupportedError,
    SSOError,
    TokenRetrievalError,
)

from ..errors import StorageUnavailableError
from .network import TIMEOUT_VARIABLE, Policy
from .resolver import BoundedResolver
from .sockets import SendProgress

# Environment variables botocore resolves ambient credentials from; a session caches
# what it resolved, so a change of any of them needs a session of its own.
_CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)

# Error codes that refuse the credentials themselves, not a permission they lack.
CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidToken",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
    }
)
# A request signed by a clock too far from the server's (over 15 minutes for AWS).
CLOCK_CODES = frozenset({"RequestTimeTooSkewed"})
# Credentials that expired and could not be renewed (an SSO session over, a
# credential_process or an assume-role that failed): botocore renews them per request.
UNRENEWED = (
    CredentialRetrievalError,
    TokenRetrievalError,
    SSOError,
    NoAuthTokenError,
    RefreshWithMFAUnsupportedError,
)

_sessions: dict[tuple[str | None, ...], Any] = {}


def shared_session() -> Any:
    """One botocore session per process (per set of credentials in the environment).

    A session caches the parsed service model and endpoint rules; each store making
    its own costs ~0.15 s of CPU per store opened. Clients, connections and explicit
    credentials (key/secret) stay per store. Ambient credentials are resolved once
    per session, so the session is keyed by the environment variables they come
    from: a store opened after ``AWS_ACCESS_KEY_ID`` changed uses the new keys.
    All stores run on fsspec's one IO thread, so a session is never used concurrently.
    """
    key = tuple(os.environ.get(name) for name in _CREDENTIAL_ENV)
    session = _sessions.get(key)
    if session is None:
        from aiobotocore.session import AioSession

        session = _sessions[key] = AioSession()
    return session


def may_share_session(options: dict[str, Any]) -> bool:
    """True unless the options configure the session itself (a profile, a session...).

    s3fs hands the options it has no parameter for to the session it creates.
    """
    import inspect

    from s3fs import S3FileSystem

    known = set(inspect.signature(S3FileSystem.__init__).parameters) - {"session", "kwargs"}
    known |= {"use_listings_cache", "listings_expiry_time", "max_paths", "skip_instance_cache"}
    return "session" not in options and set(options) <= known


def client_config(
    policy: Policy, given: dict[str, Any] | None, progress: SendProgress
) -> dict[str, Any]:
    """botocore ``Config`` arguments: our timeouts (a host name resolved within the
    connect timeout too), sockets that show an upload's ``progress``, and botocore's
    retries off (the policy retries). Arguments the caller gave win."""
    return {
        "connect_timeout": policy.connect_timeout,
        "connector_args": {
            "resolver": BoundedResolver(policy.connect_timeout),
            "socket_factory": progress.socket,
        },
        "read_timeout": policy.read_timeout,
        "retries": {"mode": "standard", "total_max_attempts": 1},
        "http_session_cls": _OneAttemptSession,
        **(given or {}),
    }


class AmbientCredentials:
    """A store's AWS credentials when no key was given: resolved and renewed by
    botocore inside a request, from a process, SSO or a role, with no timeout of their
    own (a ``credential_process`` waiting for a login that never comes held a push for
    ever). :meth:`ready` has them resolved, or renewed when they near expiry, first:
    one resolution at a time, waited for by every request until the policy's bound from
    its start, after which each fails at once while it still runs."""

    def __init__(self, fs: Any, url: str) -> None:
        self._fs = fs
        self._url = url
        self._credentials: Any = None
        self._lock = threading.Lock()
        self._pending: concurrent.futures.Future[Any] | None = None
        self._started = 0.0

    def ready(self, policy: Policy) -> None:
        fs = self._fs
        if fs.anon or (fs.key and fs.secret):
            return  # none to resolve
        credentials = self._credentials
        if credentials is not None and not getattr(credentials, "refresh_needed", bool)():
            return
        with self._lock:
            if self._pending is None or self._pending.done():
                self._pending = asyncio.run_coroutine_threadsafe(self._resolve(), fs.loop)
                self._started = time.monotonic()
            pending, left = self._pending, self._started + policy.total - time.monotonic()
        try:
            self._credentials = pending.result(timeout=max(0.0, left))
        except TimeoutError:
            raise StorageUnavailableError(
                self._url,
                f"{self._url}: the AWS credentials gave no answer in {policy.total:g} s (a "
                "credential_process, SSO or role that does not answer): check them with "
                f"`aws sts get-caller-identity`, or allow longer with {TIMEOUT_VARIABLE}="
                f"SECONDS (now {policy.total:g})",
            ) from None

    async def _resolve(self) -> Any:
        try:
            await self._fs.set_session()  # the client, and the credentials it was made with
            credentials = await self._fs.session.get_credentials()
            if credentials is not None:
                await credentials.get_frozen_credentials()  # renewed if they near expiry
        except UNRENEWED:
            raise
        except (ValueError, KeyError) as exc:  # a credential_process that printed garbage
            raise CredentialRetrievalError(provider="their provider", error_msg=repr(exc)) from exc
        return credentials


class _OneAttemptSession(AIOHTTPSession):
    """Sends each request once: every retry is the policy's, and counted.

    aiohttp sends a PUT again by itself when a kept-alive connection drops before the
    answer (RFC 9112 allows it for idempotent methods). A conditional write that had
    landed then failed its own condition on what looked like a first attempt, and the
    ref store took our own write for another writer's: a false conflict.
    """

    async def _get_session(self, proxy_url: Any) -> Any:
        session = await super()._get_session(proxy_url)
        session._retry_connection = False  # aiohttp has no public switch for it
        return session
