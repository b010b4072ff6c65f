"""One version per ``artifacts://`` call.

fsspec's calls over many paths (``get``, ``cat``, ``find``, ``du``, a glob…) expand
the paths first and read each one after: resolving ``:latest`` or an alias again for
every path would mix the files of a version logged meanwhile with those of the one
listed, bytes no logged version held. So while such a call runs, each
``NAME:VERSION`` is resolved once and every path of the call reads that version; the
next call resolves it again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from .names import Spec
from .registry import Registry, Version

# The versions resolved by the call running in this thread, None outside a call: a
# context variable, as one cached filesystem instance serves every thread.
_pinned: ContextVar[dict[tuple[Registry, Spec], Version] | None] = ContextVar(
    "artifacts_fs_pinned", default=None
)

T = TypeVar("T")


def resolve(registry: Registry, spec: Spec) -> Version:
    """The version ``spec`` names: the one this call resolved already, if it did."""
    pinned = _pinned.get()
    if pinned is None:
        return registry.resolve(spec)
    if (registry, spec) not in pinned:
        pinned[registry, spec] = registry.resolve(spec)
    return pinned[registry, spec]


def _one_version(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        if _pinned.get() is not None:  # called by a call: its versions hold
            return method(*args, **kwargs)
        token = _pinned.set({})
        try:
            return method(*args, **kwargs)
        finally:
            _pinned.reset(token)

    return call


def one_version_per_call(*names: str) -> Callable[[T], T]:
    """Class decorator: each of the methods ``names`` resolves a version once per call.
    Not for generators (``walk``): they run between the caller's statements."""

    def decorate(cls: T) -> T:
        for name in names:
            setattr(cls, name, _one_version(getattr(cls, name)))
        return cls

    return decorate
