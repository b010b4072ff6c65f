"""W&B's import paths below ``wandb.sdk``, for code that imports from them."""
