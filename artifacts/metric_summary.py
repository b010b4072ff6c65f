"""What W&B's ``define_metric(name, summary=...)`` makes of a metric's summary: instead
of the last value, a dict of the aggregates asked for (``{"max": 0.93}``,
``{"min": 0.1, "last": 0.2}``), of real numbers only; ``"none"`` keeps none, ``"copy"``
the last value. A name ending in ``*`` defines every key it starts."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, MutableMapping
from typing import Any

from cas.errors import UsageError

OPS = ("min", "max", "mean", "last", "first", "best", "copy", "none")
GOALS = {None: None, "maximize": max, "minimize": min, "max": max, "min": min}


class Metrics:
    """The metrics one run defined, and the running counts their means need."""

    def __init__(self) -> None:
        self._ops: dict[str, frozenset[str]] = {}
        self._goals: dict[str, Any] = {}
        self._means: dict[str, tuple[float, int]] = {}  # key → (total, count) this run

    def define(self, name: str, summary: str, goal: str | None) -> None:
        if not isinstance(name, str) or not name or "*" in name[:-1]:
            raise UsageError(f"define_metric takes a name, ending in * at most, not {name!r}")
        ops = frozenset(op.strip().lower() for op in summary.split(","))
        unknown = sorted(ops.difference(OPS))
        if unknown:
            raise UsageError(f"define_metric summary takes {', '.join(OPS)}, not {unknown[0]}")
        if goal not in GOALS or ("best" in ops and goal is None):
            raise UsageError("define_metric goal is 'maximize' or 'minimize' (summary 'best')")
        self._ops[name], self._goals[name] = ops, GOALS[goal]

    def _defining(self, key: str) -> str | None:
        """The definition of ``key``: its own, else the longest glob it matches."""
        if key in self._ops:
            return key
        globs = [n for n in self._ops if n.endswith("*") and key.startswith(n[:-1])]
        return max(globs, key=len, default=None)

    def kept(self, data: Mapping[str, Any], summary: MutableMapping[str, Any]) -> dict[str, Any]:
        """What ``summary`` takes of ``data``; a key defined with ``"none"`` leaves it."""
        kept = {}
        for key, value in data.items():
            name = self._defining(key)
            ops = self._ops[name] if name is not None else frozenset({"copy"})
            if "copy" in ops:
                kept[key] = value
            elif "none" in ops:
                summary.pop(key, None)
            elif isinstance(value, numbers.Real) and not math.isnan(value):
                old = summary.get(key)
                kept[key] = self._folded(key, ops, self._goals[name], value, old)
        return kept  # any other value leaves the aggregates as they were, as W&B's

    def _folded(self, key: str, ops: frozenset[str], goal: Any, value: Any, old: Any) -> dict:
        """The aggregates of ``key`` with ``value`` added: a resumed run's go on from its
        summary (its mean from this run's values alone: no count is kept)."""
        now = dict(old) if isinstance(old, dict) else {}
        for op, pick in (("min", min), ("max", max), ("best", goal)):
            if op in ops:
                now[op] = pick(now[op], value) if isinstance(now.get(op), int | float) else value
        if "mean" in ops:
            total, count = self._means.get(key, (0.0, 0))
            self._means[key] = (total + value, count + 1)
            now["mean"] = (total + value) / (count + 1)
        if "first" in ops:
            now.setdefault("first", value)
        if "last" in ops:
            now["last"] = value
        return now
