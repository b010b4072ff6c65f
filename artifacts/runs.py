"""Runs: ``artifacts.init()`` opens one; it logs and uses artifact versions.

The store a run writes to is, in order: ``init(store=...)``, the
``ARTIFACTS_STORE`` environment variable (any fsspec URL), or the nearest
``.artifacts/`` directory above the working directory, created here if
there is none. ``init(store_options={...})`` passes options to the storage
backend (e.g. ``endpoint_url``, ``key``, ``secret`` for S3).

A run's record is kept by artifacts.lineage; versions are made by artifacts.saver.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from cas.ingest import OnStored
from cas.storage.store_dirs import STORE_DIR

from . import code
from .annotations import validate_tags
from .artifact import Artifact
from .disabled import DisabledRun, checked_mode
from .env import run_dir, setting, tags_setting
from .errors import (
    ArtifactNotFoundError,
    LocalPathError,
    NoDistributedIdError,
    NotALoggedVersionError,
    NotAModelError,
    RegisteredModelNameError,
)
from .init_options import check_options
from .lineage import (
    RunLog,
    current_run,
    default_entity,
    default_project,
    find_store_url,
    open_registry,
)
from .links import LEGACY_MODEL_REGISTRY
from .names import parse_spec, validate_alias, validate_namespace
from .public_runs import no_url
from .registries import is_registry_project
from .registry import Registry
from .run_config import chosen_keys, config_defaults
from .run_metrics import RunMetrics
from .saver import Header, Saver

# Where a run's store is found is part of this module's interface (the CLI, the fsspec
# filesystem and scripts use it), though artifacts.lineage holds it.
__all__ = [
    "STORE_DIR",
    "Run",
    "current_run",
    "default_entity",
    "default_project",
    "find_store_url",
    "init",
    "open_registry",
]


def init(
    project: str | None = None,
    entity: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    store: str | None = None,
    name: str | None = None,
    store_options: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    id: str | None = None,
    resume: str | bool | None = None,
    tags: list[str] | str | None = None,
    notes: str | None = None,
    config_exclude_keys: list[str] | None = None,
    config_include_keys: list[str] | None = None,
    mode: str | None = None,
    settings: Any = None,
    dir: str | os.PathLike[str] | None = None,
    allow_val_change: bool | None = None,
    **options: Any,  # W&B's that configure its own process (artifacts.init_options)
) -> Run | DisabledRun:
    """Start a run; use it as a context manager so it finishes cleanly. ``id`` names
    it; ``resume="allow"`` (or ``"must"``) continues the run of that id, as in W&B.
    ``mode="disabled"`` (also from ``settings`` or ``$ARTIFACTS_MODE``, ``$WANDB_MODE``)
    writes nothing (artifacts.disabled); every other mode of W&B's logs to the store."""
    check_options(options)
    chosen = settings.get("mode") if isinstance(settings, dict) else getattr(settings, "mode", None)
    mode = mode or chosen or setting("MODE") or "online"  # settings: a Settings, or a dict
    # What init is not given, the environment may give (artifacts.env), as W&B's does;
    # the entity and project, checked, as every run takes them (Run.start).
    group, job_type = group or setting("RUN_GROUP"), job_type or setting("JOB_TYPE")
    name, id, notes = name or setting("NAME"), id or setting("RUN_ID"), notes or setting("NOTES")
    resume = setting("RESUME") if resume is None else resume
    tags = tags_setting() if tags is None else tags
    given = chosen_keys(config, config_include_keys, config_exclude_keys)
    config = {**config_defaults(), **given}
    if checked_mode(mode) == "disabled":
        project, entity = project or setting("PROJECT"), entity or setting("ENTITY")
        off = DisabledRun(project, entity, group, job_type, name, config, id, tags, notes)
        off.config.allow_changes(bool(allow_val_change))
        return off
    run = Run.start(
        project,
        entity,
        group,
        job_type,
        store,
        name,
        store_options,
        run_id=id,
        resume=resume,
        config=config,
        tags=tags,
        notes=notes,
    )
    if dir is not None:
        run.root_dir = os.path.abspath(os.fspath(dir))
    run.config.allow_changes(bool(allow_val_change))  # W&B's: for the whole run
    return run


