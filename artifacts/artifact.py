"""``Artifact``: a draft you add files to, then a logged version you read from.

An artifact is *open* (a draft) until a run logs it; then it is *logged*: its
files are read-only (``new_draft()`` starts the next change), while its
description, metadata, tags, aliases and TTL may be edited and stored with
``save()`` (artifacts.annotations). A draft records edits (files to add, paths
to remove) against its base version; logging applies them to the base tree, so
only the touched subtrees are rewritten and untouched files are never read,
hashed or uploaded.
"""

from __future__ import annotations

import copy
import os
from contextlib import AbstractContextManager
from typing import IO, Any

from cas.errors import UsageError

from . import annotations, deletion, links, references, version_refs
from . import ttl as ttl_rules
from .draft import Draft
from .draft_manifest import DraftManifest, staged_entry
from .entries import Entry, Manifest
from .errors import (
    ArtifactFinalizedError,
    ArtifactNotLoggedError,
    InvalidPolicyError,
    MediaTypeError,
)
from .files import Reference, stage_file
from .lineage import RunLog, current_run, read_store, runs_store
from .link_info import LinkInfo
from .linkpolicy import path_of_file
from .metadata import artifact_metadata, normalize_metadata
from .names import logical_path, logical_prefix, split_path, validate_artifact_name
from .registry import Registry, Version
from .saver import Header, Saver
from .scan import scan_tree
from .snapshot import DirSource
from .version_files import VersionFiles
from .version_info import VersionInfo


