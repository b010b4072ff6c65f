"""artifacts: version datasets and models in a content-addressed store.

Words used here (W&B's, where W&B has one):

- **artifact**: a named, typed collection of files (``dataset``, ``model``…).
- **version**: one logged state of an artifact, ``v0``, ``v1``…; a commit
  whose tree holds the files. Identical content makes no new version.
- **alias**: a movable name for one version (``latest``, ``best``).
- **draft**: an artifact being edited; logging it makes the next version.
- **run**: a process that logs and uses versions; recorded for lineage.
- **distributed version**: parts upserted by many runs under one
  ``distributed_id``, merged into one version by ``finish_artifact``.

``import artifacts`` mirrors ``import wandb`` for everything above.
"""

from cas.errors import CasError, NotFoundError, ReferenceChangedError, UsageError

from .artifact import Artifact, Manifest
from .errors import (
    ArtifactNotFoundError,
    ArtifactStateError,
    DuplicateEntryError,
    MergeConflictError,
    TypeMismatchError,
)
from .files import Entry, VerificationError
from .registry import RunRecord
from .run import Run, current_run, init

__all__ = [
    "Artifact",
    "ArtifactNotFoundError",
    "ArtifactStateError",
    "CasError",
    "DuplicateEntryError",
    "Entry",
    "Manifest",
    "MergeConflictError",
    "NotFoundError",
    "ReferenceChangedError",
    "Run",
    "RunRecord",
    "TypeMismatchError",
    "UsageError",
    "VerificationError",
    "current_run",
    "init",
]