class Run(RunLog, RunMetrics):
    root_dir: str | None = None  # W&B's init(dir=...): where run.dir goes

    def __init__(
        self,
        registry: Registry,
        entity: str,
        project: str,
        group: str | None = None,
        job_type: str | None = None,
        name: str | None = None,
        **run: Any,  # run_id, resume, config, tags, notes: see RunLog
    ) -> None:
        super().__init__(registry, entity, project, group, job_type, name, **run)
        self._saver = Saver(self)

    # ---- W&B's web page and files directory ----------------------------

    @property
    def url(self) -> None:
        """None, as W&B's offline run's: no server (a warning says where to look)."""
        no_url(self.entity, self.project, self.id)

    def get_url(self) -> None:
        return self.url

    @property
    def dir(self) -> str:
        """W&B's directory of the run's files (artifacts.env.run_dir): its files are not
        kept with the run, as W&B uploads them; finish says so if it holds any."""
        path = run_dir(self.entity, self.project, self.id, self.root_dir)
        os.makedirs(path, exist_ok=True)  # made when asked for: most runs never ask
        return path

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        made = run_dir(self.entity, self.project, self.id, self.root_dir)
        left = not self._finished and _files_below(made)
        super().finish(exit_code)
        if left:
            warnings.warn(
                f"{', '.join(left[:3])}{'…' if len(left) > 3 else ''} in run.dir "
                f"({made}) not kept with run {self.id}: they stay there; log them "
                "before finish, run.log_artifact(path)",
                stacklevel=2,
            )

    # ---- logging -------------------------------------------------------

    def _coerce(
        self, artifact: Artifact | str | os.PathLike, name: str | None, type: str | None
    ) -> Artifact:
        """A path made an artifact as W&B makes it: named ``run-<run id>-<basename>``
        unless ``name`` is given, a file, a directory or (a URI) a reference."""
        if isinstance(artifact, Artifact):
            return artifact
        path = os.fspath(artifact)
        made = Artifact(name or self._default_name(path), type or "unspecified")
        if os.path.isfile(path):
            made.add_file(path)
        elif os.path.isdir(path):
            made.add_dir(path)
        elif "://" in path:
            made.add_reference(path)
        elif os.path.exists(path):
            raise LocalPathError(
                f"{path} is not a regular file or a directory: a FIFO, a socket or a device "
                "is never read (a FIFO would wait for a writer); copy what it holds to a file"
            )
        else:
            raise LocalPathError(
                f"no such file or directory: {path} (give a file, a directory or a URI "
                "such as s3://bucket/path)"
            )
        return made

    def log_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike,
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
        draft = artifact.staged()
        aliases, tags = _checked_labels(aliases, tags)
        version = self._saver.log(draft, Header.of(artifact), aliases, tags, on_stored)
        return artifact.become(self.registry, version)

    def use_artifact(
        self,
        artifact_or_name: Artifact | str,
        type: str | None = None,
        aliases: list[str] | str | None = None,
        **_: Any,
    ) -> Artifact:
        """Fetch a logged version and record that this run used it; ``aliases`` are
        added to the version, as in W&B."""
        self._check_open()
        added, _ = _checked_labels(aliases, None)
        if isinstance(artifact_or_name, Artifact):
            used = artifact_or_name
            if used.is_draft():  # W&B logs a draft first (its way to record external data)
                self.log_artifact(used, aliases=added)
            elif not self.registry.objects.has(bytes.fromhex(used.id)):
                # Recorded, the run's lineage would name a version its store cannot read.
                raise ArtifactNotFoundError(
                    f"{used.qualified_name} is not in this run's store {self.registry.repo.url}: "
                    "use it in a run on the store that holds it, or bring it here first "
                    "(artifacts pull)"
                )
        elif isinstance(artifact_or_name, str):
            spec = parse_spec(artifact_or_name, self.entity, self.project)
            version = self.registry.resolve(spec, type)
            used = Artifact(version.name, version.type).become(self.registry, version)
        else:  # W&B: a ValueError
            raise NotALoggedVersionError(
                "use_artifact takes an artifact name ('data:v1') or an Artifact, "
                f"not {artifact_or_name.__class__.__name__}"
            )
        self._note_used(used.id)
        if added:
            used.aliases = sorted(set(used.aliases) | set(added))
            used.save()
        return used

    def log_code(
        self,
        root: str | None = ".",
        name: str | None = None,
        include_fn: code.PathTest = code.is_code,
        exclude_fn: code.PathTest = code.never,
    ) -> Artifact | None:
        """W&B's: log the code below ``root`` as an artifact of type ``code``
        (artifacts.code); None, with a warning, if no file is taken."""
        self._check_open()
        root = os.path.abspath(root or ".")
        artifact = Artifact(name or code.code_name(self.project), "code")
        for path in code.code_files(root, include_fn, exclude_fn):
            artifact.add_file(path, name=os.path.relpath(path, root).replace(os.sep, "/"))
        if not artifact.manifest.entries:
            warnings.warn(f"no code found below {root}: nothing logged", stacklevel=2)
            return None
        return self.log_artifact(artifact)

    # ---- models and links (W&B's model registry) -----------------------

    def link_artifact(
        self, artifact: Artifact, target_path: str, aliases: list[str] | str | None = None
    ) -> Artifact:
        """Link ``artifact`` (logged first if a draft) into ``target_path``; a target
        outside any registry defaults to this run's entity and project."""
        self._check_open()
        if artifact.is_draft():
            artifact = self.log_artifact(artifact)
        parts = target_path.split("/") if isinstance(target_path, str) else []
        if len(parts) == 1 or (len(parts) == 2 and not is_registry_project(parts[0])):
            target_path = "/".join([self.entity, self.project][: 3 - len(parts)] + parts)
        return artifact.link(target_path, aliases)

    def log_model(
        self, path: str, name: str | None = None, aliases: list[str] | str | None = None
    ) -> None:
        """Log the file or directory ``path`` as a "model" artifact, named ``name`` or,
        as in W&B, ``run-<run id>-<basename of path>``."""
        self.log_artifact(path, name, "model", aliases)

    def use_model(self, name: str) -> str:
        """Download model ``name`` (a version whose type contains "model"); the path of
        its one file, or of the directory of its files."""
        artifact = self.use_artifact(name)
        if "model" not in artifact.type.lower():
            raise NotAModelError(
                f"{artifact.qualified_name} has type {artifact.type!r}: use_model takes "
                "versions whose type contains 'model'; use use_artifact"
            )
        root = artifact.download()
        found = os.listdir(root)
        return os.path.join(root, found[0]) if len(found) == 1 else root

    def link_model(
        self,
        path: str,
        registered_model_name: str,
        name: str | None = None,
        aliases: list[str] | str | None = None,
    ) -> Artifact:
        """Log ``path`` as a model (a new version of ``name`` if its files changed) and
        link it into the legacy model registry's ``registered_model_name``."""
        if "/" in registered_model_name:
            raise RegisteredModelNameError(
                "give the registered model's name alone, without entity or project"
            )
        name = name or self._default_name(path)
        head = self.registry.head(self.entity, self.project, name)
        if head is not None and "model" not in head.type.lower():
            raise NotAModelError(
                f"{self.entity}/{self.project}/{name} has type {head.type!r}: link_model "
                "takes artifacts whose type contains 'model'"
            )
        model = self.log_artifact(path, name, head.type if head else "model")
        target = f"{self.entity}/{LEGACY_MODEL_REGISTRY}/{registered_model_name}"
        return self.link_artifact(model, target, aliases)

    def _default_name(self, path: str) -> str:
        """W&B's name for an artifact logged from a path: ``run-<run id>-<basename>``."""
        return f"run-{self.id}-{os.path.basename(os.path.abspath(path))}"

    # ---- distributed runs ---------------------------------------------

    def _distributed_id(self, artifact: Artifact, distributed_id: str | None) -> str:
        found = distributed_id or artifact.distributed_id or self.group
        if not found:
            raise NoDistributedIdError(
                "a distributed artifact needs distributed_id=..., or a run started with group=..."
            )
        artifact.distributed_id = validate_namespace(found, "distributed_id")
        return found

    def upsert_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike,
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | str | None = None,
        distributed_id: str | None = None,
        *,
        replace: bool = False,
    ) -> Artifact:
        """Add this run's files to a distributed version that is not finished yet;
        ``replace=True`` makes them this run's whole part, dropping what its earlier
        upserts put there. A path stands for a draft as in ``log_artifact``; ``aliases``
        go to the finished version, as in W&B."""
        self._check_open()
        artifact = self._coerce(artifact_or_path, name, type)
        draft = artifact.staged()
        aliases, _ = _checked_labels(aliases, None)
        did = self._distributed_id(artifact, distributed_id)
        self._saver.upsert(draft, Header.of(artifact), did, replace, aliases)
        return artifact

    def finish_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike,
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | str | None = None,
        distributed_id: str | None = None,
    ) -> Artifact:
        """Merge every run's part, and this run's files, into one new version."""
        self._check_open()
        artifact = self._coerce(artifact_or_path, name, type)
        draft = artifact.staged()
        aliases, _ = _checked_labels(aliases, None)
        did = self._distributed_id(artifact, distributed_id)
        version = self._saver.finish(draft, Header.of(artifact), did, aliases)
        return artifact.become(self.registry, version)


def _files_below(root: str) -> list[str]:
    """The files a script left in ``run.dir`` (none if it was never asked for)."""
    found = (os.path.join(d, f) for d, _, files in os.walk(root) for f in files)
    return sorted(os.path.relpath(path, root) for path in found)


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
    return aliases, validate_tags(tags)  # W&B's rule, as at log time: deduplicated
