"""W&B's ``init(mode="disabled")`` (or ``WANDB_MODE=disabled``): a run that writes
nothing, not even a store. Its config and summary live in memory; its calls return what
W&B's disabled run returns (``use_artifact`` None, ``log_artifact`` an object whose every
attribute and call is itself), so tests and dry runs of a script go through unchanged."""

from __future__ import annotations

import os
import time
from typing import Any

from cas.errors import UsageError

from .env import run_dir
from .lineage import activate, deactivate
from .run_config import RunConfig
from .run_metrics import RunSummary

# W&B's modes: "offline" logs to a local store, which every store here is; "shared" and
# the old names "dryrun" and "run" as W&B takes them.
MODES = ("online", "offline", "shared", "disabled", "dryrun", "run")


def checked_mode(mode: Any) -> str:
    if mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


class Noop:
    """What W&B's disabled ``log_artifact`` returns: every attribute and call is itself."""

    def __getattr__(self, _: str) -> Noop:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Noop:
        return self


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


class DisabledRun:
    """A run of ``mode="disabled"``: W&B's names (``dummy``…), nothing recorded."""

    disabled = True
    resumed = False
    step = 0  # W&B's disabled run's, whatever is logged
    url = None
    get_url = staticmethod(lambda: None)
    # W&B's disabled run returns None from these: nothing logged, used or linked
    use_artifact = link_artifact = log_model = use_model = link_model = log_code = _nothing
    upsert_artifact = finish_artifact = watch = unwatch = alert = define_metric = _nothing

    def __init__(
        self,
        project: str | None,
        entity: str | None,
        group: str | None = None,
        job_type: str | None = None,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        run_id: str | None = None,
        tags: Any = None,
        notes: str | None = None,
    ) -> None:
        # Imported here: its `secrets` imports hashlib, which a short command must not
        # pay for at start-up (artifacts.runs imports this module).
        from .util import generate_id

        self.id = run_id or generate_id()
        self.project, self.entity = project or "dummy", entity or "dummy"
        self.name, self.group, self.job_type = name or f"dummy-{self.id}", group, job_type
        self.tags = (tags,) if isinstance(tags, str) else tuple(tags or ())
        self.notes, self.start_time = notes, time.time()
        self.config = RunConfig(dict(config or {}), self._merge)
        self.summary = RunSummary({})
        activate(self)

    def _merge(self, changed: dict[str, Any]) -> dict[str, Any]:
        return {**self.config, **changed}

    @property
    def dir(self) -> str:
        """A directory that exists, as W&B's disabled run's (in the temporary one)."""
        path = run_dir(self.entity, self.project, self.id)
        os.makedirs(path, exist_ok=True)
        return path

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.id}"

    def __repr__(self) -> str:
        return f"<Run {self.path} (disabled)>"

    def __enter__(self) -> DisabledRun:
        return self

    def __exit__(self, *_: object) -> None:
        self.finish()

    def log(self, data: Any, *args: Any, **kwargs: Any) -> None:
        self.summary.update(data)

    def log_artifact(self, *args: Any, **kwargs: Any) -> Any:
        return Noop()

    def save(self, *args: Any, **kwargs: Any) -> bool:
        return False

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        deactivate(self)
