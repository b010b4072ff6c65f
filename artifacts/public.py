"""What W&B's public API (``wandb.apis.public``) reads, over a registry: runs as their
records tell, artifact collections (one artifact's versions) and artifact types.

These objects only read. They make ``Artifact`` objects through the ``make`` function
they are given (``Artifact.from_version``), so that this module, which
artifacts.artifact imports, does not import it back.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from . import annotations, collection_info
from .deletion import delete_collection
from .errors import (
    ArtifactNotFoundError,
    CollectionNotFoundError,
    NotALoggedVersionError,
    OtherProjectError,
    UnsupportedError,
)
from .lineage import add_use, run_tags
from .metadata import normalize_metadata
from .names import VERSION, validate_alias, validate_artifact_name, validate_namespace
from .registry import Registry, RunRecord, Version
from .run_config import config_items

Make = Callable[[Registry, Version], Any]  # Artifact.from_version


def iso_time(ns: int | None) -> str | None:
    """ns since the epoch as W&B gives times: ISO 8601 in UTC to the second
    (``2024-05-01T12:00:00Z``), which scripts parse with ``"%Y-%m-%dT%H:%M:%SZ"``."""
    if ns is None:
        return None
    return datetime.fromtimestamp(ns // 10**9, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def version_of(registry: Registry, commit_hex: str, entity: str, project: str) -> Version:
    """The version a run record names by commit id; the commit says its own namespace
    (a run may log into, or use from, another project)."""
    commit_id = bytes.fromhex(commit_hex)
    meta = registry.commit(commit_id).meta
    return registry.version(meta.get("entity", entity), meta.get("project", project), commit_id)


# What update() stores of a RecordedRun: these first four as they are, then tags, config
# and summary.
_EDITABLE = ("name", "notes", "group", "job_type", "tags", "config", "summary")


class RecordedRun(RunRecord):
    """A run as its record tells (W&B's ``wandb.apis.public.Run``): the record's fields,
    its times as ISO strings, and the versions it logged and used as artifacts."""

    def __init__(self, record: RunRecord, registry: Registry, make: Make) -> None:
        super().__init__(**{k: getattr(record, k) for k in RunRecord.__dataclass_fields__})
        self._registry, self._make = registry, make
        self._as_read = copy.deepcopy({k: getattr(self, k) for k in _EDITABLE})

    def update(self) -> None:
        """Store what was edited on this object since it was read (W&B's ``update()``):
        its name, notes, group and job type, the tags added or removed, the config and
        summary keys set or removed; applied over the record as it is now, so that what
        others edited meanwhile stays."""
        before, tags = self._as_read, run_tags(self.tags)
        if self.group is not None and self.group != before["group"]:
            validate_namespace(self.group, "group")
        scalars = {k: getattr(self, k) for k in _EDITABLE[:4] if getattr(self, k) != before[k]}
        config = _changes(before["config"], config_items(self.config))
        summary = _changes(before["summary"], normalize_metadata(self.summary, "summary"))
        added = [t for t in tags if t not in before["tags"]]
        removed = [t for t in before["tags"] if t not in tags]

        def apply(record: RunRecord) -> None:
            record.config = _changed(record.config, *config)
            record.summary = _changed(record.summary, *summary)
            record.tags = [t for t in record.tags if t not in removed]
            record.tags += [t for t in added if t not in record.tags]
            for key, value in scalars.items():
                setattr(record, key, value)

        written = self._registry.update_run(self.entity, self.project, self.id, apply)
        for key in RunRecord.__dataclass_fields__:
            setattr(self, key, getattr(written, key))
        self._as_read = copy.deepcopy({k: getattr(self, k) for k in _EDITABLE})

    def __repr__(self) -> str:
        return f"<Run {self.entity}/{self.project}/{self.id}>"

    @property
    def path(self) -> list[str]:
        return [self.entity, self.project, self.id]

    @property
    def display_name(self) -> str | None:
        """W&B's other name for ``name``, the run's display name."""
        return self.name

    @display_name.setter
    def display_name(self, name: str | None) -> None:
        self.name = name

    @property
    def created_at(self) -> str | None:
        return iso_time(self.started)

    @property
    def summary_metrics(self) -> dict[str, Any]:
        """W&B's other name for ``summary``: each key's last value, as the run finished."""
        return self.summary

    @property
    def state(self) -> str:
        """W&B's: ``running`` until it finishes, then ``finished``, or ``failed`` if it
        finished with an exit code other than 0 (a with-block left by an exception).
        A process that died without finishing leaves its run ``running``."""
        if self.ended is None:
            return "running"
        return "failed" if self.exit_code else "finished"

    @property
    def ended_at(self) -> str | None:
        """When the run finished; None while it runs (or if it died without finishing)."""
        return iso_time(self.ended)

    def _artifacts(self, commits: list[str]) -> list[Any]:
        return [
            self._make(self._registry, version_of(self._registry, c, self.entity, self.project))
            for c in commits
        ]

    def logged_artifacts(self, per_page: int = 100) -> list[Any]:
        """The versions this run made, in the order it logged them."""
        return self._artifacts(self.logged)

    def used_artifacts(self, per_page: int = 100) -> list[Any]:
        """The versions this run used (``use_artifact``), in the order it first used them."""
        return self._artifacts(self.used)

    def use_artifact(self, artifact: Any, use_as: str | None = None) -> Any:
        """Record that this run used ``artifact``, a logged version of this store (W&B's
        way to add an input to a run after the fact); gives it back. ``use_as`` names
        the use in W&B's launch, which does not exist here."""
        _check_logged(artifact, "use_artifact", "used")
        version_of(self._registry, artifact.id, self.entity, self.project)  # in this store
        written = self._registry.update_run(
            self.entity, self.project, self.id, lambda record: add_use(record, artifact.id)
        )
        self.used = written.used
        return artifact

    def log_artifact(
        self,
        artifact: Any,
        aliases: list[str] | str | None = None,
        tags: list[str] | str | None = None,
    ) -> Any:
        """Record that this run made ``artifact``, a logged version of its project in
        this store (W&B's way to declare an output after the fact), with ``aliases``
        and ``tags`` added to it; gives it back. Its ``logged_by()`` stays its maker."""
        _check_logged(artifact, "log_artifact", "logged")
        aliases = [aliases] if isinstance(aliases, str) else list(aliases or [])
        tags = annotations.validate_tags([tags] if isinstance(tags, str) else tags or [])
        for alias in aliases:
            validate_alias(alias)
        if (artifact.source_entity, artifact.source_project) != (self.entity, self.project):
            raise OtherProjectError(
                f"{artifact.source_qualified_name} is not of {self.entity}/{self.project}: "
                "a run can log only versions of its own project"
            )
        version = version_of(self._registry, artifact.id, self.entity, self.project)

        def note(record: RunRecord) -> None:
            if artifact.id not in record.logged:
                record.logged.append(artifact.id)

        self.logged = self._registry.update_run(self.entity, self.project, self.id, note).logged
        annotations.move_aliases(self._registry, version, [], aliases)
        if set(tags) - set(annotations.current(self._registry, version).tags):
            annotations.update(self._registry, version, {"tags_add": tags}, self.id)
        return artifact


def _changes(before: dict[str, Any], now: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The keys set (to another value) and those removed since ``before``."""
    return {k: v for k, v in now.items() if before.get(k, ...) != v}, [
        k for k in before if k not in now
    ]


def _changed(items: dict[str, Any], set_keys: dict[str, Any], unset: list[str]) -> dict[str, Any]:
    return {**{k: v for k, v in items.items() if k not in unset}, **set_keys}


def _check_logged(artifact: Any, call: str, done: str) -> None:
    """Refuse what is no logged version, as W&B's public Run refuses it (ValueError)."""
    if not callable(getattr(artifact, "is_draft", None)):
        raise NotALoggedVersionError(
            f"{call} takes an Api().artifact(...), not {type(artifact).__name__}"
        )
    if artifact.is_draft():
        raise NotALoggedVersionError(
            f"{artifact.name} is a draft: only a logged version can be recorded as {done}"
        )


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
    def tags(self, tags: list[str]) -> None:
        self._loaded()
        self._tags = list(tags)

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
