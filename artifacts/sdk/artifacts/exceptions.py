"""``from wandb.sdk.artifacts.exceptions import ArtifactNotLoggedError…``, with
``artifacts``: W&B's artifact state errors, each an ``AttributeError`` as W&B's."""

from artifacts.errors import ArtifactFinalizedError, ArtifactNotLoggedError, ArtifactStatusError

__all__ = ["ArtifactFinalizedError", "ArtifactNotLoggedError", "ArtifactStatusError"]
