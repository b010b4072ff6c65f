"""W&B's ``Registry`` object, as ``Api().registry()``, ``.registries()`` and
``.create_registry()`` give it: a registry's settings to read and edit, its
collections and their versions (artifacts.registries keeps the records).

Like artifacts.public, this module makes ``Artifact`` objects through the ``make``
function it is given (``Artifact.from_version``).
"""

from __future__ import annotations

from typing import Any

from . import registries
from .public import ArtifactCollection, Make, collections, iso_time
from .registry import Registry


class OrgRegistry:
    """One registry of an organization (W&B's ``wandb.apis.public.Registry``)."""

    def __init__(self, registry: Registry, organization: str, name: str, make: Make) -> None:
        self._registry, self._make = registry, make
        self.organization = self.entity = organization
        self.name = name.removeprefix(registries.PREFIX)
        self.load()

    def __repr__(self) -> str:
        return f"<Registry {self.organization}/{self.full_name}>"

    def load(self) -> None:
        """Read the settings afresh, dropping unsaved edits."""
        self._saved = registries.existing(self._registry, self.organization, self.name)
        self.description = self._saved.description
        self.artifact_types = list(self._saved.artifact_types)
        self.visibility = self._saved.visibility

    @property
    def full_name(self) -> str:
        return registries.project_of(self.name)

    @property
    def path(self) -> list[str]:
        return [self.entity, self.full_name]

    @property
    def allow_all_artifact_types(self) -> bool:
        return not self.artifact_types

    @property
    def created_at(self) -> str | None:
        return iso_time(self._saved.created or None)

    @property
    def updated_at(self) -> str | None:
        return iso_time(self._saved.updated or None)

    def save(self) -> None:
        """Store the edited description, artifact types (added only) and visibility."""
        wanted = registries.Settings(self.description, tuple(self.artifact_types), self.visibility)
        registries.save(self._registry, self.organization, self.name, wanted)
        self.load()

    def delete(self) -> None:
        """Delete this registry, which must have no collection left."""
        registries.delete(self._registry, self.organization, self.name)

    def collections(self, filter: dict[str, Any] | None = None, **_: Any) -> Collections:
        """Its collections, by name; ``filter`` matches ``name`` and ``type``."""
        found = collections(self._registry, self.organization, self.full_name, self._make)
        return Collections(
            c for c in found if registries.matches(filter, {"name": c.name, "type": c.type})
        )

    def versions(self, filter: dict[str, Any] | None = None, **_: Any) -> list[Any]:
        """The versions of its collections (newest first in each); ``filter`` matches
        ``alias``, ``tag`` and ``version`` (``vN``)."""
        return self.collections().versions(filter)


class Collections(list[ArtifactCollection]):
    """Registry collections, whose versions can be searched in turn."""

    def versions(self, filter: dict[str, Any] | None = None, **_: Any) -> list[Any]:
        return [
            artifact
            for collection in self
            for artifact in collection.versions()
            if registries.matches(
                filter,
                {"alias": artifact.aliases, "tag": artifact.tags, "version": artifact.version},
            )
        ]


class Registries(list[OrgRegistry]):
    """``Api().registries()``: a list of registries that also searches their
    collections and versions, as W&B's lazy iterator does."""

    def collections(self, filter: dict[str, Any] | None = None, **_: Any) -> Collections:
        return Collections(c for registry in self for c in registry.collections(filter))

    def versions(self, filter: dict[str, Any] | None = None, **_: Any) -> list[Any]:
        return self.collections().versions(filter)


def registries_of(
    registry: Registry, organization: str, filter: dict[str, Any] | None, make: Make
) -> Registries:
    """The registries of ``organization`` that pass ``filter`` (``name``, ``description``)."""
    found = [
        OrgRegistry(registry, organization, n, make)
        for n in registries.names(registry, organization)
    ]
    return Registries(
        r
        for r in found
        if registries.matches(filter, {"name": r.name, "description": r.description})
    )
