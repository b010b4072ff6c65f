"""Writers share a store; the garbage collector needs it alone.

Every operation that writes objects and then publishes refs holds a *shared*
lock for its duration; ``gc`` holds an *exclusive* one. So gc never runs
between a writer finding an object already stored (and skipping it) and the
writer publishing the ref that reaches it.

- Local stores use ``flock`` on ``locks/gc.lock``: the kernel releases it
  when a process dies, so a crash never leaves a store locked.
- Other stores use lock refs (``locks/…``) created and removed by
  compare-and-swap; a lock older than :data:`STALE_SECONDS` is ignored, which
  bounds how long a crashed writer can block gc.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import RefConflictError, UsageError
from .objects import Blob
from .refs import RefStore
from .storage.base import Storage
from .store import ObjectStore

STALE_SECONDS = 3600
POLL_SECONDS = 0.05


@contextmanager
def shared(storage: Storage, store: ObjectStore, refs: RefStore) -> Iterator[None]:
    with _lock(storage, store, refs, exclusive=False, wait=None):
        yield


@contextmanager
def exclusive(
    storage: Storage, store: ObjectStore, refs: RefStore, wait: float | None = 60.0
) -> Iterator[None]:
    with _lock(storage, store, refs, exclusive=True, wait=wait):
        yield


@contextmanager
def _lock(
    storage: Storage, store: ObjectStore, refs: RefStore, exclusive: bool, wait: float | None
) -> Iterator[None]:
    path = storage.local_path("locks/gc.lock")
    if path is not None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, wait)
            yield
        finally:
            os.close(fd)
        return
    mine = f"locks/{'gc' if exclusive else 'writers'}/{secrets.token_hex(8)}"
    deadline = None if wait is None else time.monotonic() + wait
    while True:
        # Announce first, then look: of two racing lockers, at least one sees the other.
        token = store.put(Blob(str(time.time()).encode()))
        refs.set_if_equals(mine, None, token)
        others = _live_locks(storage, store, refs, "locks/gc/" if not exclusive else "locks/")
        others.discard(mine)
        if not others:
            break
        refs.delete_if_equals(mine, token)
        if deadline is not None and time.monotonic() > deadline:
            raise UsageError(f"{storage.url} is busy: {sorted(others)[0]} holds it")
        time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        try:
            refs.delete_if_equals(mine, token)
        except RefConflictError:
            pass


def _flock(fd: int, mode: int, wait: float | None) -> None:
    if wait is None:
        fcntl.flock(fd, mode)
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise UsageError("the store is busy with other writers; try again") from None
            time.sleep(POLL_SECONDS)


def _live_locks(storage: Storage, store: ObjectStore, refs: RefStore, prefix: str) -> set[str]:
    live = set()
    for name, target in refs.list(prefix).items():
        try:
            started = float(store.read_blob(target))
        except Exception:
            started = 0.0
        if time.time() - started < STALE_SECONDS:
            live.add(name)
    return live
