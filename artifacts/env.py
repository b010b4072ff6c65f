"""What a script may set by environment variable: ours (``ARTIFACTS_<NAME>``) first,
else W&B's (``WANDB_<NAME>``), so that a script configured for W&B (a CI job, a sweep
agent, a launcher) logs into the project and run it meant to."""

from __future__ import annotations

import os


def setting(name: str) -> str | None:
    """``$ARTIFACTS_<name>``, else ``$WANDB_<name>``; None if neither is set (or empty)."""
    return os.environ.get(f"ARTIFACTS_{name}") or os.environ.get(f"WANDB_{name}") or None


def tags_setting() -> list[str] | None:
    """``$ARTIFACTS_TAGS`` or ``$WANDB_TAGS``, comma-separated as W&B reads them."""
    found = setting("TAGS")
    return None if found is None else [t.strip() for t in found.split(",") if t.strip()]
