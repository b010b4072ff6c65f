"""``from wandb.sdk.wandb_run import Run``, with ``artifacts``."""

from artifacts.runs import Run

__all__ = ["Run"]
