"""``from wandb.sdk.artifacts.artifact import Artifact``, with ``artifacts``."""

from artifacts.artifact import Artifact

__all__ = ["Artifact"]
