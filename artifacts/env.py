"""What a script may set by environment variable: ours (``ARTIFACTS_<NAME>``) first,
else W&B's (``WANDB_<NAME>``), so that a script configured for W&B (a CI job, a sweep
agent, a launcher) logs into the project and run it meant to."""

from __future__ import annotations

import getpass
import os
import tempfile

from cas.errors import InvalidNameError, UsageError

from .names import validate_namespace


def default_entity() -> str:
    entity = _named_by("ENTITY", "entity")
    if entity:
        return entity
    try:
        return validate_namespace(getpass.getuser(), "entity")
    except Exception:
        return "local"


def default_project() -> str:
    return _named_by("PROJECT", "project") or "uncategorized"


def _named_by(name: str, what: str) -> str | None:
    """The name ``$ARTIFACTS_<name>`` (else ``$WANDB_<name>``: artifacts.env) gives,
    checked: unchecked, `a/b` named another namespace and `..` no key at all, in errors
    that never said where the name came from."""
    found = setting_from(name)
    if found is None:
        return None
    variable, value = found
    try:
        return validate_namespace(value, what)
    except InvalidNameError:
        raise UsageError(
            f"${variable} is {value!r}, no {what} name: {what} names are 1-128 of "
            "A-Z a-z 0-9 _ . -; set it to one, or unset it"
        ) from None


def setting(name: str) -> str | None:
    """``$ARTIFACTS_<name>``, else ``$WANDB_<name>``; None if neither is set (or empty)."""
    found = setting_from(name)
    return found[1] if found else None


def setting_from(name: str) -> tuple[str, str] | None:
    """The variable that gives the setting ``name`` (ours first) and its value."""
    for variable in (f"ARTIFACTS_{name}", f"WANDB_{name}"):
        if os.environ.get(variable):
            return variable, os.environ[variable]
    return None


def tags_setting() -> list[str] | None:
    """``$ARTIFACTS_TAGS`` or ``$WANDB_TAGS``, comma-separated as W&B reads them."""
    found = setting("TAGS")
    return None if found is None else [t.strip() for t in found.split(",") if t.strip()]


def run_dir(entity: str, project: str, run_id: str, root: str | None = None) -> str:
    """W&B's ``run.dir``: where a script writes a run's files, below ``root`` (W&B's
    ``init(dir=...)``), else ``$ARTIFACTS_DIR``, else W&B's ``$WANDB_DIR``, else the
    system's temporary directory."""
    root = os.path.abspath(root or setting("DIR") or tempfile.gettempdir())
    return os.path.join(root, "artifacts-runs", entity, project, run_id)
