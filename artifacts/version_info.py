"""What W&B tells of an artifact besides its files and links: state, times, counts,
the collection it belongs to, and the runs that logged and used it.

``VersionInfo`` is a part of ``Artifact`` (artifacts.artifact), kept apart to keep that
module short. It relies on what ``Artifact`` defines: ``_version()`` (the registry and
the version, or ArtifactStateError for a draft), ``_logged`` (None for a draft),
``_name`` (the name without version), ``_distributed_id``, ``_check_open()``,
``version``, ``entity``, ``project``, ``qualified_name``, ``id``, ``source_name``,
``source_version``, ``is_link``, ``_incremental`` and ``from_version``; and, for the editable
tags, aliases and TTL (saved by ``Artifact.save``), ``_tags``, ``_aliases``,
``_saved_aliases``, ``_ttl`` and ``_saved``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from . import annotations
from . import ttl as ttl_rules
from .deletion_records import read_deletion
from .errors import ArtifactNotFoundError, ArtifactNotLoggedError, InvalidTTLError
from .public import ArtifactCollection, iso_time
from .public_runs import RecordedRun


class VersionInfo:
    _logged: Any
    _name: str
    _distributed_id: str | None
    _version: Any
    _check_open: Any
    from_version: Any
    version: Any
    entity: Any
    project: Any
    _tags: list[str]
    _aliases: list[str]
    _saved_aliases: list[str]
    _ttl: ttl_rules.Policy
    _saved: annotations.Annotations | None
    type: str
    is_link: bool
    _incremental: bool
    qualified_name: Any
    id: Any
    source_artifact: Any
    source_name: Any
    source_version: Any

    @property
    def collection(self) -> ArtifactCollection:
        """The versions of this artifact (W&B's collection)."""
        registry, v = self._version()
        return ArtifactCollection(registry, v.entity, v.project, v.name, v.type, self.from_version)

    @property
    def state(self) -> str:
        """``PENDING`` (a draft), ``COMMITTED``, or ``DELETED`` (artifacts.deletion)."""
        if self._logged is None:
            return "PENDING"
        registry, v = self._version()
        deleted = read_deletion(registry.repo, v.entity, v.project, v.name, v.commit_id)
        return "COMMITTED" if deleted is None else "DELETED"

    @property
    def distributed_id(self) -> str | None:
        """The distributed version a draft is a part of, or a version was finished from."""
        if self._logged is None:
            return self._distributed_id
        return self._logged.commit.meta.get("distributed_id")

    @distributed_id.setter
    def distributed_id(self, distributed_id: str | None) -> None:
        self._check_open()
        self._distributed_id = distributed_id

    @property
    def tags(self) -> list[str]:
        """The version's tags: a list to edit in place, or set; ``save()`` stores them."""
        self._version()
        return self._tags

    @tags.setter
    def tags(self, tags: list[str]) -> None:
        self._version()
        self._tags = annotations.validate_tags([tags] if isinstance(tags, str) else tags)

    @property
    def aliases(self) -> list[str]:
        """The version's aliases, ``latest`` included: a list to edit in place, or set;
        ``save()`` moves them. Read afresh from the store until edited."""
        registry, version = self._version()
        if self._aliases == self._saved_aliases:
            self._aliases[:] = self._saved_aliases[:] = registry.aliases(version)
        return self._aliases

    @aliases.setter
    def aliases(self, aliases: list[str]) -> None:
        self.aliases  # noqa: B018  (read the saved ones first: save() moves the difference)
        self._aliases = [aliases] if isinstance(aliases, str) else list(aliases)

    @property
    def ttl(self) -> timedelta | None:
        """How long the version lives from when it was logged; None: for ever. Inherited,
        it is the project's default, known once logged and saved (W&B's rule)."""
        if self._ttl is not ttl_rules.ArtifactTTL.INHERIT:
            return ttl_rules.as_timedelta(self._ttl)
        if self._logged is None or self._saved is None or self._saved.ttl != self._ttl:
            raise ArtifactNotLoggedError(
                f"the inherited TTL of {self._name!r} is known once it is logged and saved"
            )
        registry, version = self._version()
        default = ttl_rules.default(registry.repo, version.entity, version.project)
        return ttl_rules.as_timedelta(default)

    @ttl.setter
    def ttl(self, ttl: timedelta | ttl_rules.ArtifactTTL | None) -> None:
        """A positive timedelta, None (never expires) or ``ArtifactTTL.INHERIT``; of a
        logged version, stored by ``save()``."""
        if self.type == "wandb-history":
            raise InvalidTTLError("Cannot set artifact TTL for type wandb-history")
        if self.is_link:  # W&B's rule and words: a link never expires (artifacts.ttl)
            raise InvalidTTLError(
                "Cannot set TTL for link artifact. Unlink the artifact first then set the "
                "TTL for the source artifact"
            )
        self._ttl = ttl_rules.check(ttl)

    def ttl_policy(self) -> ttl_rules.Policy:
        """The TTL as set: seconds, None, or ``ArtifactTTL.INHERIT`` (for the CLI)."""
        return self._ttl

    @property
    def created_at(self) -> str:
        """When the version was logged, ISO 8601 in UTC."""
        return iso_time(self._version()[1].commit.meta["time"])

    @property
    def updated_at(self) -> str:
        """When its annotations were last edited, else when it was logged (the moves
        of its aliases are not recorded)."""
        registry, version = self._version()
        newest = next(annotations.history(registry, version), None)
        return iso_time(newest.time) if newest is not None else self.created_at

    def annotation_history(self) -> list[annotations.Record]:
        """Every saved edit of the description, metadata and tags, newest first."""
        registry, version = self._version()
        return list(annotations.history(registry, version))

    @property
    def incremental(self) -> bool:
        """W&B's ``Artifact(incremental=True)``, as given."""
        return self._incremental

    @property
    def use_as(self) -> None:
        """W&B's deprecated ``use_as``: always None, as in W&B."""
        return None

    @property
    def commit_hash(self) -> str:
        """The id of the version's commit (``id``)."""
        return self._version()[1].commit_id.hex()

    @property
    def history_step(self) -> None:
        """W&B's step of the run's history metrics; a run here logs none: None."""
        self._version()
        return None

    @property
    def url(self) -> str:
        """The version's ``artifacts://`` URL: fsspec opens its files below it
        (docs/fsspec.md). W&B's is a page of its web app, which there is none of."""
        self._version()
        return f"artifacts://{self.qualified_name}"

    def json_encode(self) -> dict[str, Any]:
        """The version as W&B encodes it, to put in a run's config."""
        self._version()
        return {
            "_type": "artifactVersion",
            "_version": "v0",
            "id": self.id,
            "version": self.source_version,
            "sequenceName": self.source_name.split(":")[0],
            "usedAs": None,
        }

    @property
    def file_count(self) -> int:
        """Files, references included (recorded when logged: nothing is read)."""
        registry, version = self._version()
        return registry.file_count(version)

    def _source_here(self) -> Any:
        """The version this one links (itself if no link); None if the store lacks it."""
        try:
            return self.source_artifact
        except ArtifactNotFoundError:  # not pulled, or deleted: the link stands alone
            return None

    def logged_by(self) -> RecordedRun | None:
        """The run that logged this version, in whichever project it lived; of a link,
        its source's (a link and its source are one artifact in W&B)."""
        source = self._source_here()
        if source is not None and source is not self:
            return source.logged_by()
        registry, version = self._version()
        run_id = version.commit.meta.get("run")
        found = registry.find_run(run_id, version.entity, version.project) if run_id else None
        return RecordedRun(found, registry, self.from_version) if found else None

    def used_by(self) -> list[RecordedRun]:
        """Every run that used this version (``use_artifact``), or, as W&B's, its source
        or any link of it: W&B's links are the one artifact under other names."""
        registry, version = self._version()
        source = self._source_here()
        wanted = {version.commit_id.hex()}
        if source is not None:
            wanted |= {source.id, *(link.id for link in source.linked_artifacts)}
        # Any project's run may use this version ("team/proj/name:v0"): look at them all.
        return [
            RecordedRun(r, registry, self.from_version)
            for r in registry.all_runs()
            if not wanted.isdisjoint(r.used)
        ]
