"""A repository: one storage holding objects, refs and a small config."""

from __future__ import annotations

import json
import os
from contextlib import AbstractContextManager
from typing import Any

from .chunked import CHANGED_THRESHOLD
from .errors import (
    InvalidConfigError,
    KeyNotFoundError,
    PreconditionFailedError,
    RefConflictError,
    UsageError,
)
from .keys import CONFIG_KEY
from .lease import DEFAULT_LEASE_SECONDS, Leases
from .objects import ObjectId
from .refs import RefStore
from .storage import Storage, open_storage
from .storage.base import IfMatch, Mode
from .store import ObjectStore

# The smallest chunk threshold a store may set: below it, files of a chunk or two.
MIN_CHUNKED = 256 << 10
CHUNKING_MODES = ("always", "changed", "never")


def default_cache_dir(url: str) -> str:
    import hashlib  # here: loading OpenSSL costs every command a few milliseconds

    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "artifacts", hashlib.sha256(url.encode()).hexdigest()[:16])


class Repository:
    def __init__(self, storage: Storage, cache_dir: str | None = None) -> None:
        self.storage = storage
        if cache_dir is None and not storage.capabilities.local:
            cache_dir = default_cache_dir(storage.url) if storage.capabilities.durable else None
        self.objects = ObjectStore(storage, cache_dir)
        self.refs = RefStore(storage)
        self._lease_seconds: float | None = None
        self._configured = False  # the config's settings for writers not read yet
        self.leases = Leases(self.objects, self.lease_seconds)
        self.refs.before_set = self.leases.publishing

    @classmethod
    def open(cls, url: str, **options: Any) -> Repository:
        return cls(open_storage(url, **options))

    @property
    def url(self) -> str:
        return self.storage.url

    def made(self) -> bool:
        """Was this store made: by ``init`` (its config), or by anything that wrote a ref?"""
        return self.storage.exists(CONFIG_KEY) or any(self.refs.names(""))

    def read_config(self) -> dict[str, Any]:
        try:
            data = self.storage.get(CONFIG_KEY)
        except KeyNotFoundError:
            return {}
        return self._parsed_config(data)

    def _parsed_config(self, data: bytes) -> dict[str, Any]:
        try:
            config = json.loads(data)
        except ValueError as exc:  # UnicodeDecodeError too
            raise InvalidConfigError(self.url, str(exc)) from None
        if not isinstance(config, dict):
            raise InvalidConfigError(self.url, f"a JSON {type(config).__name__}")
        return config

    def update_config(self, change: Any) -> dict[str, Any]:
        """Apply ``change(config)`` (which edits the dict in place) atomically."""
        while True:
            try:
                data, token = self.storage.get_versioned(CONFIG_KEY)
                config, mode = self._parsed_config(data), IfMatch(token)
            except KeyNotFoundError:
                config, mode = {}, "create"
            change(config)
            try:
                self.storage.put(CONFIG_KEY, json.dumps(config, indent=2).encode(), mode)
                return config
            except PreconditionFailedError:
                continue

    def update_ref(self, name: str, compute: Any, attempts: int = 1000) -> ObjectId | None:
        """Retry ``new = compute(old)`` then compare-and-swap until it lands.

        ``compute`` returns the new target (or the old one to leave it alone).
        """
        for _ in range(attempts):
            old = self.refs.read(name)
            new = compute(old)
            if new == old:
                return old
            try:
                self.refs.set_if_equals(name, old, new)
                return new
            except RefConflictError:
                continue
        raise RefConflictError(name, None, self.refs.read(name))

    def writing(self) -> AbstractContextManager[None]:
        """Hold while storing objects and publishing the refs that reach them: a
        lease (:mod:`cas.lease`), never a lock; gc never waits for it, nor it for gc.
        The store's chunking (``chunks`` in its config) applies from the first hold."""
        if not self._configured:
            config = self.read_config()  # one read for both settings (a request on a bucket)
            self._apply_chunking(config)
            if self._lease_seconds is None:
                self._lease_seconds = _lease_of(config)
            self._configured = True
        return self.leases.hold()

    def chunking(self, config: dict[str, Any] | None = None) -> tuple[str, int | None]:
        """When files are stored as chunks (docs/format.md 4.2, config.json's ``chunks``):
        ("always", threshold), ("changed", threshold): where that saves (the default,
        :data:`cas.chunked.CHANGED_THRESHOLD`), or ("never", None)."""
        config = self.read_config() if config is None else config
        setting = config.get("chunks", {})
        how = f"{self.url}: config.json's chunks"
        fix = "set it with `artifacts init --chunks`"
        if not isinstance(setting, dict):
            raise UsageError(f"{how} must be a map, not {setting!r}: {fix}")
        when = setting.get("when", "always" if "threshold" in setting else "changed")
        if when not in CHUNKING_MODES:
            raise UsageError(f"{how}.when must be one of {', '.join(CHUNKING_MODES)}: {fix}")
        if when == "never":
            return when, None
        threshold = setting.get("threshold", CHANGED_THRESHOLD)
        if type(threshold) is not int or threshold < MIN_CHUNKED:
            raise UsageError(
                f"{how}.threshold must be a number of bytes of at least {MIN_CHUNKED}, "
                f"not {threshold!r}: {fix}"
            )
        return when, threshold

    def set_chunking(self, when: str, threshold: int | None = None) -> None:
        """Store files as chunks ``when`` ("always", "changed" or "never", as
        :meth:`chunking` says) from ``threshold`` bytes up (None: the default), from now
        on. Files stored before keep their form; readers read both."""
        if when not in CHUNKING_MODES:
            raise UsageError(f"chunks are stored {' or '.join(CHUNKING_MODES)}, not {when!r}")
        if threshold is not None and threshold < MIN_CHUNKED:
            raise UsageError(f"a chunk threshold must be at least {MIN_CHUNKED >> 10} KiB")
        setting: dict[str, Any] = {"when": when}
        if threshold is not None and when != "never":
            setting["threshold"] = threshold
        self._apply_chunking(self.update_config(lambda config: config.update(chunks=setting)))

    def _apply_chunking(self, config: dict[str, Any]) -> None:
        when, threshold = self.chunking(config)
        self.objects.chunk_threshold = threshold if when == "always" else None
        self.objects.changed_chunk_threshold = threshold

    def lease_seconds(self) -> float:
        """The store's lease ``L``: writers re-check what they publish after it, and gc
        deletes a fossil ``2 L`` after it moved it (``gc.lease_seconds`` in the config)."""
        if self._lease_seconds is None:
            self._lease_seconds = _lease_of(self.read_config())
        return self._lease_seconds

    def set_lease_seconds(self, seconds: float) -> None:
        self.update_config(lambda config: config.setdefault("gc", {}).update(lease_seconds=seconds))
        self._lease_seconds = float(seconds)

    def close(self) -> None:
        self.storage.close()


def _lease_of(config: dict[str, Any]) -> float:
    return float(config.get("gc", {}).get("lease_seconds") or DEFAULT_LEASE_SECONDS)


__all__ = ["Repository", "Mode"]
