"""``artifacts.Api()``: read versions, artifacts, types and runs without a run, as with
W&B's ``wandb.Api()``. It writes nothing to the store, not even a run record.

Names follow W&B's: ``[[entity/]project/]name:version`` for a version,
``[[entity/]project/]name`` for an artifact (a *collection*), ``[entity/]project`` for
a project, ``[[entity/]project/]run_id`` for a run. The entity and project left out
are ``Api(overrides={"entity": ..., "project": ...})``, else those ``init`` uses.

The store is ``Api(store=...)``; else the active run's, else that of the run this
process started last; else ``ARTIFACTS_STORE``, else the nearest ``.artifacts/`` (as
``init`` finds one). W&B's Api reads the server its runs
use: code that logs in a run and reads back with ``Api()`` reads the same versions.
"""

from __future__ import annotations

from typing import Any

from cas.errors import UsageError

from . import registries
from .artifact import Artifact
from .env import default_entity, default_project
from .errors import ArtifactNotFoundError, CollectionNotFoundError, RunNotFoundError
from .lineage import read_store
from .lineage_graph import LineageGraph, lineage_graph, run_key, version_key
from .names import parse_spec, validate_namespace
from .org_registry import OrgRegistry, Registries, registries_of
from .public import ArtifactCollection, ArtifactType, Project, collections
from .public_runs import RecordedRun
from .ref_names import project_of
from .registry import RunRecord

# Run fields ``runs(filters=...)`` can match, by W&B's names and ours.
_RUN_FILTERS = {
    "group": "group",
    "job_type": "job_type",
    "jobType": "job_type",
    "name": "id",
    "id": "id",
    "display_name": "name",
    "displayName": "name",
    "state": "state",  # W&B's running, finished, failed (artifacts.public_runs.RecordedRun)
}