class Artifact(VersionFiles, LinkInfo, VersionInfo):
    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        incremental: bool = False,
        **_ignored: Any,  # W&B options with no meaning here (use_as: deprecated by W&B)
    ) -> None:
        self._registry: Registry | None = None
        self._logged: Version | None = None
        self._saved: annotations.Annotations | None = None  # a logged version's, as read
        self._tags: list[str] = []
        self._aliases: list[str] = []
        self._saved_aliases: list[str] = []
        self.name = validate_artifact_name(name)
        if not isinstance(type, str) or not type:
            raise UsageError("an artifact needs a non-empty type")
        self.type = type
        self.description = description
        self.metadata = metadata  # the setter converts it
        self._draft = Draft()  # the edits, and the version they apply to
        self._distributed_id: str | None = None
        self._ttl: ttl_rules.Policy = ttl_rules.ArtifactTTL.INHERIT
        self._incremental = bool(incremental)  # W&B's flag, only given back
        self._final = False  # finalize(): no more files added or removed
        # What add_file and add_dir read: absolute local path -> path in the artifact
        self._added_files: dict[str, str] = {}
        self._added_dirs: list[tuple[str, tuple[str, ...]]] = []

    def __repr__(self) -> str:
        state = f"{self._logged.name}:v{self._logged.number}" if self._logged else "draft"
        return f"<Artifact {self._name} ({self.type}) {state}>"

    @property
    def name(self) -> str:
        """The artifact's name; ``name:vN`` once logged, as in W&B."""
        return self._name if self._logged is None else f"{self._name}:{self.version}"

    @name.setter
    def name(self, name: str) -> None:
        self._check_open()
        self._name = name  # checked when logged

    @property
    def type(self) -> str:
        return self._type

    @type.setter
    def type(self, type: str) -> None:
        self._check_open()  # a version's type is its artifact's, for good
        self._type = type

    @property
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    @metadata.setter
    def metadata(self, metadata: dict[str, Any] | str | None) -> None:
        """Converted now (numpy values, dates…), or refused: see artifacts.metadata."""
        self._metadata = artifact_metadata(metadata)

    # ---- building a draft ---------------------------------------------

    def _check_open(self) -> None:
        if self._logged is not None:
            raise ArtifactFinalizedError(
                f"{self.qualified_name} is logged and cannot change; use new_draft() to edit it"
            )

    def _check_files_open(self) -> None:
        self._check_open()
        if self._final:
            raise ArtifactFinalizedError(
                f"{self.name} is finalized: no file may be added or removed; log it as it "
                "is, or make a new Artifact"
            )

    def finalize(self) -> None:
        """As W&B's: no file may be added or removed from now on; a draft may still be
        logged, and its description and metadata set."""
        self._final = True

    def _check_loggable(self) -> None:
        """Refuse, before any file is stored, what the version's refs could not hold."""
        self._check_open()
        validate_artifact_name(self.name)  # the attribute may have changed since __init__
        self.metadata = self._metadata  # and the dict may have been changed in place
        if not isinstance(self.description, str | None):  # an edit's record could not hold it
            raise UsageError(
                f"a description is a string or None, not {type(self.description).__name__} "
                f"{self.description!r:.60}"
            )

    def is_draft(self) -> bool:
        return self._logged is None

    def add_file(
        self,
        local_path: str,
        name: str | None = None,
        is_tmp: bool = False,
        skip_cache: bool | None = None,
        policy: str | None = None,
        overwrite: bool = False,
    ) -> Entry:
        self._check_files_open()
        staged = stage_file(local_path, _immutable(policy))
        path = path_of_file(local_path, name)
        self._draft.stage(path, staged, overwrite)
        self._added_files[staged.path] = "/".join(path)
        return staged_entry("/".join(path), staged)

    def add_dir(
        self,
        local_path: str,
        name: str | None = None,
        skip_cache: bool | None = None,
        policy: str | None = None,
        merge: bool = False,
    ) -> None:
        self._check_files_open()
        immutable = _immutable(policy)
        prefix = logical_prefix(name)
        self._draft.stage_dir(prefix, DirSource(scan_tree(local_path), immutable), merge)
        self._added_dirs.append((os.path.abspath(local_path), prefix))

    def get_added_local_path_name(self, local_path: str | os.PathLike[str]) -> str | None:
        """The path in the artifact of the file ``add_file`` added from ``local_path``
        (relative or absolute), or of a file still there below a directory ``add_dir``
        added; else None. Kept once logged, as in W&B."""
        wanted = os.path.abspath(local_path)
        if wanted in self._added_files:
            return self._added_files[wanted]
        for directory, prefix in reversed(self._added_dirs):  # the last added wins
            rel = os.path.relpath(wanted, directory)
            outside = rel in (os.curdir, os.pardir) or rel.startswith(os.pardir + os.sep)
            if not outside and os.path.isfile(wanted):
                return "/".join(prefix + split_path(rel.replace(os.sep, "/")))
        return None

    def add(self, obj: Any, name: str, overwrite: bool = False) -> Entry:
        self._check_files_open()
        raise MediaTypeError(
            "add() takes W&B media objects (wandb.Table, wandb.Image...), which artifacts "
            "does not have: write the object to a file and add_file() it"
        )

    def get(self, name: str) -> Any:
        raise MediaTypeError(
            "get() gives back W&B media objects (wandb.Table...), which artifacts does not "
            f"have: read the file with get_entry({name!r}).download()"
        )

    def add_reference(
        self,
        uri: str | Entry,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[Entry]:
        """One entry per object: a directory or bucket prefix adds each object below it
        (refused past ``max_objects``, default 10 million), named by its path there.
        A file of a logged version (its ``Entry``, or ``entry.ref_url()``) is added as
        it is stored (artifacts.version_refs)."""
        self._check_files_open()
        if isinstance(uri, Entry) or version_refs.is_version_ref(uri):
            return [self._add_version_file(uri, name)]
        prefix = logical_prefix(name)
        staged = []
        for rel, descriptor in references.expand(uri, checksum, max_objects):
            if rel:
                path = prefix + split_path(rel)
            else:
                path = logical_path(name or uri.split("://", 1)[1].rstrip("/").rsplit("/", 1)[-1])
            staged.append((path, descriptor))
        entries = []
        for path, descriptor in staged:  # every name is valid before any is staged
            self._draft.stage(path, Reference(descriptor), False, REMOVE_FIRST)
            entries.append(staged_entry("/".join(path), Reference(descriptor)))
        return entries

    def _add_version_file(self, uri: str | Entry, name: str | None) -> Entry:
        """Found in the entry's store, else in the draft's, else in the one Api() reads."""
        if isinstance(uri, Entry):
            url = uri.ref_url()  # a draft's entry: ArtifactNotLoggedError
            assert uri.origin is not None
            registry = uri.origin.registry
        else:
            url, registry = uri, self._draft.registry or read_store()
        found = version_refs.resolve(registry, url)
        path = logical_path(name or url.rsplit("/", 1)[-1])
        self._draft.stage(path, found, False, REMOVE_FIRST)
        return staged_entry("/".join(path), found)

    def new_file(
        self, name: str, mode: str = "x", encoding: str | None = None, policy: str | None = None
    ) -> AbstractContextManager[IO]:
        """Write a file straight into the draft: ``with a.new_file("x.txt") as f``. As in
        W&B, mode "a" appends to what new_file wrote at ``name`` before, and a mode
        without "x" (``"w"``, ``"a"``) replaces a different file staged there."""
        self._check_files_open()
        _immutable(policy)  # checked only: the file written is ours, staged as it is
        return self._draft.new_file(logical_path(name), mode, encoding)

    def remove(self, item: str | Entry) -> None:
        """Remove a file, or a directory with everything below it."""
        self._check_files_open()
        target = item.path if isinstance(item, Entry) else os.fspath(item)
        self._draft.remove(logical_path(target), target)

    def staged(self) -> Draft:
        """The draft's edits, once checked loggable: what a run saves a version from."""
        self._check_loggable()
        return self._draft

    # ---- after logging -------------------------------------------------

    def become(self, registry: Registry, version: Version) -> Artifact:
        """Be ``version`` of ``registry`` from now on: what a run makes of a logged draft."""
        self._registry, self._logged = registry, version
        self._draft.cleanup()
        self._draft = Draft()
        self._name = version.name
        self._type = version.type
        self._saved = annotations.current(registry, version)
        self._show(self._saved)
        self._aliases, self._saved_aliases = [], []
        return self

    def _show(self, state: annotations.Annotations) -> None:
        self.description = state.description
        # A copy to the bottom: an edit in place of a nested value must show in the diff.
        self._metadata = copy.deepcopy(state.metadata)  # as stored
        self._tags = list(state.tags)
        self._ttl = state.ttl

    @classmethod
    def _from_version(cls, registry: Registry, version: Version) -> Artifact:
        return cls(version.name, version.type).become(registry, version)

    def _version(self) -> tuple[Registry, Version]:
        if self._logged is None or self._registry is None:
            raise ArtifactNotLoggedError(f"artifact {self.name!r} is a draft: log it first")
        return self._registry, self._logged

    def wait(self, timeout: float | None = None) -> Artifact:
        """A logged version at once (logging is synchronous); a draft raises, as W&B's."""
        self._version()
        return self

    @property
    def version(self) -> str:
        return f"v{self._version()[1].number}"

    @property
    def entity(self) -> str:
        return self._version()[1].entity

    @property
    def project(self) -> str:
        return self._version()[1].project

    @property
    def qualified_name(self) -> str:
        if self._logged is None:
            return self.name
        v = self._logged
        return f"{v.entity}/{v.project}/{v.name}:v{v.number}"

    @property
    def id(self) -> str | None:
        """The version's commit id (hex); None for a draft, as W&B's."""
        return None if self._logged is None else self._version()[1].commit_id.hex()

    @property
    def digest(self) -> str:
        """The root tree's id; a draft's is computed (its files hashed), nothing stored."""
        if self._logged is None:
            self._check_loggable()
            return self._draft.tree_id().hex()
        return self._version()[1].tree.hex()

    @property
    def size(self) -> int:
        if self._logged is None:  # W&B's: summed from the draft's manifest
            return self.manifest.size()
        return self._version()[1].commit.meta["size"]

    @property
    def manifest(self) -> Manifest | DraftManifest:  # type: ignore[override]
        """A logged version's files; a draft's as staged over its base (read afresh)."""
        if self._logged is not None:
            return VersionFiles.manifest.fget(self)  # type: ignore[attr-defined]
        draft = self._draft
        return DraftManifest(draft, lambda: self._from_version(draft.registry, draft.base))

    def new_draft(self) -> Artifact:
        registry, version = self._version()
        if self.is_link:  # W&B's: saved to the source's collection, never the registry's
            version = links.source_version(registry, version)
        draft = Artifact(version.name, version.type, self.description)
        # As stored: a version of an older store may hold metadata no longer accepted
        # (bytes that are not UTF-8); that must not stop a draft, only its logging.
        draft._metadata = dict(self.metadata)
        draft._draft = Draft(version, registry)
        return draft

    def save(self, project: str | None = None, settings: Any = None) -> Artifact:
        """Log this artifact: through the active run, or a short one of its own (in the
        store Api() reads). Of a logged version, store the edits of its description,
        metadata, tags, aliases and TTL."""
        if self._logged is not None:
            return self._save_edits()
        active = current_run()
        if active is not None:
            return active.log_artifact(self)
        # A draft of a logged version goes back to that version's store; any other to
        # the last run's, as W&B's goes to the server its runs use (and Api() reads).
        registry = self._registry or self._draft.registry or runs_store()
        with RunLog.start(project=project, job_type="auto", registry=registry) as run:
            version = Saver(run).log(self.staged(), Header.of(self), [], [])
            return self.become(run.registry, version)

    def _save_edits(self) -> Artifact:
        registry, version = self._version()
        assert self._saved is not None
        edited = annotations.Annotations(
            self.description, normalize_metadata(self._metadata), list(self._tags), self._ttl
        )
        change = annotations.check_change(annotations.diff(self._saved, edited))
        annotations.move_aliases(registry, version, self._saved_aliases, self._aliases)
        self._saved_aliases[:] = self._aliases
        if change:
            run = current_run()
            run_id = run.id if run is not None else None
            self._saved = annotations.update(registry, version, change, run_id)
        self._show(self._saved)  # the newest annotations: this edit over everyone else's
        return self

    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version: gone from listings, its data freed by the next gc (only
        what no other version holds). Refused while it has aliases, unless
        ``delete_aliases`` (artifacts.deletion)."""
        if self.is_link:  # W&B: deleting a link unlinks it, the source stays
            return self.unlink()
        registry, version = self._version()
        run = current_run()
        deletion.delete_version(registry, version, delete_aliases, run.id if run else None)

    # ---- for tools built on the library (the CLI), named apart from W&B's API ----

    @classmethod
    def from_version(cls, registry: Registry, version: Version) -> Artifact:
        """The logged ``version`` (from ``registry.resolve``), read-only."""
        return cls._from_version(registry, version)

    def staged_bytes(self) -> int:
        """Bytes of the local files staged in this draft: at most what logging will read."""
        return self._draft.staged_bytes()


# add_reference has no overwrite (nor has W&B's): what it would replace is removed first
REMOVE_FIRST = "remove() it first to replace it"


def _immutable(policy: str | None) -> bool:
    """W&B's add_file/add_dir ``policy``: "immutable" promises the file will not change
    before the draft is logged (artifacts.staleness); None means "mutable"."""
    if policy not in (None, "mutable", "immutable"):
        raise InvalidPolicyError(
            f"invalid policy {policy!r}: policy may only be 'mutable' or 'immutable'"
        )
    return policy == "immutable"
