"""``from wandb.apis.public import Api, Run…``, with ``artifacts``: W&B's public API
classes, as this package has them (``Run`` is a run as its record tells)."""

from artifacts.api import Api
from artifacts.artifact_files import ArtifactFiles
from artifacts.org_registry import OrgRegistry as Registry
from artifacts.public import ArtifactCollection, ArtifactType, Project
from artifacts.public_runs import RecordedRun as Run

__all__ = [
    "Api",
    "ArtifactCollection",
    "ArtifactFiles",
    "ArtifactType",
    "Project",
    "Registry",
    "Run",
]
