"""How an S3 store's client is made: a botocore session shared per set of
credentials, our timeouts, and one attempt per request (cas.storage.network retries);
which of its errors are about the credentials themselves.
"""

from __future__ import annotations

import os
from typing import Any

from aiobotocore.httpsession import AIOHTTPSession
from botocore.exceptions import (
    CredentialRetrievalError,
    NoAuthTokenError,
    RefreshWithMFAUnsupportedError,
    SSOError,
    TokenRetrievalError,
)

from .network import Policy
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
