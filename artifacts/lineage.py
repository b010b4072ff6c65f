"""What lineage records of a run: its start, the versions it logs and uses, its end.

Also where a run's store is found, and the stack of active runs (W&B's module-level
``wandb.run``). ``Run`` (artifacts.runs) is a ``RunLog`` with W&B's methods;
``Artifact.save`` logs through a bare one when no run is active.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any, TypeVar

from cas import Repository
from cas.errors import CasError, UsageError
from cas.storage.store_dirs import STORE_DIR

from .env import default_entity, default_project
from .errors import ArtifactStateError, InvalidTagError
from .names import validate_namespace
from .registry import Registry, RunRecord
from .run_config import RunConfig, config_items
from .run_metrics import RunSummary

_active: list[RunLog] = []
# The store of the run started last in this process: what Api() reads once the run is
# over, as W&B's Api stays logged in to the server its runs used.
_last_store: Registry | None = None
R = TypeVar("R", bound="RunLog")


def current_run() -> Any:
    """The run started last and not finished yet (a ``Run``), or None."""
    return _active[-1] if _active else None


def activate(run: Any) -> None:
    """Make ``run`` (a ``RunLog``, or a disabled run) the active run."""
    _active.append(run)


def deactivate(run: Any) -> None:
    if run in _active:
        _active.remove(run)


def find_store_url(store: str | os.PathLike[str] | None = None) -> str:
    if store is not None:
        # An empty one is refused, not taken as none: `store=os.environ.get("X", "")`
        # with X unset would log into the store found from here, saying nothing.
        if not isinstance(store, str | os.PathLike):
            raise UsageError(f"a store is a URL or a path, not {type(store).__name__}")
        if not os.fspath(store):
            raise UsageError(
                "store is empty (an unset variable?): give a store's URL or path, or leave it out"
            )
        return os.fspath(store)
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


def runs_store() -> Registry | None:
    """The store of the active run, else of the run started last in this process (its
    connection, opened with its options); None if this process started none."""
    run = current_run()
    return run.registry if run is not None and not run.disabled else _last_store


def read_store(
    store: str | os.PathLike[str] | None = None, options: dict[str, Any] | None = None
) -> Registry:
    """The store ``store`` names; else the active run's, else that of the run this
    process started last (W&B's Api reads the server its runs use); else the one
    ``init`` would find. A local store must exist: reading must not create one."""
    found = runs_store() if store is None else None
    if found is not None:
        return found
    url = find_store_url(store)
    local = local_dir(url)
    if local is not None and not os.path.isdir(local):  # opening would create it
        raise UsageError(f"no store at {local}; pass store=... or set ARTIFACTS_STORE")
    return Registry(Repository.open(url, **(options or {})))


def local_dir(url: str) -> str | None:
    """The directory of a local store's URL; None for any other store."""
    if url.startswith("file://"):
        return url[len("file://") :]
    return None if "://" in url else url


def open_registry(store: str | None = None, **options: Any) -> Registry:
    return Registry(Repository.open(find_store_url(store), **options))


class RunLog:
    """A run's record in ``registry``, kept from its start until ``finish()``."""

    disabled = False  # W&B's run.disabled: True for a run of mode="disabled" alone

    def __init__(
        self,
        registry: Registry,
        entity: str,
        project: str,
        group: str | None = None,
        job_type: str | None = None,
        name: str | None = None,
        *,
        run_id: str | None = None,
        resume: str | bool | None = None,
        config: dict[str, Any] | None = None,
        tags: list[str] | str | None = None,
        notes: str | None = None,
    ) -> None:
        self.registry = registry
        self.id = validate_namespace(run_id, "run id") if run_id else os.urandom(4).hex()
        self.entity, self.project = entity, project
        config_now = config_items(config)  # refused now, as metadata is
        for what, value in (("job_type", job_type), ("name", name)):
            if not isinstance(value, str | None):  # what lists and shows the run joins them
                raise UsageError(f"a run's {what} is a string, not {type(value).__name__}")
        labels = {} if tags is None else {"tags": run_tags(tags)}
        if notes is not None:
            labels["notes"] = _checked_notes(notes)
        mode = _resume_mode(resume)
        existed: list[bool] = []

        def begin(record: RunRecord) -> None:
            existed[:] = [record.started != 0]  # this attempt's (the swap may be retried)
            _begin(record, mode, group, job_type, name, config_now, labels)

        record = self.registry.update_run(entity, project, self.id, begin)
        self._group, self._job_type, self._name = record.group, record.job_type, record.name
        # W&B's: whether this continued a run, and when the run started (s since the epoch)
        self.resumed, self.start_time = existed[0], record.started / 1e9
        self._finished = False
        self._exit_code = 0  # until told otherwise: a with-block's error sets it
        self.config = RunConfig(record.config, self._write_config)
        # written at finish (artifacts.run_metrics)
        self.summary = RunSummary(record.summary, self._check_open)
        activate(self)
        global _last_store
        _last_store = registry

    @classmethod
    def start(
        cls: type[R],
        project: str | None = None,
        entity: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
        store: str | None = None,
        name: str | None = None,
        store_options: dict[str, Any] | None = None,
        registry: Registry | None = None,
        **run: Any,  # run_id, resume, config, tags, notes: see __init__
    ) -> R:
        """A run in the store ``store`` names (see artifacts.runs), or in ``registry``, a
        store already open; its names checked."""
        return cls(
            registry or open_registry(store, **(store_options or {})),
            entity=validate_namespace(entity or default_entity(), "entity"),
            project=validate_namespace(project, "project") if project else default_project(),
            group=validate_namespace(group, "group") if group else None,
            job_type=job_type,
            name=name,
            **run,
        )

    def __repr__(self) -> str:
        return f"<Run {self.entity}/{self.project}/{self.id}>"

    def __reduce__(self) -> Any:
        # A run holds its store's connections: a Dask or Ray task would otherwise fail on
        # "cannot pickle '_thread.lock'", which says nothing of what to send instead.
        raise UsageError(
            f"run {self.id} cannot be sent to another process: send the store's URL and "
            "options and start a run there with artifacts.init(...) (docs/scale.md)"
        )

    def __enter__(self: R) -> R:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.finish(0)
            return
        self._exit_code = 1  # W&B's exit code for a with-block left by an exception
        try:
            self.finish()
        except (CasError, OSError) as failed:
            # Often the same cause (a full disk): the block's error says what went wrong
            # first, and must not be hidden behind this one. The block is over: the run
            # is no longer the current one, though its end is still to be recorded.
            if self in _active:
                _active.remove(self)
            warnings.warn(
                f"run {self.id} could not be marked ended ({failed}); the error that left "
                "the with-block follows: call run.finish() again once it is mended",
                stacklevel=2,
            )

    def _check_open(self) -> None:
        if self._finished:
            raise ArtifactStateError(f"run {self.id} has finished; start a new one with init()")

    def finish(self, exit_code: int | None = None) -> None:
        if self._finished:
            return
        # Finished once its end is recorded: a finish that failed can be called again.
        code = self._exit_code if exit_code is None else exit_code
        summary = self.summary.to_write()
        self.registry.update_run(
            self.entity, self.project, self.id, lambda r: _set_ended(r, code, summary)
        )
        self._finished = True
        deactivate(self)

    @property
    def name(self) -> str | None:
        """The run's display name; set, it is recorded at once (W&B's ``run.name``)."""
        return self._name

    @name.setter
    def name(self, name: str | None) -> None:
        self._check_open()
        if name is not None and not isinstance(name, str):
            raise UsageError(f"a run's name is a string, not {type(name).__name__}")
        self._name = name or self.id  # none: the id, as a run started without one
        self._labels({"name": self._name})

    @property
    def group(self) -> str | None:
        return self._group  # read-only, as W&B's

    @property
    def job_type(self) -> str | None:
        return self._job_type

    @property
    def path(self) -> str:
        """W&B's ``entity/project/run_id``, which ``Api().run()`` takes."""
        return f"{self.entity}/{self.project}/{self.id}"

    @property
    def tags(self) -> tuple[str, ...]:
        """W&B's: the run's tags, a tuple; set a list (or tuple) to change them."""
        return tuple(self._record_now().tags)

    @tags.setter
    def tags(self, tags: Any) -> None:
        self._check_open()
        try:
            checked = run_tags(tags)
        except InvalidTagError as e:  # W&B warns and keeps the tags the run had
            warnings.warn(f"{e}; the run's tags are unchanged", stacklevel=2)
            return
        self._labels({"tags": checked})

    @property
    def notes(self) -> str | None:
        return self._record_now().notes

    @notes.setter
    def notes(self, notes: str | None) -> None:
        self._check_open()
        self._labels({"notes": _checked_notes(notes)})

    def _record_now(self) -> RunRecord:
        found = self.registry.read_run(self.entity, self.project, self.id)
        assert found is not None  # written when the run started
        return found

    def _labels(self, labels: dict[str, Any]) -> None:
        """Record the name, tags or notes given."""
        self.registry.update_run(self.entity, self.project, self.id, lambda r: _label(r, labels))

    def _write_config(self, changed: dict[str, Any]) -> dict[str, Any]:
        """Record config keys changed by the script (artifacts.run_config)."""
        self._check_open()

        def merge(record: RunRecord) -> None:
            record.config = {**record.config, **changed}

        return self.registry.update_run(self.entity, self.project, self.id, merge).config

    def note_logged(self, commit_id: str) -> None:
        self.registry.update_run(
            self.entity, self.project, self.id, lambda r: r.logged.append(commit_id)
        )

    def _note_used(self, commit_id: str) -> None:
        self.registry.update_run(
            self.entity, self.project, self.id, lambda r: add_use(r, commit_id)
        )


# W&B's resume modes: continue the run of this id if it exists ("allow"), only if it
# exists ("must"), or never ("never", and no resume at all, which W&B refuses too).
_RESUME_MODES = {
    None: "never",
    False: "never",
    "never": "never",
    "allow": "allow",
    "must": "must",
    "auto": "allow",
    True: "allow",
}


def _resume_mode(resume: str | bool | None) -> str:
    try:
        return _RESUME_MODES[resume]
    except (KeyError, TypeError):
        raise UsageError(
            f"resume must be 'allow', 'must', 'never' or 'auto', not {resume!r}"
        ) from None


def _begin(
    record: RunRecord,
    mode: str,
    group: str | None,
    job_type: str | None,
    name: str | None,
    config: dict[str, Any],
    labels: dict[str, Any],
) -> None:
    """Start ``record`` (new: its id alone is set) or continue it, as ``mode`` allows."""
    exists = record.started != 0
    where = f"{record.entity}/{record.project}"
    if exists and mode == "never":
        raise UsageError(
            f"run {record.id} already exists in {where}; pass resume='allow' to continue it"
        )
    if not exists and mode == "must":
        raise UsageError(f"run {record.id} does not exist in {where}; resume='must' needs it")
    if not exists:
        record.started = time.time_ns()
    record.ended = None
    record.group = group or record.group
    record.job_type = job_type or record.job_type
    record.name = name or record.name or record.id
    record.config = {**record.config, **config}
    _label(record, labels)


def _label(record: RunRecord, labels: dict[str, Any]) -> None:
    """Set the fields ``labels`` gives (``name``, ``tags``, ``notes``), as they are."""
    for field, value in labels.items():
        setattr(record, field, value)


def _checked_notes(notes: Any) -> str | None:
    if notes is not None and not isinstance(notes, str):
        raise UsageError(f"a run's notes are a string, not {type(notes).__name__}")
    return notes


def run_tags(tags: Any) -> list[str]:
    """A run's tags as W&B takes them: a string is one tag; each of 1 to 64 characters."""
    found = [tags] if isinstance(tags, str) else list(tags)
    for tag in found:
        if not isinstance(tag, str) or not 1 <= len(tag) <= 64:
            raise InvalidTagError(f"a run's tags are strings of 1 to 64 characters, not {tag!r}")
    return found


def _set_ended(record: RunRecord, exit_code: int, summary: dict[str, Any] | None) -> None:
    record.ended, record.exit_code = time.time_ns(), exit_code
    if summary is not None:  # None: the run changed none of it
        record.summary = summary


def add_use(record: RunRecord, commit_id: str) -> None:
    """Add a version to the versions a run used, once (its first use keeps its place)."""
    if commit_id not in record.used:
        record.used.append(commit_id)
