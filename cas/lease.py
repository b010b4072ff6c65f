"""Writers take no lock: each write runs inside a *lease* of bounded length.

gc moves an unreachable object to the fossils only after every writer that may
have found it "already stored" could have published what reaches it, and
deletes a fossil only ``2 L`` after it moved it (docs/reliability.md gives the
argument step by step). A writer's side of the bargain, with ``L`` the store's
lease (``lease_seconds`` in its config):

- when a lease starts, the writer notes its monotonic clock and reloads which
  packs exist, so every "already stored?" answer it relies on comes from a look
  taken after the lease began;
- an object it reads that is only among the fossils is restored first, with
  everything it reaches, so what it builds on is present;
- before it publishes a ref, the target must be present (restored if it is a
  fossil); and once more than ``L`` has passed since the lease began, before it
  stores a tree or commit or publishes a ref it re-checks what that references
  against a fresh look, restores fossils, and fails with
  :class:`~cas.errors.CollectedError` if something is gone for good; then the
  lease starts again.

Leases are per thread and nest: the outermost one counts. Durations are measured
on this machine's monotonic clock only; no time is ever written for others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import objects
from .errors import CollectedError, ObjectNotFoundError
from .fossils import restore
from .objects import ObjectId
from .store import ObjectStore
from .walk import references

DEFAULT_LEASE_SECONDS = 6 * 3600.0


@dataclass
class _Lease:
    started: float
    depth: int = 1
    stored: set[ObjectId] = field(default_factory=set)  # present: stored or checked now


class Leases:
    """The leases of this process's threads on one object store; the store's watcher."""

    def __init__(self, store: ObjectStore, seconds: Callable[[], float]) -> None:
        self.store = store
        self._seconds = seconds
        self._local = threading.local()
        store.watcher = self

    @contextmanager
    def hold(self) -> Iterator[None]:
        lease = self._current()
        if lease is not None:  # nested: the outer lease counts
            lease.depth += 1
            try:
                yield
            finally:
                lease.depth -= 1
            return
        lease = _Lease(started=time.monotonic())
        self.store.sync_packs()
        self._local.lease = lease
        try:
            yield
        finally:
            self._local.lease = None

    def _current(self) -> _Lease | None:
        return getattr(self._local, "lease", None)

    def _expired(self, lease: _Lease) -> bool:
        return time.monotonic() - lease.started > self._seconds()

    # ---- the store's watcher hooks ---------------------------------------------

    def storing(self, data: bytes, pending: Iterable[ObjectId] = ()) -> None:
        """A tree or commit is about to be stored (``pending``: objects of the same
        pack, stored with it)."""
        lease = self._current()
        if lease is not None and self._expired(lease):
            self._recheck(lease, set(references(objects.decode(data))) - set(pending))
        if lease is not None:
            lease.stored.add(objects.object_id(data))

    def referencing(self, ids: Iterable[ObjectId]) -> None:
        """Something that references ``ids`` (found already stored) is about to be
        stored: past the lease, they are checked again first."""
        lease = self._current()
        if lease is not None and self._expired(lease):
            self._recheck(lease, ids)

    def read_fossil(self, object_id: ObjectId) -> None:
        """An object was read from the fossils: a writer builds on present ones only."""
        lease = self._current()
        if lease is None:
            return
        try:
            restore(self.store, {object_id})
        except ObjectNotFoundError:
            pass  # part of it is gone: publishing anything reaching it fails the check

    def publishing(self, target: ObjectId) -> None:
        """A ref is about to point at ``target``."""
        lease = self._current()
        if lease is None:
            return
        if self._expired(lease):
            self._recheck(lease, [target])
        elif target not in lease.stored:
            self._recheck(lease, [target], renew=False)

    def _recheck(self, lease: _Lease, ids: Iterable[ObjectId], renew: bool = True) -> None:
        began = lease.started
        if renew:
            lease.started = time.monotonic()
            lease.stored.clear()
            self.store.sync_packs()
        try:
            restore(self.store, set(ids))
        except ObjectNotFoundError as exc:
            raise CollectedError(exc.object_id, time.monotonic() - began) from None
