"""Google credentials renewed within the timeout.

gcsfs renews a store's credentials (a service account's token, a user's) from their
token endpoint as they near expiry, before the request that needs them, by a blocking
call inside the event loop, with google-auth's timeout of 120 s a try and up to three
tries: a token endpoint that never answered held every request, and the loop, for
minutes, whatever ``ARTIFACTS_TIMEOUT`` said. :class:`Renewal` renews them first, in a
thread of its own, each HTTP request bounded by the policy's timeouts and the whole
waited for no longer than the policy allows a request; gcsfs then finds them fresh.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

import requests
from google.auth.exceptions import TransportError
from google.auth.transport.requests import Request

from ..errors import CredentialsRefusedError, StorageUnavailableError
from .network import TIMEOUT_VARIABLE, Policy

# gcsfs renews credentials this long before they expire (its LOCAL_REFRESH_BUFFER).
RENEW_BEFORE = datetime.timedelta(seconds=300)


class Renewal:
    """Renewing the credentials gcsfs holds for one store (``holder.credentials``)."""

    def __init__(self, holder: Any, url: str) -> None:
        self._holder = holder
        self._url = url
        self._lock = threading.Lock()
        self._running: _Attempt | None = None

    def ensure(self, policy: Policy) -> None:
        """Return once the credentials are fresh; raise if they cannot be made so
        within ``policy.total`` seconds."""
        credentials = getattr(self._holder, "credentials", None)
        if credentials is None or _fresh(credentials):
            return  # anonymous, or good for a while yet
        with self._lock:  # one renewal at a time, waited for by every request needing it
            if self._running is None or self._running.done.is_set():
                self._running = _Attempt(credentials, policy)
            attempt = self._running
        if not attempt.done.wait(policy.total):
            raise StorageUnavailableError(
                self._url,
                f"{self._url}: the Google token endpoint {attempt.where()} gave no token in "
                f"{policy.total:g} s: check that it is reachable, or allow longer with "
                f"{TIMEOUT_VARIABLE}=SECONDS (now {policy.total:g})",
            )
        error = attempt.error
        if isinstance(error, TransportError):
            raise StorageUnavailableError(
                self._url,
                f"{self._url}: the Google token endpoint {attempt.where()} could not be "
                f"reached ({_first_line(error)}): check that it is reachable",
            ) from error
        if error is not None:
            raise CredentialsRefusedError(
                self._url,
                f"{self._url}: the Google credentials could not be renewed "
                f"({_first_line(error)}): renew them (`gcloud auth application-default "
                "login`, or a valid GOOGLE_APPLICATION_CREDENTIALS) and run the command again",
            ) from error


class _Attempt:
    """One renewal, in a daemon thread: one stuck on a silent endpoint must not keep
    the process alive."""

    def __init__(self, credentials: Any, policy: Policy) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._request: _TimedRequest | None = None
        timeout = (policy.connect_timeout, policy.read_timeout)
        threading.Thread(
            target=self._renew, args=(credentials, timeout), name="renew credentials", daemon=True
        ).start()

    def _renew(self, credentials: Any, timeout: tuple[float, float]) -> None:
        try:
            with requests.Session() as session:
                self._request = _TimedRequest(session, timeout)
                credentials.refresh(self._request)
        except Exception as exc:  # noqa: BLE001 (said by the request that waits for it)
            self.error = exc
        finally:
            self.done.set()

    def where(self) -> str:
        request = self._request
        return request.url if request is not None and request.url else "of the credentials"


class _TimedRequest(Request):
    """google-auth's request, with our timeouts instead of its 120 s; notes its URL."""

    def __init__(self, session: requests.Session, timeout: tuple[float, float]) -> None:
        super().__init__(session)
        self.url = ""
        self._timeout = timeout

    def __call__(self, url: str, *args: Any, **kwargs: Any) -> Any:
        self.url = url
        kwargs["timeout"] = self._timeout
        return super().__call__(url, *args, **kwargs)


def _fresh(credentials: Any) -> bool:
    if not credentials.valid:
        return False
    expiry = credentials.expiry  # naive UTC, as google-auth keeps it
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return expiry is None or expiry - now > RENEW_BEFORE


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
