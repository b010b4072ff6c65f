"""W&B's public ``Run`` (``wandb.apis.public.Run``): a run as its record tells, read
without a run (``Api().run()``), and the few writes W&B's allows on it (``update()``,
``log_artifact``, ``use_artifact``)."""

from __future__ import annotations

import copy
import warnings
from typing import Any

from . import annotations
from .errors import NotALoggedVersionError, OtherProjectError, UnsupportedError
from .lineage import add_use, run_tags
from .metadata import normalize_metadata
from .names import validate_alias, validate_namespace
from .public import Make, iso_time
from .registry import Registry, RunRecord, Version
from .run_config import config_items


def no_url(entity: str, project: str, run_id: str) -> None:
    """W&B's run URL is a page of its web app: say once there is none, as W&B says of an
    offline run's, and where ``artifacts ui`` shows the run instead."""
    warnings.warn(
        f"run {run_id} has no web page (no server): `artifacts ui` shows it at "
        f"/{entity}/{project}/~runs/{run_id}",
        stacklevel=3,
    )


def version_of(registry: Registry, commit_hex: str, entity: str, project: str) -> Version:
    """The version a run record names by commit id; the commit says its own namespace
    (a run may log into, or use from, another project)."""
    commit_id = bytes.fromhex(commit_hex)
    meta = registry.commit(commit_id).meta
    return registry.version(meta.get("entity", entity), meta.get("project", project), commit_id)


# What update() stores of a RecordedRun: these first four as they are, then tags, config
# and summary.
_EDITABLE = ("name", "notes", "group", "job_type", "tags", "config", "summary")


class Summary(dict[str, Any]):
    """W&B's public run summary: a dict whose keys read as attributes too."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"the run's summary has no key {key!r}") from None


class RecordedRun(RunRecord):
    """A run as its record tells (W&B's ``wandb.apis.public.Run``): the record's fields,
    its times as ISO strings, and the versions it logged and used as artifacts."""

    def __init__(self, record: RunRecord, registry: Registry, make: Make) -> None:
        super().__init__(**{k: getattr(record, k) for k in RunRecord.__dataclass_fields__})
        self.summary = Summary(self.summary)
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
        self.summary = Summary(self.summary)
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
    def url(self) -> None:
        no_url(self.entity, self.project, self.id)

    @property
    def username(self) -> str:
        """W&B's deprecated name of ``entity``, warned of as W&B warns."""
        warnings.warn("Run.username is deprecated: use Run.entity", DeprecationWarning, 2)
        return self.entity

    def history(self, *args: Any, **kwargs: Any) -> Any:
        """W&B's: the run's logged rows; none are kept here."""
        raise UnsupportedError(
            f"run {self.id} has no metric history here (each key's last value is kept: "
            "run.summary); read the history where the script also logged it"
        )

    scan_history = history

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
