"""A repository: one storage holding objects, refs and a small config."""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import AbstractContextManager
from typing import Any

from .errors import KeyNotFoundError, PreconditionFailedError, RefConflictError
from .keys import CONFIG_KEY
from .lease import DEFAULT_LEASE_SECONDS, Leases
from .objects import ObjectId
from .refs import RefStore
from .storage import Storage, open_storage
from .storage.base import IfMatch, Mode
from .store import ObjectStore


def default_cache_dir(url: str) -> str:
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
        self.leases = Leases(self.objects, self.lease_seconds)
        self.refs.before_set = self.leases.publishing

    @classmethod
    def open(cls, url: str, **options: Any) -> Repository:
        return cls(open_storage(url, **options))

    @property
    def url(self) -> str:
        return self.storage.url

    def read_config(self) -> dict[str, Any]:
        try:
            return json.loads(self.storage.get(CONFIG_KEY))
        except KeyNotFoundError:
            return {}

    def update_config(self, change: Any) -> dict[str, Any]:
        """Apply ``change(config)`` (which edits the dict in place) atomically."""
        while True:
            try:
                data, token = self.storage.get_versioned(CONFIG_KEY)
                config, mode = json.loads(data), IfMatch(token)
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
        lease (:mod:`cas.lease`), never a lock; gc never waits for it, nor it for gc."""
        return self.leases.hold()

    def lease_seconds(self) -> float:
        """The store's lease ``L``: writers re-check what they publish after it, and gc
        deletes a fossil ``2 L`` after it moved it (``gc.lease_seconds`` in the config)."""
        if self._lease_seconds is None:
            setting = self.read_config().get("gc", {}).get("lease_seconds")
            self._lease_seconds = float(setting or DEFAULT_LEASE_SECONDS)
        return self._lease_seconds

    def set_lease_seconds(self, seconds: float) -> None:
        self.update_config(lambda config: config.setdefault("gc", {}).update(lease_seconds=seconds))
        self._lease_seconds = float(seconds)

    def close(self) -> None:
        self.storage.close()


__all__ = ["Repository", "Mode"]
