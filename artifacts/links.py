"""Links: a logged version made a version of another collection, with no data copied.

A link is a version commit in the target collection's own chain (its own numbers and
aliases): its tree is the source version's tree (shared by id), and its ``meta``
holds, under ``link``, which version it links: ``entity``, ``project``, ``artifact``,
``version`` (the source's number) and ``commit`` (its commit id). The target is
usually a registry's collection (artifacts.registries), or W&B's legacy model
registry ``<entity>/model-registry/<name>``; any ``entity/project/name`` works.

Linking a version already linked into a collection gives back that link (W&B does
not duplicate); linking a link links its source.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cas import ObjectId
from cas.errors import InvalidNameError, UsageError

from . import annotations, deletion, registries
from .deletion_records import read_deletion
from .errors import ArtifactNotFoundError, RegistryError, VersionDeletedError
from .names import (
    ARTIFACT_NAME,
    NAMESPACE,
    split_path_of,
    validate_artifact_name,
    validate_namespace,
)
from .registry import Registry, Version

LEGACY_MODEL_REGISTRY = "model-registry"


@dataclass(frozen=True)
class Target:
    """The collection a version is linked into."""

    entity: str  # for a registry, its organization
    project: str
    name: str

    @property
    def registry(self) -> str | None:
        """The registry's name, if the target is a registry's collection."""
        if registries.is_registry_project(self.project):
            return self.project.removeprefix(registries.PREFIX)
        return None

    def __str__(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}"


def parse_target(path: str, entity: str, project: str) -> Target:
    """``[[org_or_entity/]project/]collection`` (``wandb-registry-R/C``, ``O/wandb-
    registry-R/C``, ``model-registry/C``…); the parts left out are ``entity`` and
    ``project`` (for a registry, ``entity`` is its organization)."""
    if not isinstance(path, str) or ":" in path:
        raise InvalidNameError(str(path), "a link target is [[ORG/]PROJECT/]COLLECTION")
    entity, project, name = split_path_of(
        path, entity, project, path, "a link target is [[ORG/]PROJECT/]COLLECTION"
    )
    if project == registries.PREFIX:  # else a plain project of that name, made by a typo
        raise InvalidNameError(path, f"no registry name after {registries.PREFIX!r}")
    # A registry's name where a collection or an organization goes: a collection of that
    # name in a plain project, or an entity of it, would be made.
    if name.startswith(registries.PREFIX):
        raise UsageError(
            f"{name} is a registry: link into one of its collections, {name}/COLLECTION"
        )
    if entity.startswith(registries.PREFIX):
        raise UsageError(
            f"{entity} is a registry, not an organization: a link target is "
            "[ORG/]wandb-registry-R/COLLECTION"
        )
    if registries.is_registry_project(project):
        project = registries.project_of(project)
    return Target(
        validate_namespace(entity, "entity"),
        validate_namespace(project, "project"),
        validate_artifact_name(name),
    )


@dataclass(frozen=True)
class Source:
    """The version a link names."""

    entity: str
    project: str
    name: str
    number: int
    commit_id: ObjectId


def source_of(version: Version) -> Source | None:
    """The version ``version`` links, or None if it is no link; checked, as a store
    may be hostile or damaged (an unreadable link reads as none)."""
    link = version.commit.meta.get("link")
    if not isinstance(link, dict):
        return None
    entity, project, name, number, commit = (
        link.get(k) for k in ("entity", "project", "artifact", "version", "commit")
    )
    valid = (
        all(isinstance(v, str) and NAMESPACE.fullmatch(v) for v in (entity, project))
        and isinstance(name, str)
        and ARTIFACT_NAME.fullmatch(name)
        and isinstance(number, int)
        and not isinstance(number, bool)
        and isinstance(commit, bytes)
        and len(commit) == 32
    )
    return Source(entity, project, name, number, commit) if valid else None


def source_version(registry: Registry, link: Version) -> Version:
    """The version ``link`` links, read from the store."""
    source = source_of(link)
    assert source is not None
    if not registry.objects.has(source.commit_id):
        raise ArtifactNotFoundError(
            f"{link.label} links {source.entity}/{source.project}/{source.name}:v"
            f"{source.number}, which this store does not hold: pull it"
        )
    found = registry.version(source.entity, source.project, source.commit_id, source.name)
    gone = read_deletion(
        registry.repo, source.entity, source.project, source.name, source.commit_id
    )
    if gone is not None:  # the link's tree is its own: its files stay readable
        raise VersionDeletedError(
            f"{link.label} links {found.label}, which was deleted {gone.describe()}"
        )
    return found


def link(
    registry: Registry,
    version: Version,
    target: Target,
    aliases: list[str],
    run_id: str | None,
) -> Version:
    """Link ``version`` (or, for a link, its source) into ``target`` with ``aliases``;
    the existing link if it has one there."""
    if source_of(version) is not None:
        version = source_version(registry, version)
    if target.registry is not None:
        accepted = registries.existing(registry, target.entity, target.registry)
        if not accepted.accepts(version.type):
            raise RegistryError(
                f"registry {target.registry!r} accepts artifact types "
                f"{', '.join(accepted.artifact_types)}, not {version.type!r}"
            )
    state = annotations.current(registry, version)
    meta: dict[str, Any] = {
        "link": {
            "entity": version.entity,
            "project": version.project,
            "artifact": version.name,
            "version": version.number,
            "commit": version.commit_id,
        },
        "run": run_id,
        "description": state.description,
        "metadata": state.metadata,
    }

    def linked_before(head: Version) -> Version | None:
        return next(_links_of(registry, head, version.commit_id), None)

    made, _ = registry.log(
        target.entity,
        target.project,
        target.name,
        version.type,
        version.tree,
        version.commit.meta["size"],
        meta,
        aliases,
        reuse=linked_before,
        files=registry.file_count(version),
    )
    return made


def _links_of(registry: Registry, head: Version, commit_id: ObjectId) -> Iterator[Version]:
    """The versions from ``head`` back that link the version ``commit_id``."""
    for candidate in registry.history(head):
        found = source_of(candidate)
        if found is not None and found.commit_id == commit_id:
            yield candidate


def links_by_source(registry: Registry, entity: str) -> dict[ObjectId, list[Version]]:
    """Every link in the registries of ``entity`` (taken as an organization) and in its
    legacy model registry, by the commit id of the version each links: one listing of
    those namespaces' refs, for all of an entity's versions at once."""
    found: dict[ObjectId, list[Version]] = {}
    prefixes = (f"{entity}/{registries.PREFIX}", f"{entity}/{LEGACY_MODEL_REGISTRY}/")
    for prefix in prefixes:
        for ref in sorted(registry.refs.names(prefix)):
            parts = ref.split("/")
            if len(parts) != 5 or parts[2] != "artifacts" or parts[4] != "latest":
                continue
            head = registry.head(parts[0], parts[1], parts[3])
            for candidate in registry.history(head) if head is not None else ():
                source = source_of(candidate)
                if source is not None:
                    found.setdefault(source.commit_id, []).append(candidate)
    return found


def linked(registry: Registry, version: Version) -> list[Version]:
    """The links of ``version``: looked for in the registries of its entity (taken as
    its organization) and in its entity's legacy model registry, not elsewhere, so only
    those namespaces' refs are listed."""
    return links_by_source(registry, version.entity).get(version.commit_id, [])


def linked_at(version: Version) -> int | None:
    """When ``version`` was linked (ns since the epoch); None if it is no link."""
    return version.commit.meta["time"] if source_of(version) is not None else None


def unlink(registry: Registry, link: Version, run: str | None = None) -> None:
    """Remove ``link`` from its collection: the deletion of that version alone, its
    aliases with it (the source version and its data stay)."""
    deletion.delete_version(registry, link, delete_aliases=True, run=run, reason="unlink")
