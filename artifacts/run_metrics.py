"""W&B's metric calls on a run (``run.log``, ``run.summary``, ``define_metric``, ``watch``,
``alert``, ``save``), so that a training script runs unchanged. A store keeps no metric
history: each key's last value is the run's summary (W&B's default summary), kept in
memory and written into the run's record once, at finish (a training loop logs
thousands of times; a ref update each time would cost more than the training step)."""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from . import metric_summary
from .errors import MetadataError
from .keyed import KeysAsAttributes
from .metadata import normalize_metadata

# Where a script's metric history can go instead; said once per run.
_TRACKERS = "TensorBoard, MLflow or W&B itself"


class RunSummary(KeysAsAttributes, MutableMapping[str, Any]):
    """W&B's ``run.summary``: one value per key, read and set as a dict or by attribute,
    each value converted as config is (artifacts.metadata); one that cannot be stored is
    said once per key and not kept. ``check`` refuses a change the run could not keep
    (once it has finished)."""

    _what = "the run's summary"

    def __init__(self, items: dict[str, Any], check: Callable[[], None] = lambda: None) -> None:
        object.__setattr__(self, "_items", dict(items))
        object.__setattr__(self, "_check", check)
        object.__setattr__(self, "_refused", set())
        object.__setattr__(self, "_as_read", copy.deepcopy(items))  # what finish compares

    def __delitem__(self, key: str) -> None:
        self._check()
        del self._items[key]

    def __delattr__(self, key: str) -> None:
        del self[key]

    def update(self, values: Any = (), /, **more: Any) -> None:  # type: ignore[override]
        self._check()
        for key, value in {**dict(values), **more}.items():
            if not isinstance(key, str):
                raise MetadataError(f"summary keys are strings, not {type(key).__name__}")
            self._keep(key, value)

    def _keep(self, key: str, value: Any) -> None:
        """Keep ``value`` converted, or say once that ``key`` cannot be kept."""
        try:
            self._items[key] = normalize_metadata({key: value}, "summary")[key]
        except MetadataError as e:
            self._items.pop(key, None)
            if key not in self._refused:
                self._refused.add(key)
                warnings.warn(f"{e}: summary key {key!r} is not kept", stacklevel=4)

    def to_write(self) -> dict[str, Any] | None:
        """The summary to record at finish, converted again (a nested value may have
        been changed in place, as W&B's nested summary allows); None if unchanged."""
        for key, value in list(self._items.items()):
            self._keep(key, value)
        return None if self._items == self._as_read else dict(self._items)


class RunMetrics:
    """The metric calls of ``Run`` (artifacts.runs), over a ``RunLog``'s ``summary``."""

    id: str
    summary: RunSummary
    start_time: float
    _said: frozenset[str] = frozenset()  # what this run has warned of
    _step: int | None = None  # the step the next log goes to; None: not known yet
    _metrics: metric_summary.Metrics | None = None  # what define_metric defined

    def _check_open(self) -> None:
        raise NotImplementedError  # RunLog's

    def _once(self, name: str, message: str) -> None:
        """Warn ``message`` the first time this run is told ``name``."""
        if name not in self._said:
            self._said = self._said | {name}
            warnings.warn(message, stacklevel=3)

    def _next_step(self) -> int:
        """The step the next log goes to: after a resumed run's last one, as in W&B."""
        step = self.summary.get("_step")
        return step + 1 if isinstance(step, int) else 0

    @property
    def step(self) -> int:
        """W&B's step counter: the step the next ``log`` goes to."""
        return self._next_step() if self._step is None else self._step

    def log(
        self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None
    ) -> None:
        """W&B's ``run.log``: each key's value becomes the summary's; history not kept."""
        self._check_open()
        if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
            raise MetadataError("log takes a dict of metric names (strings) to values")
        self._once(
            "log",
            f"run {self.id} keeps no metric history: each key's last logged value is kept "
            f"as run.summary; to keep the history, log to {_TRACKERS} too",
        )
        current = self._next_step() if self._step is None else self._step
        if step is not None:
            if step < current:  # W&B's rule: steps only go up; the data is dropped
                warnings.warn(
                    f"run {self.id}: step {step} is less than the current step {current}; "
                    "steps must increase, so this data is ignored (as in W&B)",
                    stacklevel=2,
                )
                return
            current = step
        now = time.time()
        self.summary.update(self._metrics.kept(data, self.summary) if self._metrics else data)
        self.summary.update(_step=current, _timestamp=now, _runtime=now - self.start_time)
        if (step is None and commit is None) or commit:
            current += 1
        self._step = current

    def define_metric(
        self,
        name: str,
        step_metric: Any = None,
        step_sync: bool | None = None,
        hidden: bool | None = None,
        summary: str | None = None,
        goal: str | None = None,
        overwrite: bool | None = None,
    ) -> None:
        """W&B's: what the summary keeps of a metric (``summary="max"``, ``"min,last"``…:
        artifacts.metric_summary); its x-axis and hiding are for plots, not kept here."""
        self._check_open()
        if summary is not None:
            if self._metrics is None:
                self._metrics = metric_summary.Metrics()
            self._metrics.define(name, summary, goal)
        if step_metric is not None or hidden:
            self._once(
                f"define_metric:{name}",
                f"define_metric({name!r}): its step_metric and hidden are not kept, as "
                "there is no history to plot; its summary= is",
            )

    def watch(self, models: Any = None, *args: Any, **kwargs: Any) -> None:
        """W&B's: logs a model's gradients and parameters as history; none kept here."""
        self._once(
            "watch",
            f"watch() does nothing here: gradients and parameters are history, which "
            f"run {self.id} does not keep; log the model with run.log_model(path)",
        )

    def unwatch(self, models: Any = None) -> None:
        self._once("unwatch", "unwatch() does nothing here: watch() watches nothing")

    def alert(self, title: str, text: str, level: Any = None, wait_duration: Any = None) -> None:
        """W&B's: sends an alert by Slack or email; here only this warning says it."""
        self._check_open()
        self._once(
            f"alert:{title}",
            f"alert({title!r}) is not sent (no server to send it): {title}: {text}",
        )

    def save(
        self, glob_str: Any = None, base_path: Any = None, policy: str = "live", glob: bool = True
    ) -> list[str]:
        """W&B's: uploads files with the run; none are kept here (nothing saved: [])."""
        self._check_open()
        self._once(
            f"save:{glob_str}",
            f"save({str(glob_str)!r}) keeps nothing: a run holds no files here; log them "
            "as an artifact, run.log_artifact(path)",
        )
        return []
