"""W&B's module-level calls (``wandb.log_artifact``, ``wandb.log``, ``wandb.config``,
``wandb.finish``, ``wandb.login``…): each acts on the active run (artifacts.lineage)."""

from __future__ import annotations

from typing import Any

from .errors import NoActiveRunError
from .lineage import current_run

# ---- W&B's module-level calls: wandb.log_artifact(...) after wandb.init() ---------------


def _on_active_run(name: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        run = current_run()
        if run is None:  # W&B's placeholders before init say the same
            raise NoActiveRunError(f"call artifacts.init() before artifacts.{name}()")
        return getattr(run, name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"``{name}`` of the active run, as W&B's ``wandb.{name}``."
    return call


log_artifact = _on_active_run("log_artifact")
use_artifact = _on_active_run("use_artifact")
log_model = _on_active_run("log_model")
use_model = _on_active_run("use_model")
link_model = _on_active_run("link_model")
log = _on_active_run("log")
define_metric = _on_active_run("define_metric")
watch = _on_active_run("watch")
unwatch = _on_active_run("unwatch")
alert = _on_active_run("alert")
save = _on_active_run("save")


def config() -> Any:
    """The active run's config (W&B's ``wandb.config``): ``artifacts.config``."""
    run = current_run()
    if run is None:
        raise NoActiveRunError("call artifacts.init() before artifacts.config")
    return run.config


def summary() -> Any:
    """The active run's summary (W&B's ``wandb.summary``): ``artifacts.summary``."""
    run = current_run()
    if run is None:
        raise NoActiveRunError("call artifacts.init() before artifacts.summary")
    return run.summary


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """Finish the active run, if any (W&B's ``wandb.finish``; ``quiet`` changes nothing)."""
    run = current_run()
    if run is not None:
        run.finish(exit_code)


# ---- W&B's setup calls: there is no server to log in to or to configure --------------


def login(key: str | None = None, relogin: bool | None = None, **_ignored: Any) -> bool:
    """W&B's ``wandb.login``: nothing to log in to, as who may read and write a store is
    the store's own to say (its file permissions, its bucket's credentials); True."""
    return True


class Settings:
    """W&B's ``wandb.Settings``, given to ``init(settings=...)``: its fields are kept as
    attributes, and mean nothing here (they configure W&B's own process)."""

    def __init__(self, **settings: Any) -> None:
        self.__dict__.update(settings)
