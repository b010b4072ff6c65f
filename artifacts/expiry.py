"""Which versions have outlived their TTL (artifacts.ttl): what gc deletes first.

A version expires once its TTL has passed since it was logged (the ``time`` of its
commit, whenever the TTL was set: W&B counts from ``createdAt`` too). Its aliases do
not keep it, ``latest`` included: W&B deletes an expired version as ``delete`` does,
aliases and all. A version with no TTL (None), or inheriting none, never expires.

Cost: one read of each version's commit (the walk of each artifact's history), one
listing of each artifact's annotation refs, and one record read per version whose
annotations were edited: the TTL of any other version is its commit's.
"""

from __future__ import annotations

import time

from . import annotations, ttl
from .ref_names import annotation_ref
from .registry import Registry, Version


def expired(registry: Registry, now: int | None = None) -> list[Version]:
    """Every version of every artifact whose TTL ran out by ``now`` (ns since the
    epoch; default: now), by namespace, artifact name and version number."""
    now = time.time_ns() if now is None else now
    defaults = ttl.defaults(registry.repo)
    found: list[Version] = []
    for entity, project in registry.namespaces():
        default = defaults.get(f"{entity}/{project}")
        for name in registry.artifact_names(entity, project):
            found += _expired_versions(registry, entity, project, name, default, now)
    return found


def _expired_versions(
    registry: Registry, entity: str, project: str, name: str, default: int | None, now: int
) -> list[Version]:
    head = registry.head(entity, project, name)
    if head is None:
        return []
    prefix = annotation_ref(entity, project, name, b"")
    edited = {ref[len(prefix) :] for ref in registry.refs.names(prefix)}
    found = []
    for version in registry.history(head):
        meta = version.commit.meta
        if {version.commit_id.hex(), meta.get("rebased_from")} & edited:
            policy = annotations.current(registry, version).ttl
        else:
            policy = ttl.of_version(meta)
        ends = ttl.expires_at(meta["time"], ttl.effective(policy, default))
        if ends is not None and ends <= now:
            found.append(version)
    return found[::-1]
