"""Every error this project raises derives from one base, :class:`CasError`.

::

    CasError                        base: catch this to catch everything we raise
    ├── NotFoundError               (also a LookupError)
    │   ├── ObjectNotFoundError     an object id that no store holds
    │   ├── RefNotFoundError        a ref name that is not set
    │   └── KeyNotFoundError        a storage key that does not exist
    ├── CorruptObjectError          stored bytes do not hash to their id
    ├── InvalidObjectError          bytes that are not a well-formed object
    ├── InvalidNameError            a ref, entry or artifact name we refuse
    ├── PreconditionFailedError     a conditional storage write lost its race
    │   └── RefConflictError        a compare-and-swap saw another value
    ├── AccessDeniedError           the storage refused our credentials
    │                               (also a PermissionError)
    ├── ReferenceChangedError       a referenced object is not what was logged
    ├── StorageError                a storage could not be used at all (has .url)
    │   ├── StorageUnavailableError   it did not answer, or kept refusing for now
    │   │                             (5xx, throttling), retries included
    │   ├── CredentialsNotFoundError  no credentials to sign requests with
    │   └── BucketNotFoundError       its URL names no bucket (also a NotFoundError)
    ├── UsageError                  a call that cannot be honoured as asked
    └── InvalidConfigError          a store's config.json that is not a JSON object

The upper layers (``artifacts``, ``remotes``) subclass these rather than
starting hierarchies of their own.
"""

from __future__ import annotations


class CasError(Exception):
    """Base of every error raised by this project."""


class NotFoundError(CasError, LookupError):
    """Something asked for by name or id does not exist."""


class ObjectNotFoundError(NotFoundError):
    def __init__(self, object_id: bytes, where: str = "") -> None:
        self.object_id = object_id
        self.where = where
        suffix = f" in {where}" if where else ""
        super().__init__(f"object {object_id.hex()} not found{suffix}")


class RefNotFoundError(NotFoundError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"ref {name!r} is not set")


class KeyNotFoundError(NotFoundError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"no such key: {key}")


class CorruptObjectError(CasError):
    """Stored bytes whose blake3 hash is not the id they are stored under."""

    def __init__(self, object_id: bytes, actual: bytes | None = None, detail: str = "") -> None:
        self.object_id = object_id
        self.actual = actual
        msg = f"object {object_id.hex()} is corrupt"
        if actual is not None:
            msg += f": its bytes hash to {actual.hex()}"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


class InvalidObjectError(CasError):
    """Bytes that do not decode as the object kind that was expected."""


class DamagedRefError(InvalidObjectError):
    """A ref's bytes cannot be read as a ref (a hand edit, a torn copy)."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)


class InvalidNameError(CasError, ValueError):
    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"invalid name {name!r}: {reason}")


class PreconditionFailedError(CasError):
    """A create-only or if-match write found the key in another state.

    ``retried``: the client sent the write again after an attempt that got no
    answer (a 5xx, a dropped connection), so that attempt may have landed and be
    the state this one found.
    """

    def __init__(self, key: str, detail: str = "", retried: bool = False) -> None:
        self.key = key
        self.retried = retried
        super().__init__(f"precondition failed for {key}" + (f": {detail}" if detail else ""))


class RefConflictError(PreconditionFailedError):
    """``set_if_equals`` found a value other than the expected one."""

    def __init__(self, name: str, expected: bytes | None, actual: bytes | None) -> None:
        self.name = name
        self.expected = expected
        self.actual = actual
        CasError.__init__(
            self,
            f"ref {name!r} changed underneath us: "
            f"expected {_show(expected)}, found {_show(actual)}",
        )
        self.key = name


class UsageError(CasError):
    """A request that is well-formed but cannot be done as asked."""


class InvalidConfigError(CasError):
    """A store's config.json that is not a JSON object (edited by hand, truncated)."""

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        super().__init__(
            f"{url}: config.json is not a JSON object ({detail}); fix it by hand (it holds "
            "the store's settings: remotes, chunks, gc), or replace it with {} to start "
            "them afresh"
        )


def _show(value: bytes | None) -> str:
    return "absent" if value is None else value.hex()[:16]


class AccessDeniedError(CasError, PermissionError):
    """The storage refused a read or write: a bucket policy fences that key."""

    def __init__(self, key: str, where: str = "") -> None:
        self.key = key
        suffix = f" in {where}" if where else ""
        super().__init__(
            f"access denied to {key}{suffix}: your credentials lack the permission; in a "
            "store shared by many teams each may write only its own refs/<entity>/ and the "
            "registries its policy names (see docs/sharing.md)"
        )


class ReferenceChangedError(CasError):
    """A referenced object no longer has the bytes recorded when it was logged."""

    def __init__(self, uri: str, detail: str) -> None:
        self.uri = uri
        self.detail = detail
        super().__init__(f"{uri} changed since it was logged: {detail}")


class StorageError(CasError):
    """The storage at ``url`` could not be used at all; the message says what to do."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        super().__init__(message)


class StorageUnavailableError(StorageError):
    """A storage server did not answer (timeouts, refused or reset connections), or
    answered only 5xx and throttling, for as long as ``ARTIFACTS_TIMEOUT`` allows; the
    message says which."""


class CredentialsNotFoundError(StorageError):
    """No credentials were found to sign requests to a storage with."""


class CredentialsRefusedError(StorageError):
    """The storage refused the credentials themselves (expired, revoked, mistyped):
    no permission would let them in, so this is no :class:`AccessDeniedError`."""


class BucketNotFoundError(StorageError, NotFoundError):
    def __init__(self, url: str, bucket: str, where: str) -> None:
        self.bucket = bucket
        super().__init__(
            url,
            f"{url}: bucket {bucket!r} does not exist at {where}: create it, or fix the URL "
            "or the endpoint",
        )


class CollectedError(CasError):
    """A write outlived its lease, and gc deleted an object it was about to reference."""

    def __init__(self, object_id: bytes, seconds: float) -> None:
        self.object_id = object_id
        super().__init__(
            f"object {object_id.hex()} was collected by gc while this write ran "
            f"({seconds:.0f} s, longer than the store's lease); nothing was published: "
            "run it again"
        )
