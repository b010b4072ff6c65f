"""Runs: ``artifacts.init()`` opens one; it logs and uses artifact versions.

The store a run writes to is, in order: ``init(store=...)``, the
``ARTIFACTS_STORE`` environment variable (any fsspec URL), or the nearest
``.artifacts/`` directory above the working directory, created here if
there is none. ``init(store_options={...})`` passes options to the storage
backend (e.g. ``endpoint_url``, ``key``, ``secret`` for S3).
"""

from __future__ import annotations

import getpass
import os
import secrets
import time
from typing import Any

from cas import Commit, ObjectId, PackWriter, Repository
from cas.errors import RefConflictError, UsageError
from cas.ingest import OnStored
from cas.storage.local import STORE_DIR

from . import trees
from .artifact import Artifact
from .errors import ArtifactNotFoundError, ArtifactStateError, MergeConflictError
from .names import parse_spec, validate_alias, validate_namespace
from .registry import Registry, RunRecord, Version, dist_prefix

_active: list[Run] = []  # W&B's module-level `wandb.run`, as a stack


def current_run() -> Run | None:
    return _active[-1] if _active else None


def find_store_url(store: str | None = None) -> str:
    if store:
        return store
    if os.environ.get("ARTIFACTS_STORE"):
        return os.environ["ARTIFACTS_STORE"]
    here = os.path.abspath(os.getcwd())
    while True:
        candidate = os.path.join(here, STORE_DIR)
        if os.path.isdir(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return os.path.join(os.getcwd(), STORE_DIR)
        here = parent


def open_registry(store: str | None = None, **options: Any) -> Registry:
    return Registry(Repository.open(find_store_url(store), **options))


def default_entity() -> str:
    entity = os.environ.get("ARTIFACTS_ENTITY")
    if entity:
        return entity
    try:
        return validate_namespace(getpass.getuser(), "entity")
    except Exception:
        return "local"


def init(
    project: str | None = None,
    entity: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    store: str | None = None,
    name: str | None = None,
    store_options: dict[str, Any] | None = None,
    **_ignored: Any,  # W&B settings with no meaning here (config, reinit, mode…)
) -> Run:
    """Start a run; use it as a context manager so it finishes cleanly."""
    return Run(
        open_registry(store, **(store_options or {})),
        entity=validate_namespace(entity or default_entity(), "entity"),
        project=validate_namespace(
            project or os.environ.get("ARTIFACTS_PROJECT") or "uncategorized", "project"
        ),
        group=validate_namespace(group, "group") if group else None,
        job_type=job_type,
        name=name,
    )


class Run:
    def __init__(
        self,
        registry: Registry,
        entity: str,
        project: str,
        group: str | None = None,
        job_type: str | None = None,
        name: str | None = None,
    ) -> None:
        self.registry = registry
        self.id = secrets.token_hex(4)
        self.entity, self.project = entity, project
        self.group, self.job_type, self.name = group, job_type, name or self.id
        self._finished = False
        self.registry.save_run(
            RunRecord(self.id, entity, project, group, job_type, self.name, time.time_ns())
        )
        _active.append(self)

    def __repr__(self) -> str:
        return f"<Run {self.entity}/{self.project}/{self.id}>"

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def _check_open(self) -> None:
        if self._finished:
            raise ArtifactStateError(f"run {self.id} has finished; start a new one with init()")

    def finish(self, exit_code: int | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        if self in _active:
            _active.remove(self)
        self.registry.update_run(self.entity, self.project, self.id, _set_ended)

    # ---- logging -------------------------------------------------------

    def _coerce(self, artifact: Artifact | str, name: str | None, type: str | None) -> Artifact:
        if isinstance(artifact, Artifact):
            return artifact
        path = str(artifact)
        made = Artifact(name or os.path.basename(os.path.abspath(path)), type or "unspecified")
        if os.path.isdir(path):
            made.add_dir(path)
        else:
            made.add_file(path)
        return made

    def _namespace(self, artifact: Artifact) -> tuple[str, str]:
        base = artifact._base
        return (base.entity, base.project) if base else (self.entity, self.project)

    def log_artifact(
        self,
        artifact_or_path: Artifact | str,
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | str | None = None,
        tags: list[str] | str | None = None,
        *,
        on_stored: OnStored | None = None,
    ) -> Artifact:
        """Log a draft as the next version; identical content reuses the latest one.
        ``on_stored(size)`` is called as the draft's files are stored (for progress)."""
        self._check_open()
        artifact = self._coerce(artifact_or_path, name, type)
        artifact._check_loggable()
        aliases, tags = _checked_labels(aliases, tags)
        if artifact._registry is not None and artifact._registry.repo.url != self.registry.repo.url:
            raise UsageError("this draft was made from a version in another store")
        base = artifact._base.tree if artifact._base else None
        with self.registry.repo.writing():
            tree, size = artifact._build(self.registry, base, on_stored)
            return self._commit(artifact, tree, size, aliases, tags, {})

    def _commit(
        self,
        artifact: Artifact,
        tree: ObjectId,
        size: int,
        aliases: list[str] | None,
        tags: list[str] | None,
        extra: dict[str, Any],
    ) -> Artifact:
        entity, project = self._namespace(artifact)
        meta = {
            "description": artifact.description,
            "metadata": artifact.metadata,
            "run": self.id,
            "tags": list(tags or []),
            **extra,
        }
        version, created = self.registry.log(
            entity, project, artifact.name, artifact.type, tree, size, meta, list(aliases or [])
        )
        if created:
            self.registry.update_run(
                self.entity,
                self.project,
                self.id,
                lambda r: r.logged.append(version.commit_id.hex()),
            )
        artifact._bind(self.registry, version)
        return artifact

    def use_artifact(
        self, artifact_or_name: Artifact | str, type: str | None = None, **_: Any
    ) -> Artifact:
        """Fetch a logged version and record that this run used it."""
        self._check_open()
        if isinstance(artifact_or_name, Artifact):
            registry, version = artifact_or_name._version()
            used = artifact_or_name
        else:
            spec = parse_spec(artifact_or_name, self.entity, self.project)
            version = self.registry.resolve(spec)
            if type is not None and version.type != type:
                raise ArtifactNotFoundError(f"{spec} has type {version.type!r}, not {type!r}")
            used = Artifact._from_version(self.registry, version)
        self.registry.update_run(self.entity, self.project, self.id, lambda r: _add_use(r, version))
        return used

    # ---- distributed runs ---------------------------------------------

    def _distributed_id(self, distributed_id: str | None) -> str:
        found = distributed_id or self.group
        if not found:
            raise UsageError(
                "a distributed artifact needs distributed_id=..., or a run started with group=..."
            )
        return validate_namespace(found, "distributed_id")

    def upsert_artifact(
        self,
        artifact: Artifact,
        distributed_id: str | None = None,
        aliases: list[str] | None = None,
    ) -> Artifact:
        """Add this run's files to a distributed version that is not finished yet."""
        self._check_open()
        artifact._check_loggable()
        did = self._distributed_id(distributed_id)
        entity, project = self._namespace(artifact)
        ref = dist_prefix(entity, project, artifact.name, did) + self.id
        store = self.registry.objects

        def compute(old: ObjectId | None) -> ObjectId:
            base = store.get_commit(old).tree if old else None
            tree, _ = artifact._build(self.registry, base)
            return store.put(_part_commit(tree, old, self.id, artifact.type))

        with self.registry.repo.writing():
            self.registry.repo.update_ref(ref, compute)
        return artifact

    def finish_artifact(
        self,
        artifact: Artifact,
        distributed_id: str | None = None,
        aliases: list[str] | str | None = None,
    ) -> Artifact:
        """Merge every run's part, and this run's files, into one new version."""
        self._check_open()
        artifact._check_loggable()
        aliases, _ = _checked_labels(aliases, None)
        did = self._distributed_id(distributed_id)
        with self.registry.repo.writing():
            return self._finish(artifact, did, aliases)

    def _finish(self, artifact: Artifact, did: str, aliases: list[str] | None) -> Artifact:
        entity, project = self._namespace(artifact)
        prefix = dist_prefix(entity, project, artifact.name, did)
        store = self.registry.objects
        own, _ = artifact._build(self.registry, None)
        head = self.registry.head(entity, project, artifact.name)
        consumed = _consumed_parts(head, did)
        listed = self.registry.refs.list(prefix)
        parts_refs = {
            name: commit_id
            for name, commit_id in listed.items()
            if commit_id.hex() != consumed.get(name[len(prefix) :])
        }
        # Parts the latest version holds, left behind by a finisher that died before
        # clearing them.
        stale = {name: c for name, c in listed.items() if name not in parts_refs}
        if (
            not parts_refs
            and head is not None
            and head.commit.meta.get("distributed_id") == did
            and artifact._base is None
            and self._holds(head, own)
        ):
            # Finishing again (a retry after a crash, before or after the commit): the
            # version exists and holds our files; making one without the parts would
            # drop them from `latest`.
            self._clear_parts(stale)
            size = head.commit.meta["size"]
            return self._commit(artifact, head.tree, size, aliases, None, {})
        parts = [trees.Part(self.id, own)] + [
            trees.Part(name[len(prefix) :], store.get_commit(commit_id).tree)
            for name, commit_id in sorted(parts_refs.items())
        ]
        with store.writer() as writer:
            tree, size = trees.merge(store, writer, parts)
            if artifact._base is not None:
                writer.flush()  # the merged trees must be readable to be walked
                tree, size = self._onto_base(artifact, tree, writer)
        extra = {
            "distributed_id": did,
            "parts": {name[len(prefix) :]: c.hex() for name, c in parts_refs.items()},
        }
        logged = self._commit(artifact, tree, size, aliases, None, extra)
        # The version holds every part now; an upsert after this starts the next one.
        self._clear_parts({**stale, **parts_refs})
        return logged

    def _clear_parts(self, parts: dict[str, ObjectId]) -> None:
        for name, commit_id in parts.items():
            try:
                self.registry.refs.delete_if_equals(name, commit_id)
            except RefConflictError:
                pass  # a part that changed meanwhile belongs to the next version

    def _holds(self, version: Version, tree: ObjectId) -> bool:
        """Does ``version`` already hold every file of ``tree``, unchanged?"""
        store = self.registry.objects
        with store.writer() as writer:
            try:
                parts = [trees.Part(self.id, tree), trees.Part("latest", version.tree)]
                merged, _ = trees.merge(store, writer, parts)
            except MergeConflictError:
                return False
        return merged == version.tree

    def _onto_base(
        self, draft: Artifact, merged: ObjectId, writer: PackWriter
    ) -> tuple[ObjectId, int]:
        """A draft's base tree with the draft's removals, then every merged file, applied."""
        store = self.registry.objects
        edits: dict[trees.Path, trees.Edit] = {
            p: e for p, e in draft._edits.items() if e is trees.REMOVE
        }
        for path, entry in trees.walk(store, merged):
            edits[tuple(path.split("/"))] = entry
        assert draft._base is not None
        return trees.apply_edits(store, writer, draft._base.tree, edits)


def _checked_labels(
    aliases: list[str] | str | None, tags: list[str] | str | None
) -> tuple[list[str], list[str]]:
    """The aliases and tags as lists, refused now if bad: a version must not be made (nor
    a file stored) for a log that fails afterwards. A single string is one label, as in W&B."""
    aliases = [aliases] if isinstance(aliases, str) else list(aliases or [])
    tags = [tags] if isinstance(tags, str) else list(tags or [])
    for alias in aliases:
        if alias != "latest":
            validate_alias(alias)
    for tag in tags:
        if not isinstance(tag, str):
            raise UsageError(f"tags are strings, not {type(tag).__name__}: {tag!r}")
    return aliases, tags


def _part_commit(tree: ObjectId, parent: ObjectId | None, run_id: str, type: str) -> Commit:
    return Commit(tree, (parent,) if parent else (), {"part_of_run": run_id, "type": type})


def _consumed_parts(head: Version | None, distributed_id: str) -> dict[str, str]:
    """Parts the latest version already holds (left behind if a finisher died)."""
    if head is None or head.commit.meta.get("distributed_id") != distributed_id:
        return {}
    return dict(head.commit.meta.get("parts") or {})


def _set_ended(record: RunRecord) -> None:
    record.ended = time.time_ns()


def _add_use(record: RunRecord, version: Version) -> None:
    if version.commit_id.hex() not in record.used:
        record.used.append(version.commit_id.hex())
