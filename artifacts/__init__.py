"""artifacts: version datasets and models in a content-addressed store.

Words used here (W&B's, where W&B has one):

- **artifact**: a named, typed collection of files (``dataset``, ``model``…).
- **version**: one logged state of an artifact, ``v0``, ``v1``…; a commit
  whose tree holds the files. Identical content makes no new version.
- **alias**: a movable name for one version (``latest``, ``best``).
- **draft**: an artifact being edited; logging it makes the next version.
- **run**: a process that logs and uses versions; recorded for lineage.
- **distributed version**: parts upserted by many runs under one
  ``distributed_id``, merged into one version by ``finish_artifact``.

``import artifacts`` mirrors ``import wandb`` for everything above.
"""

import importlib

# Where each public name lives. They are imported on first use, so that the
# ``artifacts`` command can install its interrupt handler before the heavy imports
# (see ``__main__``); ``import artifacts`` followed by any use is unchanged.
_EXPORTS = {
    "Api": ".api",
    "Artifact": ".artifact",
    "ArtifactFinalizedError": ".errors",
    "ArtifactNotFoundError": ".errors",
    "ArtifactNotLoggedError": ".errors",
    "ArtifactStateError": ".errors",
    "ArtifactTTL": ".ttl",
    "ArtifactTypeError": ".errors",
    "CasError": "cas.errors",
    "CommError": ".errors",
    "DuplicateEntryError": ".errors",
    "Entry": ".entries",
    "EntryNotFoundError": ".errors",
    "Error": ".errors",
    "LocalPathError": ".errors",
    "Manifest": ".entries",
    "MergeConflictError": ".errors",
    "NotFoundError": "cas.errors",
    "PathNotFoundError": ".errors",
    "ReferenceChangedError": "cas.errors",
    "ReferenceGoneError": ".errors",
    "Run": ".runs",
    "RunNotFoundError": ".errors",
    "RunRecord": ".registry",
    "Settings": ".run_globals",
    "TypeMismatchError": ".errors",
    "UsageError": "cas.errors",
    "VerificationError": ".files",
    "alert": ".run_globals",
    "current_run": ".runs",
    "define_metric": ".run_globals",
    "errors": ".errors",  # the module itself, as wandb.errors
    "finish": ".run_globals",
    "init": ".runs",
    "link_model": ".run_globals",
    "log": ".run_globals",
    "log_artifact": ".run_globals",
    "log_model": ".run_globals",
    "login": ".run_globals",
    "save": ".run_globals",
    "unwatch": ".run_globals",
    "upsert_part": ".distributed",
    "use_artifact": ".run_globals",
    "use_model": ".run_globals",
    "util": ".util",  # the module itself, as wandb.util
    "watch": ".run_globals",
}
__all__ = [
    "Api",
    "Artifact",
    "ArtifactFinalizedError",
    "ArtifactNotFoundError",
    "ArtifactNotLoggedError",
    "ArtifactStateError",
    "ArtifactTTL",
    "ArtifactTypeError",
    "CasError",
    "CommError",
    "DuplicateEntryError",
    "Entry",
    "EntryNotFoundError",
    "Error",
    "LocalPathError",
    "Manifest",
    "MergeConflictError",
    "NotFoundError",
    "PathNotFoundError",
    "ReferenceChangedError",
    "ReferenceGoneError",
    "Run",
    "RunNotFoundError",
    "RunRecord",
    "Settings",
    "TypeMismatchError",
    "UsageError",
    "VerificationError",
    "alert",
    "current_run",
    "define_metric",
    "errors",
    "finish",
    "init",
    "link_model",
    "log",
    "log_artifact",
    "log_model",
    "login",
    "save",
    "unwatch",
    "upsert_part",
    "use_artifact",
    "use_model",
    "util",
    "watch",
]


def __getattr__(name: str) -> object:
    if name == "run":  # W&B's wandb.run: the active run, None before init and after finish
        return importlib.import_module(".runs", __name__).current_run()
    if name in ("config", "summary"):  # W&B's wandb.config, wandb.summary: the active run's
        return getattr(importlib.import_module(".run_globals", __name__), name)()
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'artifacts' has no attribute {name!r}")
    value = importlib.import_module(module, __name__)
    if module != f".{name}":  # else the module is the name (errors)
        value = getattr(value, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
