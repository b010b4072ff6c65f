"""Artifact versions, aliases, runs and distributed parts, as refs over a cas repository.

The refs are named in :mod:`artifacts.ref_names`.

A version is a commit whose parent is the previous version and whose
metadata says its number. Logging is a compare-and-swap of ``latest`` from
the commit it was built on, retried on conflict, so racing writers get
consecutive numbers with no gap and no duplicate. A deleted version
(artifacts.deletion_records) is left out of ``head``, ``history`` and listings,
and naming it raises :class:`VersionDeletedError`; ``latest`` is never rewound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack

from cas import Commit, ObjectId, Repository
from cas.errors import InvalidObjectError, RefConflictError
from cas.objects import Blob, canonical_packb

from . import trees
from .deletion_records import deleted_ids, read_deletion
from .errors import (
    ArtifactNotFoundError,
    ArtifactTypeError,
    NoSuchArtifactError,
    TypeMismatchError,
    VersionDeletedError,
)
from .names import ARTIFACT_NAME, VERSION, Spec, validate_alias
from .not_found import version_not_found
from .ref_names import alias_ref, head_ref, run_ref


@dataclass
class Version:
    """One logged version: its commit and what the commit says."""

    entity: str
    project: str
    commit_id: ObjectId
    commit: Commit

    @property
    def name(self) -> str:
        return self.commit.meta["artifact"]

    @property
    def number(self) -> int:
        return self.commit.meta["version"]

    @property
    def type(self) -> str:
        return self.commit.meta["type"]

    @property
    def tree(self) -> ObjectId:
        return self.commit.tree

    @property
    def files(self) -> int | None:
        """How many files it holds, references included, as recorded when it was logged;
        None for a version logged before counts were recorded (or a damaged count)."""
        files = self.commit.meta.get("files")
        return files if type(files) is int and files >= 0 else None

    @property
    def label(self) -> str:
        """``entity/project/name:vN``: how messages name it."""
        return f"{self.entity}/{self.project}/{self.name}:v{self.number}"


@dataclass
class RunRecord:
    id: str
    entity: str
    project: str
    group: str | None = None
    job_type: str | None = None
    name: str | None = None
    started: int = 0  # ns since the epoch
    ended: int | None = None
    used: list[str] = field(default_factory=list)  # commit ids (hex) of versions used
    logged: list[str] = field(default_factory=list)  # commit ids (hex) of versions logged
    config: dict[str, Any] = field(default_factory=dict)  # init(config=...), as metadata
    exit_code: int | None = None  # set when it ended: finish(exit_code=...)
    tags: list[str] = field(default_factory=list)  # init(tags=...), run.tags = ...
    notes: str | None = None  # init(notes=...), run.notes = ...
    summary: dict[str, Any] = field(default_factory=dict)  # run.log, run.summary: at finish

    def to_blob(self) -> Blob:
        # The record's fields only: a subclass (artifacts.public_runs.RecordedRun) adds handles.
        return Blob(canonical_packb({k: getattr(self, k) for k in RunRecord.__dataclass_fields__}))

    @classmethod
    def from_bytes(cls, data: bytes) -> RunRecord:
        fields = msgpack.unpackb(data, raw=False)
        return cls(**{k: v for k, v in fields.items() if k in cls.__dataclass_fields__})


class Registry:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.objects = repo.objects
        self.refs = repo.refs
        self._commits: dict[ObjectId, Commit] = {}

    def commit(self, commit_id: ObjectId) -> Commit:
        found = self._commits.get(commit_id)
        if found is None:
            found = self._commits[commit_id] = self.objects.get_commit(commit_id)
        return found

    def version(
        self, entity: str, project: str, commit_id: ObjectId, name: str | None = None
    ) -> Version:
        """The version ``commit_id`` is, checked to be one (of artifact ``name``, if given)."""
        commit = self.commit(commit_id)
        _check_version_meta(commit_id, commit.meta, name)
        return Version(entity, project, commit_id, commit)

    # ---- resolving -----------------------------------------------------

    def head(self, entity: str, project: str, name: str) -> Version | None:
        """The newest version not deleted; None if there is none."""
        commit_id = self.refs.read(head_ref(entity, project, name))
        if commit_id is None:
            return None
        return next(self.history(self.version(entity, project, commit_id, name)), None)

    def resolve(self, spec: Spec, type: str | None = None, deleted: bool = False) -> Version:
        """The version ``spec`` names; if ``type`` is given, it must be the artifact's.
        A deleted one raises VersionDeletedError, unless ``deleted``."""
        version = self._resolve(spec)
        if not deleted:
            self.not_deleted(version, spec)
        if type is not None and version.type != type:
            raise ArtifactTypeError(f"{spec} has type {version.type!r}, not {type!r}")
        return version

    def _resolve(self, spec: Spec) -> Version:
        commit_id = self.refs.read(head_ref(spec.entity, spec.project, spec.name))
        if commit_id is None:
            raise NoSuchArtifactError(spec.entity, spec.project, spec.name)
        head = self.version(spec.entity, spec.project, commit_id, spec.name)
        if spec.selector == "latest":
            return next(self.history(head), head)
        if VERSION.fullmatch(spec.selector):
            wanted = int(spec.selector[1:])
            for version in self.chain(head):
                if version.number == wanted:
                    return version
                if version.number < wanted:
                    break
        else:
            alias = alias_ref(spec.entity, spec.project, spec.name, spec.selector)
            if (commit_id := self.refs.read(alias)) is not None:
                return self.version(spec.entity, spec.project, commit_id, spec.name)
        newest = next(self.history(head), None)  # of those left
        aliases = self.alias_names(spec.entity, spec.project, spec.name)
        raise version_not_found(spec, newest.number if newest else None, aliases)

    def alias_names(self, entity: str, project: str, name: str) -> list[str]:
        """The aliases set, sorted: not those removed (a removed ref's name stays listed)."""
        prefix = alias_ref(entity, project, name, "")
        return [n[len(prefix) :] for n in self.refs.list(prefix)]

    def not_deleted(self, version: Version, spec: Spec | None = None) -> Version:
        """``version``, or VersionDeletedError saying who deleted it and when."""
        v = version
        found = read_deletion(self.repo, v.entity, v.project, v.name, v.commit_id)
        if found is None:
            return version
        named = v.label
        if spec is not None and spec.selector != f"v{v.number}":
            named = f"{spec} ({named})"
        raise VersionDeletedError(f"{named} was deleted {found.describe()}")

    def history(self, head: Version) -> Iterator[Version]:
        """The versions from ``head`` back to v0, deleted ones left out."""
        deleted = deleted_ids(self.repo, head.entity, head.project, head.name)
        return (v for v in self.chain(head) if v.commit_id not in deleted)

    def chain(self, head: Version) -> Iterator[Version]:
        """The versions from ``head`` back to v0, deleted ones included."""
        version: Version | None = head
        while version is not None:
            yield version
            parents = version.commit.parents
            version = (
                self.version(head.entity, head.project, parents[0], head.name) if parents else None
            )

    def aliases(self, version: Version) -> list[str]:
        prefix = f"{version.entity}/{version.project}/artifacts/{version.name}/aliases/"
        found = [
            n[len(prefix) :] for n, t in self.refs.list(prefix).items() if t == version.commit_id
        ]
        head = self.head(version.entity, version.project, version.name)
        is_head = head is not None and head.commit_id == version.commit_id
        return (["latest"] if is_head else []) + sorted(found)

    def version_labels(self, entity: str, project: str, name: str) -> list[str]:
        """Every name a version of artifact ``name`` goes by: v0…vN, latest, its aliases."""
        head = self.head(entity, project, name)
        if head is None:
            return []
        numbers = sorted(v.number for v in self.history(head))
        return [f"v{n}" for n in numbers] + ["latest", *self.alias_names(entity, project, name)]

    def artifact_names(self, entity: str, project: str) -> list[str]:
        prefix = f"{entity}/{project}/artifacts/"
        return sorted(
            {
                n[len(prefix) :].split("/")[0]
                for n in self.refs.names(prefix)
                if n.endswith("/latest")
            }
        )

    def namespaces(self) -> list[tuple[str, str]]:
        found = set()
        for name in self.refs.names(""):
            parts = name.split("/")
            if len(parts) > 3 and parts[2] == "artifacts":
                found.add((parts[0], parts[1]))
        return sorted(found)

    # ---- writing -------------------------------------------------------

    def log(
        self,
        entity: str,
        project: str,
        name: str,
        type: str,
        tree: ObjectId,
        size: int,
        meta: dict[str, Any],
        aliases: list[str] | tuple[str, ...] = (),
        reuse: Callable[[Version], Version | None] | None = None,
        files: int | None = None,
    ) -> tuple[Version, bool]:
        """Make ``tree`` the next version unless it equals the latest one (or, with
        ``reuse``, unless ``reuse(head)`` names a version to give back instead).
        ``files``: how many files ``tree`` holds, if the caller knows; else counted.

        Returns (version, created). Retries on conflict: each attempt re-reads
        the head, so a concurrent writer's version is never overwritten.
        """

        def same_tree(head: Version) -> Version | None:
            return head if head.tree == tree else None

        with self.repo.writing():
            return self._log(
                entity, project, name, type, tree, size, meta, aliases, reuse or same_tree, files
            )

    def _log(
        self,
        entity: str,
        project: str,
        name: str,
        type: str,
        tree: ObjectId,
        size: int,
        meta: dict[str, Any],
        aliases: list[str] | tuple[str, ...],
        reuse: Callable[[Version], Version | None],
        files: int | None,
    ) -> tuple[Version, bool]:
        for alias in aliases:  # before committing: a bad alias must not leave a version behind
            if alias != "latest":
                validate_alias(alias)
        ref = head_ref(entity, project, name)
        while True:
            old = self.refs.read(ref)
            head = None if old is None else self.version(entity, project, old, name)
            if head is not None and head.type != type:
                raise TypeMismatchError(name, head.type, type)
            existing = None if head is None else reuse(head)
            if existing is not None and not read_deletion(
                self.repo, entity, project, name, existing.commit_id
            ):
                version, created = existing, False
                break
            body = dict(meta)
            body.update(
                artifact=name,
                entity=entity,
                project=project,
                type=type,
                version=0 if head is None else head.number + 1,
                size=size,
                files=self._files_below(head, tree) if files is None else files,
                time=time.time_ns(),
            )
            commit = Commit(tree, () if old is None else (old,), body)
            commit_id = self.objects.put(commit)
            try:
                self.refs.set_if_equals(ref, old, commit_id)
            except RefConflictError:
                continue
            self._commits[commit_id] = commit
            version, created = Version(entity, project, commit_id, commit), True
            break
        for alias in aliases:
            self.set_alias(version, alias)
        return version, created

    def _files_below(self, head: Version | None, tree: ObjectId) -> int:
        """The files of ``tree``, the next version after ``head``: from the head's count
        and what changed, which for a draft reads only the changed paths."""
        if head is not None and head.files is not None:
            return trees.count_from(self.objects, head.tree, head.files, tree)
        return trees.count_files(self.objects, tree)

    def file_count(self, version: Version) -> int:
        """How many files ``version`` holds, references included: as recorded, or
        counted from its trees for a version logged before counts were recorded."""
        recorded = version.files
        return trees.count_files(self.objects, version.tree) if recorded is None else recorded

    def set_alias(self, version: Version, alias: str) -> None:
        if alias == "latest":
            return  # "latest" always names the head
        validate_alias(alias)
        ref = alias_ref(version.entity, version.project, version.name, alias)
        self.repo.update_ref(ref, lambda old: version.commit_id)

    def remove_alias(self, version: Version, alias: str) -> None:
        ref = alias_ref(version.entity, version.project, version.name, validate_alias(alias))
        if self.refs.read(ref) != version.commit_id:
            raise ArtifactNotFoundError(
                f"v{version.number} of {version.name} has no alias {alias!r}"
            )
        self.refs.delete_if_equals(ref, version.commit_id)

    # ---- runs ----------------------------------------------------------

    def read_run(self, entity: str, project: str, run_id: str) -> RunRecord | None:
        blob_id = self.refs.read(run_ref(entity, project, run_id))
        return None if blob_id is None else RunRecord.from_bytes(self.objects.read_blob(blob_id))

    def update_run(
        self, entity: str, project: str, run_id: str, change: Callable[[RunRecord], None]
    ) -> RunRecord:
        """Apply ``change`` to the run's record (a new one if there is none) by
        compare-and-swap, retried on conflict; returns the record as written."""
        ref = run_ref(entity, project, run_id)
        written: list[RunRecord] = []

        def compute(old: ObjectId | None) -> ObjectId:
            if old is None:
                record = RunRecord(run_id, entity, project)
            else:
                record = RunRecord.from_bytes(self.objects.read_blob(old))
            change(record)
            written[:] = [record]
            return self.objects.put(record.to_blob())

        with self.repo.writing():
            self.repo.update_ref(ref, compute)
        return written[0]

    def find_run(self, run_id: str, entity: str, project: str) -> RunRecord | None:
        """Run ``run_id``, looked for in ``entity/project`` first, then in every namespace:
        a run logs drafts of other projects' versions into those projects."""
        found = self.read_run(entity, project, run_id)
        if found is None:
            for name in sorted(self.refs.names("")):
                parts = name.split("/")
                if len(parts) == 4 and parts[2] == "runs" and parts[3] == run_id:
                    found = self.read_run(parts[0], parts[1], run_id)
                    if found is not None:
                        break
        return found

    def all_runs(self) -> list[RunRecord]:
        """Every run of every namespace."""
        records = []
        for name in sorted(self.refs.names("")):
            parts = name.split("/")
            if len(parts) == 4 and parts[2] == "runs":
                record = self.read_run(parts[0], parts[1], parts[3])
                if record is not None:
                    records.append(record)
        return records

    def runs(self, entity: str, project: str) -> list[RunRecord]:
        prefix = f"{entity}/{project}/runs/"
        return [
            RunRecord.from_bytes(self.objects.read_blob(blob_id))
            for blob_id in self.refs.list(prefix).values()
        ]


def _check_version_meta(commit_id: ObjectId, meta: dict[str, Any], name: str | None) -> None:
    """Refuse a commit that is not a version (of ``name``): a store may be hostile or damaged."""
    problem = None
    artifact, number, kind, size = (meta.get(k) for k in ("artifact", "version", "type", "size"))
    if not isinstance(artifact, str) or not ARTIFACT_NAME.fullmatch(artifact):
        problem = "it names no valid artifact"
    elif name is not None and artifact != name:
        problem = f"it is a version of {artifact!r}, not of {name!r}"
    elif not isinstance(number, int) or isinstance(number, bool) or number < 0:
        problem = "it has no valid version number"
    elif not isinstance(kind, str) or not kind:
        problem = "it has no artifact type"
    elif not isinstance(size, int) or isinstance(size, bool) or size < 0:
        problem = "it has no valid size"
    if problem:
        raise InvalidObjectError(f"commit {commit_id.hex()} is not an artifact version: {problem}")