class Api:
    def __init__(
        self,
        overrides: dict[str, Any] | None = None,
        timeout: int | None = None,
        api_key: str | None = None,
        *,
        store: str | None = None,
        store_options: dict[str, Any] | None = None,
    ) -> None:
        """Open the store ``store`` (or ``overrides["store"]``) names, else the one a run
        reads (``read_store``)."""
        overrides = overrides or {}
        if store is None:  # else another store's versions were read for these, unsaid
            store = overrides.get("store")
        self.entity = validate_namespace(overrides.get("entity") or default_entity(), "entity")
        project = overrides.get("project")
        self._project = validate_namespace(project, "project") if project else default_project()
        self._store = read_store(store, store_options)

    def __repr__(self) -> str:
        return f"<Api {self._store.repo.url} {self.entity}/{self._project}>"

    # ---- names ---------------------------------------------------------

    def _project_path(self, path: str | None) -> tuple[str, str]:
        """``[entity/]project`` -> (entity, project)."""
        if not path:
            return self.entity, self._project
        entity, _, project = path.rpartition("/")
        return (
            validate_namespace(entity or self.entity, "entity"),
            validate_namespace(project, "project"),
        )

    def _collection_path(self, name: str) -> tuple[str, str, str]:
        """``[[entity/]project/]name`` -> (entity, project, name)."""
        spec = parse_spec(name.partition(":")[0], self.entity, self._project)
        return spec.entity, spec.project, spec.name

    # ---- versions ------------------------------------------------------

    def artifact(self, name: str, type: str | None = None) -> Artifact:
        """One version: ``[[entity/]project/]name[:vN|alias]`` (``latest`` if none)."""
        spec = parse_spec(name, self.entity, self._project)
        # another type: ArtifactTypeError, W&B's ValueError (and a CommError)
        return Artifact.from_version(self._store, self._store.resolve(spec, type))

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        try:
            self.artifact(name, type)
        except ArtifactNotFoundError:
            return False
        return True

    def artifacts(
        self,
        type_name: str,
        name: str,
        order: str | None = None,  # W&B's server-side order and paging: one list here
        per_page: int = 50,
        tags: str | list[str] | None = None,
        start: str | None = None,
    ) -> list[Artifact]:
        """The versions of one artifact, newest first (with ``tags``: having them all)."""
        return self.artifact_collection(type_name, name).versions(tags=tags)

    artifact_versions = artifacts  # W&B's deprecated name

    # ---- artifacts (collections) and types ------------------------------

    def artifact_collection(self, type_name: str, name: str) -> ArtifactCollection:
        entity, project, artifact = self._collection_path(name)
        return self._type(entity, project, type_name).collection(artifact)

    def artifact_collection_exists(self, name: str, type: str) -> bool:
        try:
            self.artifact_collection(type, name)
        except ArtifactNotFoundError:
            return False
        return True

    def artifact_collections(
        self,
        project_name: str,
        type_name: str,
        order: str | None = None,
        per_page: int = 50,
        start: str | None = None,
    ) -> list[ArtifactCollection]:
        """The artifacts of type ``type_name`` in ``[entity/]project``, by name."""
        return self.artifact_type(type_name, project_name).collections(order=order)

    def artifact_types(
        self, project: str | None = None, start: str | None = None
    ) -> list[ArtifactType]:
        """The types of the artifacts in ``[entity/]project``, by name."""
        entity, project = self._project_path(project)
        return self.project(project, entity).artifacts_types()

    def artifact_type(self, type_name: str, project: str | None = None) -> ArtifactType:
        entity, project = self._project_path(project)
        if not any(c.type == type_name for c in self._collections(entity, project)):
            where = f"{entity}/{project}"
            raise CollectionNotFoundError(f"no artifact of type {type_name!r} in {where}")
        return self._type(entity, project, type_name)

    # ---- projects ------------------------------------------------------

    @property
    def default_entity(self) -> str:
        """The entity ``init`` logs to when none is given (W&B's user's default)."""
        return default_entity()

    def project(self, name: str, entity: str | None = None) -> Project:
        """W&B's ``Project``: ``entity/name`` (this Api's entity if none), as it is."""
        entity = validate_namespace(entity or self.entity, "entity")
        return Project(
            self._store, entity, validate_namespace(name, "project"), Artifact.from_version
        )

    def projects(self, entity: str | None = None, per_page: int = 200) -> list[Project]:
        """The projects of ``entity`` (this Api's if none) holding artifacts or runs, by name."""
        entity = validate_namespace(entity or self.entity, "entity")
        names = {project_of(ref) for ref in self._store.refs.names(f"{entity}/")} - {None}
        return [self.project(name, entity) for name in sorted(names)]  # type: ignore[arg-type]

    def _collections(self, entity: str, project: str) -> list[ArtifactCollection]:
        return collections(self._store, entity, project, Artifact.from_version)

    def _type(self, entity: str, project: str, name: str) -> ArtifactType:
        return ArtifactType(self._store, entity, project, name, Artifact.from_version)

    # ---- registries (artifacts.registries) ------------------------------
    # An organization is an entity here: by default this Api's.

    def registries(
        self, organization: str | None = None, filter: dict[str, Any] | None = None, **_: Any
    ) -> Registries:
        """The organization's registries (``filter``: ``name``, ``description``)."""
        org = validate_namespace(organization or self.entity, "organization")
        return registries_of(self._store, org, filter, Artifact.from_version)

    def registry(self, name: str, organization: str | None = None) -> OrgRegistry:
        """Registry ``name`` (without the ``wandb-registry-`` prefix)."""
        org = validate_namespace(organization or self.entity, "organization")
        return OrgRegistry(self._store, org, name, Artifact.from_version)

    def create_registry(
        self,
        name: str,
        visibility: str,
        organization: str | None = None,
        description: str | None = None,
        artifact_types: list[str] | None = None,
    ) -> OrgRegistry:
        """A new registry; ``artifact_types`` (default: all) are those it accepts."""
        org = validate_namespace(organization or self.entity, "organization")
        registries.create(self._store, org, name, visibility, description, artifact_types)
        return OrgRegistry(self._store, org, name, Artifact.from_version)

    # ---- runs ----------------------------------------------------------

    def run(self, path: str) -> RecordedRun:
        """``[[entity/]project/]run_id`` (W&B's ``entity/project/runs/run_id`` too)."""
        parts = path.replace("/runs/", "/").split("/")
        if not 1 <= len(parts) <= 3:
            raise UsageError(f"expected [[ENTITY/]PROJECT/]RUN_ID, not {path!r}")
        run_id = validate_namespace(parts[-1], "run id")
        entity, project = self._project_path("/".join(parts[:-1]))
        record = self._store.read_run(entity, project, run_id)
        if record is None:
            raise RunNotFoundError(f"no run {entity}/{project}/{run_id}")
        return self._recorded(record)

    def runs(
        self,
        path: str | None = None,
        filters: dict[str, Any] | None = None,
        order: str = "+created_at",
        per_page: int = 50,
        **_ignored: Any,
    ) -> list[RecordedRun]:
        """The runs of ``[entity/]project``, oldest first (``order="-created_at"``:
        newest first; also by ``summary_metrics.KEY`` or ``config.KEY``, as W&B's), those
        matching every filter: ``group``, ``job_type``, ``name`` (the id),
        ``display_name``, ``state``, ``config.KEY`` or ``summary_metrics.KEY``, each equal
        to a value, or ``tags`` holding one."""
        entity, project = self._project_path(path)
        sort_key = _run_order(order)
        checks = [_run_filter(key, value) for key, value in (filters or {}).items()]
        recorded = map(self._recorded, self._store.runs(entity, project))
        found = [r for r in recorded if all(check(r) for check in checks)]
        found.sort(key=lambda r: (r.started, r.id))  # ties in the order below: oldest first
        found.sort(key=sort_key, reverse=order.startswith("-"))
        return found

    def _recorded(self, record: RunRecord) -> RecordedRun:
        return RecordedRun(record, self._store, Artifact.from_version)

    # ---- for tools built on the library (the UI) ------------------------
    # Named apart from W&B's Api, which may give its own names other meanings.

    @property
    def store_url(self) -> str:
        return self._store.repo.url

    def namespaces(self) -> list[tuple[str, str]]:
        """Every (entity, project) that holds an artifact, registries included, sorted."""
        return self._store.namespaces()

    def lineage_graph(self, of: Artifact | RecordedRun) -> LineageGraph:
        """The runs and versions upstream and downstream of a logged version or a run,
        across projects, with registry links (artifacts.lineage_graph)."""
        if isinstance(of, RecordedRun):
            focus = run_key(of.entity, of.project, of.id)
        else:
            focus = version_key(of.id)
        return lineage_graph(self._store, focus)


