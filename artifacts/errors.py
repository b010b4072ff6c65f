"""Errors of the artifacts layer. All derive from :class:`cas.errors.CasError`.

::

    CasError                         (cas.errors: NotFoundError, InvalidNameError, …)
    │                                also Error, W&B's base class (wandb.errors.Error)
    ├── CommError                    W&B's "the server did not answer" (wandb.errors)
    ├── NotFoundError
    │   ├── ArtifactNotFoundError    no such artifact, version or alias    (CommError)
    │   │   ├── ArtifactTypeError    a version of another type than asked  (ValueError)
    │   │   ├── VersionDeletedError  a deleted version, named or downloaded
    │   │   ├── EntryNotFoundError   no such file in a version             (KeyError)
    │   │   └── PathNotFoundError    nothing to remove at a path           (FileNotFoundError)
    │   ├── RunNotFoundError         no such run (Api.run)                 (CommError)
    │   └── RegistryNotFoundError    no such registry                      (ValueError)
    ├── UsageError
    │   ├── UnsupportedError         a W&B server query with nothing to run on here
    │   ├── ArtifactStateError       editing a logged artifact, using a finished run
    │   │   ├── ArtifactNotLoggedError   reading a draft as a version      (AttributeError)
    │   │   └── ArtifactFinalizedError   editing a logged version's files  (AttributeError)
    │   ├── LocalPathError           a local path add_file cannot add      (ValueError)
    │   ├── InvalidPolicyError       add_file/add_dir policy not W&B's     (ValueError)
    │   ├── NotALoggedVersionError   a draft where a logged version is needed (ValueError)
    │   ├── NotOneFileError          file() of a version of several files  (ValueError)
    │   ├── UnsavedFilesError        a checkout/download would lose bytes no version holds
    │   ├── NotAReferenceError       ref_target() of a file, not a reference (ValueError)
    │   ├── InvalidTagError          a tag W&B would refuse                (ValueError)
    │   ├── InvalidTTLError          a TTL W&B would refuse                (ValueError)
    │   ├── TypeMismatchError        one name, two artifact types
    │   ├── RegistryError            a registry refusing a setting or a link (ValueError)
    │   ├── NotALinkError            unlink() of a version that is no link (ValueError)
    │   ├── NotAModelError           use_model() of a version of no model type (AssertionError)
    │   └── DuplicateEntryError      two different files at one path     (ValueError)
    ├── ReferenceChangedError        (cas.errors) a referenced object is not what was logged
    │   └── ReferenceGoneError       it no longer exists                 (FileNotFoundError)
    └── MergeConflictError           distributed parts disagree about a path

The built-in class in brackets is the one W&B raises in the same case: each of
these also derives from it, so ``except`` clauses written for wandb keep working.

:class:`StagedFileChangedWarning` (a ``UserWarning``, no error) says a staged file
changed between being added and being logged.
"""

from __future__ import annotations

from cas.errors import CasError, NotFoundError, ReferenceChangedError, UsageError

# W&B's own classes (wandb.errors), for except clauses written for wandb: its base
# class is ours, and its "server" errors are what a lookup here does not find.
Error = CasError


class CommError(CasError):
    """W&B's error for what its server did not answer: its Api (and a run's
    use_artifact) raise it for a version, artifact, type or run not found."""


class UnsupportedError(UsageError):
    """A W&B server feature that has nothing to work on here (W&B raises it for one its
    server lacks)."""


class ArtifactNotFoundError(NotFoundError, CommError):
    """An artifact, version or alias that does not exist."""


class NoSuchArtifactError(ArtifactNotFoundError):
    """An artifact name no version has in that entity and project."""

    def __init__(self, entity: str, project: str, name: str) -> None:
        self.entity = entity
        self.project = project
        super().__init__(f"artifact {entity}/{project}/{name} not found")


class VersionDeletedError(ArtifactNotFoundError):
    """A deleted version, named, used or downloaded: says who deleted it and when."""


class CollectionNotFoundError(ArtifactNotFoundError, ValueError):
    """No artifact of that name and type, or no artifact of that type, in a project
    (W&B's Api: ValueError, "Could not find artifact type")."""


class ArtifactTypeError(ArtifactNotFoundError, ValueError):
    """A version asked for by name and type has another type (W&B: ValueError)."""


class EntryNotFoundError(ArtifactNotFoundError, KeyError):
    """A path that is no file of a version (W&B: KeyError)."""

    __str__ = Exception.__str__  # the message, not KeyError's quoted repr of it


class PathNotFoundError(ArtifactNotFoundError, FileNotFoundError):
    """``remove`` of a path neither staged nor in the base (W&B: FileNotFoundError)."""


class ReferenceGoneError(ReferenceChangedError, FileNotFoundError):
    """A referenced object that no longer exists (W&B: FileNotFoundError); what
    ``download(allow_missing_references=True)`` skips."""


class RunNotFoundError(NotFoundError, CommError):
    """A run that no record names."""


class RegistryNotFoundError(NotFoundError, ValueError):
    """A registry that the organization does not have (W&B: ValueError)."""

    def __init__(self, organization: str, name: str, how: str) -> None:
        self.organization = organization
        self.name = name
        super().__init__(
            f"no registry {name!r} in organization {organization!r}: create it with {how}"
        )


class ArtifactStateError(UsageError):
    """An operation that the object's lifecycle no longer allows."""


