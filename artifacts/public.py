"""What W&B's public API (``wandb.apis.public``) reads, over a registry: artifact
collections (one artifact's versions), artifact types and projects; runs as their
records tell are artifacts.public_runs'.

These objects only read. They make ``Artifact`` objects through the ``make`` function
they are given (``Artifact.from_version``), so that this module, which
artifacts.artifact imports, does not import it back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from . import collection_info
from .deletion import delete_collection
from .errors import (
    ArtifactNotFoundError,
    CollectionNotFoundError,
    UnsupportedError,
)
from .names import VERSION, validate_artifact_name
from .registry import Registry, Version

Make = Callable[[Registry, Version], Any]  # Artifact.from_version


def iso_time(ns: int | None) -> str | None:
    """ns since the epoch as W&B gives times: ISO 8601 in UTC to the second
    (``2024-05-01T12:00:00Z``), which scripts parse with ``"%Y-%m-%dT%H:%M:%SZ"``."""
    if ns is None:
        return None
    return datetime.fromtimestamp(ns // 10**9, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Project:
    """One ``entity/project`` of the store (W&B's ``Project``): its artifacts by type."""

    def __init__(self, registry: Registry, entity: str, name: str, make: Make) -> None:
        self._registry, self._make = registry, make
        self.entity, self.name = entity, name

    def __repr__(self) -> str:
        return f"<Project {self.entity}/{self.name}>"

    @property
    def path(self) -> list[str]:
        return [self.entity, self.name]

    def artifacts_types(self, per_page: int = 50) -> list[ArtifactType]:
        """The types of its artifacts, by name (W&B's spelling)."""
        found = collections(self._registry, self.entity, self.name, self._make)
        names = sorted({c.type for c in found})
        return [ArtifactType(self._registry, self.entity, self.name, n, self._make) for n in names]

    def collections(
        self,
        filters: Mapping[str, Any] | None = None,
        order: str | None = None,
        per_page: int = 50,
    ) -> list[ArtifactCollection]:
        """Its artifacts of every type, by name; ``filters`` and ``order`` refused, as
        ``ArtifactType.collections`` refuses them."""
        _refuse_queries(filters, order)
        return collections(self._registry, self.entity, self.name, self._make)


class ArtifactCollection:
    """One artifact's versions (W&B's collection, or sequence), and its own description
    and tags (artifacts.collection_info): set them, then ``save()``."""

    def __init__(
        self, registry: Registry, entity: str, project: str, name: str, type: str, make: Make
    ) -> None:
        self._registry, self._make = registry, make
        self.entity, self.project, self.name, self.type = entity, project, name, type
        self._where, self._saved_type = (entity, project, name), type  # as stored
        self._info: collection_info.CollectionInfo | None = None  # read on first use
        self._description: str | None = None
        self._tags: list[str] = []

    def _loaded(self) -> collection_info.CollectionInfo:
        """The record as read (once: a listing of many artifacts reads none)."""
        if self._info is None:
            self._info = collection_info.read(self._registry, *self._where)
            self._description, self._tags = self._info.description, list(self._info.tags)
        return self._info

    @property
    def description(self) -> str | None:
        self._loaded()
        return self._description

    @description.setter
    def description(self, description: str | None) -> None:
        self._loaded()
        self._description = description

    @property
    def tags(self) -> list[str]:
        self._loaded()
        return self._tags

    @tags.setter
    def tags(self, tags: list[str] | str) -> None:
        self._loaded()
        self._tags = [tags] if isinstance(tags, str) else list(tags)  # one string: one tag

    def __repr__(self) -> str:
        return f"<ArtifactCollection {self.entity}/{self.project}/{self.name} ({self.type})>"

    def _head(self) -> Version:
        head = self._registry.head(*self._where)
        if head is None:
            raise ArtifactNotFoundError(f"artifact {'/'.join(self._where)} not found")
        return head

    def is_sequence(self) -> bool:
        return True

    def versions(
        self, per_page: int = 50, start: str | None = None, tags: str | list[str] | None = None
    ) -> list[Any]:
        """Every version, newest first; with ``tags`` (one, or a list), those that have
        all of them. ``per_page`` and ``start``, W&B's paging, change nothing: one list."""
        wanted = {tags} if isinstance(tags, str) else set(tags or ())
        made = (self._make(self._registry, v) for v in self._registry.history(self._head()))
        return [artifact for artifact in made if wanted <= set(artifact.tags)]

    artifacts = versions  # W&B's name for the same list

    @property
    def aliases(self) -> list[str]:
        """``latest`` and every alias a version of this artifact holds."""
        self._head()
        labels = self._registry.version_labels(*self._where)
        return [label for label in labels if not VERSION.fullmatch(label)]

    def save(self) -> None:
        """Store the description and tags as edited here, over whatever was saved
        meanwhile (collection_info.save). Renaming or retyping is refused."""
        if (self.name, self.type) != (self._where[2], self._saved_type):
            raise UnsupportedError(
                f"cannot rename {self._where[2]!r} or change its type here: its versions are "
                "named and typed when logged; log them under the new name or type"
            )
        self._head()
        self._info = collection_info.save(
            self._registry, self._where, self._loaded(), self._description, self._tags
        )
        self._tags = list(self._info.tags)

    def delete(self) -> None:
        """Delete every version of this artifact, their aliases, and its own record
        (artifacts.deletion)."""
        delete_collection(self._registry, *self._where)

    @property
    def created_at(self) -> str | None:
        """When v0 was logged."""
        *_, first = self._registry.history(self._head())
        return iso_time(first.commit.meta["time"])

    @property
    def updated_at(self) -> str | None:
        """When the latest version was logged, or the record saved, whichever is later."""
        return iso_time(max(self._head().commit.meta["time"], self._loaded().updated))


class ArtifactType:
    """The artifacts of one type in a project."""

    def __init__(self, registry: Registry, entity: str, project: str, name: str, make: Make):
        self._registry, self._make = registry, make
        self.entity, self.project, self.name = entity, project, name

    def __repr__(self) -> str:
        return f"<ArtifactType {self.name}>"

    @property
    def type(self) -> str:
        return self.name

    def collections(
        self,
        filters: Mapping[str, Any] | None = None,
        order: str | None = None,
        per_page: int = 50,
        start: str | None = None,
    ) -> list[ArtifactCollection]:
        """This type's artifacts, by name. W&B's ``filters`` and ``order`` are queries
        its server runs (and older servers refuse): refused here, never ignored."""
        _refuse_queries(filters, order)
        return [
            c
            for c in collections(self._registry, self.entity, self.project, self._make)
            if c.type == self.name
        ]

    def collection(self, name: str) -> ArtifactCollection:
        """The artifact ``name`` of this type (W&B's); ArtifactNotFoundError if none."""
        head = self._registry.head(self.entity, self.project, validate_artifact_name(name))
        if head is None or head.type != self.name:
            where = f"{self.entity}/{self.project}/{name}"
            raise CollectionNotFoundError(f"no artifact {where} of type {self.name!r}")
        return ArtifactCollection(
            self._registry, self.entity, self.project, name, head.type, self._make
        )


def _refuse_queries(filters: Mapping[str, Any] | None, order: str | None) -> None:
    for keyword, query in (("filters", filters), ("order", order)):
        if query is not None:
            raise UnsupportedError(
                f"collections(..., {keyword}=...) is a W&B server query, not supported "
                "here: filter or sort the list it gives"
            )


def collections(
    registry: Registry, entity: str, project: str, make: Make
) -> list[ArtifactCollection]:
    """Every artifact of ``entity/project``, by name; each head is read for its type."""
    found = []
    for name in registry.artifact_names(entity, project):
        head = registry.head(entity, project, name)
        if head is not None:
            found.append(ArtifactCollection(registry, entity, project, name, head.type, make))
    return found
