"""What W&B tells of an artifact's links: ``link()``, ``unlink()``, ``is_link``, the
``source_*`` names, ``source_artifact``, ``linked_artifacts`` and ``linked_at``.

``LinkInfo`` is a part of ``Artifact`` (artifacts.artifact), kept apart to keep that
module short. It relies on what ``Artifact`` defines: ``_version()``, ``_logged``,
``_name``, ``version``, ``entity``, ``project``, ``type``, ``collection``,
``is_draft()``, ``save()`` and ``from_version``.
"""

from __future__ import annotations

from typing import Any

from . import links
from .errors import NotALinkError
from .lineage import current_run
from .public import ArtifactCollection, iso_time


class LinkInfo:
    _logged: Any
    _name: str
    _version: Any
    from_version: Any
    version: Any
    entity: Any
    project: Any
    type: Any
    collection: Any
    is_draft: Any
    save: Any

    def _source(self) -> links.Source | None:
        return None if self._logged is None else links.source_of(self._logged)

    @property
    def is_link(self) -> bool:
        """Is this version a link to a version logged elsewhere (artifacts.links)?"""
        return self._source() is not None

    @property
    def source_entity(self) -> str:
        source = self._source()
        return self.entity if source is None else source.entity

    @property
    def source_project(self) -> str:
        source = self._source()
        return self.project if source is None else source.project

    @property
    def source_name(self) -> str:
        """``name:vN`` of the source version; a draft's name alone (its version is not
        known yet)."""
        if self._logged is None:
            return self._name
        source = self._source()
        return (
            f"{self._name}:{self.version}" if source is None else f"{source.name}:v{source.number}"
        )

    @property
    def source_version(self) -> str:
        source = self._source()
        return self.version if source is None else f"v{source.number}"

    @property
    def source_qualified_name(self) -> str:
        return f"{self.source_entity}/{self.source_project}/{self.source_name}"

    @property
    def source_collection(self) -> ArtifactCollection:
        """The versions of the artifact the source version was logged as."""
        source = self._source()
        if source is None:
            return self.collection
        registry, _ = self._version()
        return ArtifactCollection(
            registry, source.entity, source.project, source.name, self.type, self.from_version
        )

    @property
    def source_artifact(self) -> Any:
        """The version this one links; itself if it is no link."""
        registry, version = self._version()
        if links.source_of(version) is None:
            return self
        return self.from_version(registry, links.source_version(registry, version))

    @property
    def linked_artifacts(self) -> list[Any]:
        """The links of this version in its organization's registries and legacy model
        registry (none for a link)."""
        registry, version = self._version()
        if links.source_of(version) is not None:
            return []
        return [self.from_version(registry, v) for v in links.linked(registry, version)]

    @property
    def linked_at(self) -> str | None:
        """When this link was made, ISO 8601 in UTC; None if it is no link."""
        return iso_time(links.linked_at(self._version()[1]))

    def link(self, target_path: str, aliases: list[str] | str | None = None) -> Any:
        """Link this version (a draft is logged first) into ``target_path``
        (``wandb-registry-R/C``, ``ORG/wandb-registry-R/C``, ``model-registry/C``…) with
        ``aliases``; returns the linked version, the existing one if already linked."""
        if self.is_draft():
            self.save()
        registry, version = self._version()
        target = links.parse_target(target_path, version.entity, version.project)
        aliases = [aliases] if isinstance(aliases, str) else list(aliases or [])
        run = current_run()
        made = links.link(registry, version, target, aliases, run.id if run else None)
        return self.from_version(registry, made)

    def unlink(self) -> None:
        """Remove this link from its collection (the source version stays)."""
        registry, version = self._version()
        if links.source_of(version) is None:
            raise NotALinkError(
                f"{self.entity}/{self.project}/{self._name}:{self.version} is not a link; "
                "delete() deletes a version"
            )
        run = current_run()
        links.unlink(registry, version, run.id if run else None)
