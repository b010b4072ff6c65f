"""W&B's import paths below ``wandb.sdk.artifacts``."""
