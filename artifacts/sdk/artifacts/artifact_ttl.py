"""``from wandb.sdk.artifacts.artifact_ttl import ArtifactTTL``, with ``artifacts``."""

from artifacts.ttl import ArtifactTTL

__all__ = ["ArtifactTTL"]
