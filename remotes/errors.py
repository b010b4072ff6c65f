"""Errors of remotes; all derive from :class:`cas.errors.CasError`.

::

    CasError
    ├── NotFoundError
    │   └── RemoteNotFoundError   no remote of that name
    ├── PushRejectedError         the remote has versions we do not: pull first
    ├── UsageError
    │   └── RemoteExistsError     a remote's name taken by another URL
    └── RemoteAccessDeniedError   the remote's store refused our credentials
                                  (also a PermissionError)
"""

from __future__ import annotations

from cas.errors import AccessDeniedError, CasError, NotFoundError, UsageError


class RemoteNotFoundError(NotFoundError):
    pass


class RemoteExistsError(UsageError):
    pass


class PushRejectedError(CasError):
    def __init__(self, names: list[str], remote: str) -> None:
        self.names = names
        super().__init__(
            f"push to {remote} rejected: the remote has versions you do not have for "
            f"{', '.join(names)}; run `artifacts pull` (and `artifacts rebase` if they "
            "diverged), then push again, or push --force to overwrite them"
        )


class RemoteAccessDeniedError(AccessDeniedError):
    """The remote's store refused a read or write (e.g. a bucket policy fences it)."""

    def __init__(self, remote: str, url: str, what: str, detail: str = "") -> None:
        self.remote = remote
        self.url = url
        self.what = what
        self.key = what
        reason = f" ({detail})" if detail else ""
        CasError.__init__(
            self,
            f"{remote} ({url}) refused to let you {what}{reason}: your credentials lack "
            "the permission; in a store shared by many teams each may write only its own "
            "refs/<entity>/ (see docs/sharing.md)",
        )
