"""gc of an artifacts store (``artifacts gc``): delete the versions whose TTL ran out
(artifacts.expiry), then collect with every deleted version's commit released, so their
data goes as any deleted version's does (artifacts.deletion).

An expired version is deleted as ``delete(delete_aliases=True)`` deletes it (W&B: its
aliases do not keep it), with reason ``ttl`` in its deletion record. Killed at any
instant, each expired version is deleted or not (the next gc finishes the rest), and
gc's own guarantees hold (cas.gc).
"""

from __future__ import annotations

from dataclasses import dataclass

from cas.gc import DEFAULT_GRACE_SECONDS, GcReport, gc

from . import expiry
from .deletion import delete_version, released
from .errors import VersionDeletedError
from .registry import Registry, Version


@dataclass
class Collected:
    expired: list[Version]  # deleted now (a dry run: that would be)
    gc: GcReport


def collect_garbage(
    registry: Registry,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
    now: int | None = None,
    cpu_share: float | None = None,
) -> Collected:
    """Delete the versions expired by ``now`` (ns since the epoch; default: now), then
    gc. A dry run deletes nothing and reports what gc would do once they are deleted.
    ``cpu_share`` keeps gc busy at most that share of the time (cas.pacing)."""
    found = expiry.expired(registry, now)
    deleted = []
    for version in [] if dry_run else found:
        try:
            delete_version(registry, version, delete_aliases=True, reason="ttl")
        except VersionDeletedError:  # someone deleted it meanwhile: not ours to report
            continue
        deleted.append(version)
    freed = released(registry.repo)
    if dry_run:
        freed |= {version.commit_id for version in found}
    report = gc(
        registry.repo,
        grace_seconds=grace_seconds,
        dry_run=dry_run,
        released=freed,
        cpu_share=cpu_share,
    )
    return Collected(found if dry_run else deleted, report)
