"""Errors of remotes; all derive from :class:`cas.errors.CasError`.

::

    CasError
    ├── NotFoundError
    │   └── RemoteNotFoundError   no remote of that name
    └── PushRejectedError         the remote has versions we do not: pull first
"""

from __future__ import annotations

from cas.errors import CasError, NotFoundError


class RemoteNotFoundError(NotFoundError):
    pass


class PushRejectedError(CasError):
    def __init__(self, names: list[str], remote: str) -> None:
        self.names = names
        super().__init__(
            f"push to {remote} rejected: the remote has versions you do not have for "
            f"{', '.join(names)}; run `artifacts pull` (and `artifacts rebase` if they "
            "diverged), then push again, or push --force to overwrite them"
        )