# W&B's MongoDB operators that have a meaning on a record's values: each as a positive
# test ($eq, $in) and whether the result is negated.
_OPERATORS = {
    "$eq": ("$eq", False),
    "$ne": ("$eq", True),
    "$in": ("$in", False),
    "$nin": ("$in", True),
}


def _run_filter(key: str, value: Any) -> Any:
    """A test of a run record for one ``runs(filters=...)`` item: a value it must equal,
    or one of W&B's operators ``$eq``, ``$ne``, ``$in``, ``$nin``."""
    if key.startswith("$"):
        raise UsageError(f"runs(filters=...) takes no {key}: give each field its test")
    get = _run_field(key)
    tests = list(value.items()) if isinstance(value, dict) else [("$eq", value)]
    if len(tests) != 1 or tests[0][0] not in _OPERATORS:
        raise UsageError(f"runs(filters=...) takes $eq, $ne, $in and $nin, not {value!r}")
    op, want = tests[0]
    test, negated = _OPERATORS[op]
    if test == "$in" and not isinstance(want, list | tuple | set):
        raise UsageError(f"runs(filters=...): {op} takes a list, not {want!r}")

    def holds(have: Any) -> bool:
        return have == want if test == "$eq" else have in want

    if key == "tags":  # as MongoDB matches a list: by any of its items
        return lambda r: any(holds(tag) for tag in get(r)) != negated
    return lambda r: holds(get(r)) != negated


def _run_order(order: str) -> Any:
    """How ``runs(order=...)`` sorts: by start, or by a summary or config value (a dotted
    path into a dict: ``summary_metrics.acc.max``), compared as MongoDB compares them
    for W&B: a run without it lowest, then numbers, then strings."""
    field = order.lstrip("+-")
    if field == "created_at":
        return lambda r: (r.started, r.id)
    for prefix, kept in (("summary_metrics.", "summary"), ("config.", "config")):
        if field.startswith(prefix):
            path = field[len(prefix) :]
            return lambda r: _ranked(_dotted(getattr(r, kept), path))
    raise UsageError(
        f"runs can be ordered by [+-]created_at, summary_metrics.KEY or config.KEY, not {order!r}"
    )


def _dotted(items: Any, path: str) -> Any:
    """``items[path]``, else down its dots (``acc.max``: ``items["acc"]["max"]``); None."""
    if not isinstance(items, dict):
        return None
    if path in items:
        return items[path]
    head, dot, rest = path.partition(".")
    return _dotted(items.get(head), rest) if dot else None


def _ranked(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float):
        return (1, value)
    return (2, value) if isinstance(value, str) else (0, 0)


def _run_field(key: str) -> Any:
    """How to read the field ``key`` of a run record."""
    if key == "tags":
        return lambda r: r.tags
    for prefix, field in (("config.", "config"), ("summary_metrics.", "summary")):
        if key.startswith(prefix):
            return lambda r, f=field, k=key[len(prefix) :]: getattr(r, f).get(k)
    field = _RUN_FILTERS.get(key)
    if field is None:
        known = ", ".join(sorted({*_RUN_FILTERS, "config.KEY", "summary_metrics.KEY", "tags"}))
        raise UsageError(f"runs(filters=...) cannot match {key!r}; it can match {known}")
    return lambda r: getattr(r, field)