class ArtifactStatusError(ArtifactStateError, AttributeError):
    """W&B's base of the two below: an artifact not in the state the call needs (an
    AttributeError, as W&B's)."""


class ArtifactNotLoggedError(ArtifactStatusError):
    """Reading from a draft what only a logged version has (W&B's ArtifactNotLoggedError,
    an AttributeError)."""


class ArtifactFinalizedError(ArtifactStatusError):
    """Editing the files or name of a logged version, or the files of a finalized draft
    (W&B's ArtifactFinalizedError, an AttributeError); its description, metadata, tags
    and aliases may change."""


class NoActiveRunError(UsageError, AttributeError):
    """A module-level run call (W&B's ``wandb.log_artifact``, ``wandb.config``…) with no
    run started: W&B's placeholders raise ``wandb.Error``; an AttributeError too, so that
    ``hasattr(artifacts, "config")`` is False until then."""


class ConfigError(UsageError):
    """A run's config key set again to another value without ``allow_val_change`` (W&B's
    ``ConfigError``)."""


class MetadataError(UsageError, TypeError, ValueError):
    """Metadata (or a run's config) that cannot be stored: what is no dict, or holds what
    JSON cannot (W&B: a TypeError, as its JSON encoding raises), or metadata given as
    JSON text that does not parse (W&B: the decoder's ValueError)."""


class LocalPathError(UsageError, ValueError):
    """A local path that cannot be added as a file: missing, or not a regular file
    (W&B: ValueError)."""


class InvalidPolicyError(UsageError, ValueError):
    """An ``add_file``/``add_dir`` policy other than "mutable" or "immutable" (W&B:
    ValueError)."""


class StagedFileChangedWarning(UserWarning):
    """A staged file changed between being added and being logged: it is logged as it
    is now, where W&B would have logged the copy it took when it was added."""


class NotALoggedVersionError(UsageError, ValueError):
    """A draft, or no artifact at all, where a logged version is needed (W&B:
    ValueError)."""


class OtherProjectError(UsageError, ValueError):
    """A version of another project given to a recorded run's ``log_artifact`` (W&B:
    ValueError, "A run can't log an artifact to a different project")."""


class NoDistributedIdError(UsageError, TypeError):
    """An upsert or finish with no distributed_id and no run group (W&B: TypeError)."""


class NotOneFileError(UsageError, ValueError):
    """``file()`` of a version that does not hold exactly one file (W&B: ValueError)."""


class UnsavedFilesError(UsageError):
    """A checkout or download would delete or overwrite files whose bytes the store does
    not hold."""

    def __init__(self, root: str, paths: list[str], doing: str = "checkout") -> None:
        self.root, self.paths = root, paths
        more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
        harm = "delete or overwrite" if doing == "checkout" else "overwrite"
        super().__init__(
            f"{doing} would {harm} {len(paths)} file(s) in {root} whose bytes no version "
            f"holds ({paths[0]}{more}): log them, move them, or {doing} with --force"
        )


class LocalFileExistsError(UsageError, ValueError):
    """A file of ``files()`` downloaded where a file already is, without ``replace`` or
    ``exist_ok`` (W&B's ``File.download``: ValueError)."""


class NotAReferenceError(UsageError, ValueError):
    """``ref_target()`` of an entry that is not a reference (W&B: ValueError)."""


class InvalidTagError(UsageError, ValueError):
    """A tag that is not words of letters, digits, "-" and "_" separated by spaces
    (W&B: ValueError)."""


class InvalidTTLError(UsageError, ValueError):
    """A TTL W&B would refuse: not a positive timedelta, None or ArtifactTTL.INHERIT, or
    set on a type W&B keeps for itself (W&B: ValueError)."""


class TypeMismatchError(UsageError, ValueError):
    """A name logged with another type than its versions' (W&B: ValueError, "already
    exists with type")."""

    def __init__(self, name: str, existing: str, requested: str) -> None:
        self.name, self.existing, self.requested = name, existing, requested
        super().__init__(
            f"artifact {name!r} has type {existing!r}; cannot log it as type {requested!r}"
        )


class RegistryError(UsageError, ValueError):
    """A registry setting, or a link, that W&B's rules refuse (W&B: ValueError)."""


class NotALinkError(UsageError, ValueError):
    """``unlink()`` of a version that is not a link (W&B: ValueError)."""


class NotAModelError(UsageError, AssertionError):
    """``use_model()`` of a version whose type does not contain "model" (W&B:
    AssertionError)."""


class RegisteredModelNameError(UsageError, AssertionError):
    """``link_model()`` to a registered model named with its entity or project (W&B:
    AssertionError)."""


class MediaTypeError(UsageError, TypeError):
    """W&B's media objects (``wandb.Table``, ``wandb.Image``…), which ``Artifact.add`` and
    ``Artifact.get`` take and give, do not exist here."""


class DuplicateEntryError(UsageError, ValueError):
    def __init__(self, path: str, fix: str = "pass overwrite=True to replace it") -> None:
        self.path = path
        super().__init__(f"a different file is already added at {path!r}; {fix}")


class MergeConflictError(CasError):
    """Distributed parts give different contents to the same paths."""

    def __init__(self, conflicts: dict[str, list[str]]) -> None:
        self.conflicts = conflicts  # path -> ids of the runs that disagree
        shown = "; ".join(f"{p} (runs {', '.join(r)})" for p, r in sorted(conflicts.items())[:10])
        more = f" and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
        super().__init__(f"distributed parts conflict at {shown}{more}; nothing was committed")
