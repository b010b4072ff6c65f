"""W&B's import paths below ``wandb.apis``, for code that imports from them."""
