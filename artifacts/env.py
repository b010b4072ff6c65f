"""What a script may set by environment variable: ours (``ARTIFACTS_<NAME>``) first,
else W&B's (``WANDB_<NAME>``), so that a script configured for W&B (a CI job, a sweep
agent, a launcher) logs into the project and run it meant to."""

from __future__ import annotations

import os
import tempfile


def setting(name: str) -> str | None:
    """``$ARTIFACTS_<name>``, else ``$WANDB_<name>``; None if neither is set (or empty)."""
    return os.environ.get(f"ARTIFACTS_{name}") or os.environ.get(f"WANDB_{name}") or None


def tags_setting() -> list[str] | None:
    """``$ARTIFACTS_TAGS`` or ``$WANDB_TAGS``, comma-separated as W&B reads them."""
    found = setting("TAGS")
    return None if found is None else [t.strip() for t in found.split(",") if t.strip()]


def run_dir(entity: str, project: str, run_id: str) -> str:
    """W&B's ``run.dir``: where a script writes a run's files, below ``$ARTIFACTS_DIR``,
    else W&B's ``$WANDB_DIR``, else the system's temporary directory."""
    root = os.path.abspath(setting("DIR") or tempfile.gettempdir())
    return os.path.join(root, "artifacts-runs", entity, project, run_id)
