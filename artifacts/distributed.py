"""One version logged by many processes: Dask or Ray tasks, ``torchrun`` ranks.

A run holds open connections and cannot be sent to another process; what a task
carries is plain data: the store's URL and options, the names, and its shard. In
the task, :func:`upsert_part` opens a run of its own, upserts the shard as its part
and finishes the run. One finisher then merges every part into the version with
``run.finish_artifact`` (docs/scale.md shows both, on each engine).
"""

from __future__ import annotations

from typing import Any

from .artifact import Artifact
from .names import validate_namespace
from .runs import init


def part_run_id(distributed_id: str, part: str) -> str:
    """The id of the run that upserts ``part``: the same on every attempt of a task."""
    return validate_namespace(f"{distributed_id}-{part}", "part run id")


def upsert_part(
    artifact: Artifact,
    distributed_id: str,
    part: str,
    *,
    store: str | None = None,
    store_options: dict[str, Any] | None = None,
    project: str | None = None,
    entity: str | None = None,
) -> None:
    """Upsert ``artifact``'s files as part ``part`` of the distributed version
    ``distributed_id``, in ``store`` (see ``artifacts.init``).

    The part's run id is derived from ``distributed_id`` and ``part``, so a task that
    an engine runs again (after a worker died, or twice at once) writes the same part
    again instead of adding another. Each call replaces the part's files: the part is
    exactly what its last attempt upserted, nothing of an earlier attempt's stays.
    """
    with init(
        project=project,
        entity=entity,
        group=distributed_id,
        job_type="upsert",
        store=store,
        store_options=store_options,
        id=part_run_id(distributed_id, part),
        resume="allow",
    ) as run:
        run.upsert_artifact(artifact, distributed_id=distributed_id, replace=True)
