"""Errors of the artifacts layer. All derive from :class:`cas.errors.CasError`.

::

    CasError                         (cas.errors: NotFoundError, InvalidNameError, …)
    ├── NotFoundError
    │   ├── ArtifactNotFoundError    no such artifact, version or alias
    │   └── RunNotFoundError         no such run (Api.run)
    ├── UsageError
    │   ├── ArtifactStateError       editing a logged artifact, using a finished run
    │   ├── TypeMismatchError        one name, two artifact types
    │   └── DuplicateEntryError      two different files at one path
    └── MergeConflictError           distributed parts disagree about a path
"""

from __future__ import annotations

from cas.errors import CasError, NotFoundError, UsageError


class ArtifactNotFoundError(NotFoundError):
    """An artifact, version or alias that does not exist."""


class RunNotFoundError(NotFoundError):
    """A run that no record names."""


class ArtifactStateError(UsageError):
    """An operation that the object's lifecycle no longer allows."""


class TypeMismatchError(UsageError):
    def __init__(self, name: str, existing: str, requested: str) -> None:
        self.name, self.existing, self.requested = name, existing, requested
        super().__init__(
            f"artifact {name!r} has type {existing!r}; cannot log it as type {requested!r}"
        )


class DuplicateEntryError(UsageError):
    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"a different file is already added at {path!r}; pass overwrite=True to replace it"
        )


class MergeConflictError(CasError):
    """Distributed parts give different contents to the same paths."""

    def __init__(self, conflicts: dict[str, list[str]]) -> None:
        self.conflicts = conflicts  # path -> ids of the runs that disagree
        shown = "; ".join(f"{p} (runs {', '.join(r)})" for p, r in sorted(conflicts.items())[:10])
        more = f" and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
        super().__init__(f"distributed parts conflict at {shown}{more}; nothing was committed")
