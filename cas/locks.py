"""Writers share a store; the garbage collector needs it alone.

Every operation that writes objects and then publishes refs holds a *shared*
lock for its duration; ``gc`` holds an *exclusive* one. So gc never runs
between a writer finding an object already stored (and skipping it) and the
writer publishing the ref that reaches it.

- Local stores use ``flock`` on ``locks/gc.lock``: the kernel releases it
  when a process dies, so a crash never leaves a store locked. gc first takes
  ``locks/gc-intent.lock`` exclusively, and writers pass through it (shared)
  before they take ``gc.lock``: once gc waits, new writers queue behind it,
  so a busy store cannot starve gc.
- Other stores use lock refs (``locks/writers/<id>``, ``locks/gc/<id>``, one
  id per process), each pointing at a blob with the time it was taken,
  written by compare-and-swap (a released lock is a tombstone, which gc
  removes after an hour). A locker announces itself, then looks: of two
  racing lockers at least one sees the other. A writer that sees gc
  withdraws and waits for gc to go; gc that sees only writers stays
  announced (new writers see it and withdraw) and waits for them to leave.
  A held lock ref is renewed every :data:`HEARTBEAT_SECONDS`; one not
  renewed for :data:`STALE_SECONDS` is ignored, which bounds how long a
  crashed writer can block gc. A lock whose blob cannot be read counts from
  its ref's modification time, never as stale.

Locks are re-entrant per process and store: a writer that nests
``writing()`` blocks (``log_artifact`` logging, then recording its run)
takes the lock once. On every acquisition the object store forgets packs
that have vanished since it last looked (gc removes packs): a stale
in-memory pack index would make a writer skip an object as "already stored"
when gc has just deleted it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import secrets
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import RefConflictError, UsageError
from .objects import Blob
from .refs import RefStore
from .storage.base import Storage
from .store import ObjectStore

STALE_SECONDS = 3600
HEARTBEAT_SECONDS = STALE_SECONDS / 6  # a held lock ref is renewed this often
POLL_SECONDS = 0.05
# On bucket stores, gc taken again right after this process let go of it first waits
# this long, so that writers polling behind it get in: gc in a loop cannot starve them.
GC_COOLDOWN_SECONDS = 0.25
LOCK_PREFIX = "locks/"


@dataclass
class _Hold:
    """This process's hold on one store's lock."""

    exclusive: bool
    release: Callable[[], None]
    owner: int  # the thread holding an exclusive lock
    count: int = 0
    synced: weakref.WeakSet[ObjectStore] = field(default_factory=weakref.WeakSet)


_holds: dict[str, _Hold] = {}
_guards: dict[str, threading.Lock] = {}
_guards_lock = threading.Lock()
_names: dict[str, str] = {}  # store key -> this process's lock-ref suffix
_gc_released: dict[str, float] = {}  # store key -> when this process last let go of gc


def _reset_after_fork() -> None:
    # A forked child holds none of its parent's locks (its flock fds are copies, and
    # bucket lock refs belong to the parent): it starts with a clean slate.
    global _guards_lock
    _holds.clear()
    _guards.clear()
    _names.clear()
    _gc_released.clear()
    _guards_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


@contextmanager
def shared(storage: Storage, store: ObjectStore, refs: RefStore) -> Iterator[None]:
    with _held(storage, store, refs, exclusive=False, wait=None):
        yield


@contextmanager
def exclusive(
    storage: Storage, store: ObjectStore, refs: RefStore, wait: float | None = 60.0
) -> Iterator[None]:
    with _held(storage, store, refs, exclusive=True, wait=wait):
        yield


def _store_key(storage: Storage) -> str:
    path = storage.local_path("locks/gc.lock")
    if path is not None:
        return os.path.realpath(path)
    if not storage.capabilities.durable:
        return f"{storage.url}#{id(storage)}"  # each in-memory store is its own
    return storage.url


def _guard(key: str) -> threading.Lock:
    with _guards_lock:
        return _guards.setdefault(key, threading.Lock())


@contextmanager
def _held(
    storage: Storage, store: ObjectStore, refs: RefStore, exclusive: bool, wait: float | None
) -> Iterator[None]:
    key = _store_key(storage)
    guard = _guard(key)
    me = threading.get_ident()
    deadline = None if wait is None else time.monotonic() + wait
    while True:
        with guard:
            hold = _holds.get(key)
            if hold is None:
                if exclusive and storage.local_path("locks/gc.lock") is None:
                    # (flock wakes the writers blocked on it; lock refs are polled.)
                    pause = _gc_released.get(key, 0.0) + GC_COOLDOWN_SECONDS - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                release = _acquire(storage, store, refs, exclusive, remaining)
                hold = _holds[key] = _Hold(exclusive, release, me)
            # Shared nests in shared; anything nests in the exclusive holder's own thread.
            if (hold.exclusive and hold.owner == me) or not (hold.exclusive or exclusive):
                hold.count += 1
                break
        # Another thread of this process holds the store: wait for it to let go.
        if deadline is not None and time.monotonic() > deadline:
            raise UsageError(f"{storage.url} is busy with another thread of this process")
        time.sleep(POLL_SECONDS)
    try:
        if store not in hold.synced:
            _forget_vanished_packs(store)
            hold.synced.add(store)
        yield
    finally:
        with guard:
            hold.count -= 1
            if hold.count == 0:
                del _holds[key]
                if hold.exclusive:
                    _gc_released[key] = time.monotonic()
                if sys.exc_info()[1] is None:
                    hold.release()
                else:
                    # The error in flight is the one to report; a lock we fail to
                    # withdraw goes stale and is taken over.
                    with contextlib.suppress(Exception):
                        hold.release()


def _forget_vanished_packs(store: ObjectStore) -> None:
    """Make the store's in-memory pack indexes match the packs that exist now."""
    listed = {
        key[len("packs/") : -len(".idx")]
        for key in store.storage.list("packs/")
        if key.endswith(".idx")
    }
    known = set(store._indexes)
    gone = known - listed
    if gone:
        store.forget_pack(next(iter(gone)))  # reloads every index from the listing
    elif listed - known:
        store.refresh_packs()


def _acquire(
    storage: Storage, store: ObjectStore, refs: RefStore, exclusive: bool, wait: float | None
) -> Callable[[], None]:
    path = storage.local_path("locks/gc.lock")
    if path is not None:
        return _acquire_flock(path, exclusive, wait)
    return _acquire_refs(storage, store, refs, exclusive, wait)


# ---- local stores: flock -------------------------------------------------------


def _acquire_flock(path: str, exclusive: bool, wait: float | None) -> Callable[[], None]:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    deadline = None if wait is None else time.monotonic() + wait
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    intent = os.open(os.path.join(os.path.dirname(path), "gc-intent.lock"), os.O_RDWR | os.O_CREAT)
    main = -1
    try:
        _flock(intent, mode, deadline)
        main = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        _flock(main, mode, deadline)
    except BaseException:
        if main >= 0:
            os.close(main)
        os.close(intent)
        raise
    if not exclusive:
        os.close(intent)  # writers only pass through the turnstile

        def release() -> None:
            os.close(main)
    else:

        def release() -> None:
            os.close(main)
            os.close(intent)

    return release


def _flock(fd: int, mode: int, deadline: float | None) -> None:
    if deadline is None:
        fcntl.flock(fd, mode)
        return
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise UsageError("the store is busy with other writers; try again") from None
            time.sleep(POLL_SECONDS)


# ---- other stores: lock refs ---------------------------------------------------


def _acquire_refs(
    storage: Storage, store: ObjectStore, refs: RefStore, exclusive: bool, wait: float | None
) -> Callable[[], None]:
    key = _store_key(storage)
    suffix = _names.setdefault(key, secrets.token_hex(8))
    mine = f"{LOCK_PREFIX}{'gc' if exclusive else 'writers'}/{suffix}"
    gcs = f"{LOCK_PREFIX}gc/"
    # A writer needs only gc away; gc needs everybody away.
    look = LOCK_PREFIX if exclusive else gcs
    deadline = None if wait is None else time.monotonic() + wait
    token = None
    try:
        while True:
            # Announce first, then look: of two racing lockers, one sees the other.
            token = store.put(Blob(_stamp(mine)))
            _announce(refs, mine, token)
            while True:
                others = _live_locks(storage, store, refs, look) - {mine}
                if not others:
                    break
                if not exclusive or any(o.startswith(gcs) for o in others):
                    # A writer yields to gc; two gcs both yield, and retry after a pause.
                    _withdraw(refs, mine, token)
                    token = None
                    break
                # gc stays announced, so no new writer starts, and waits for these to end.
                _check_deadline(storage, others, deadline)
                time.sleep(POLL_SECONDS)
            if token is not None:
                break
            # Wait (only looking: announcing costs writes) until no gc is there.
            while others := _live_locks(storage, store, refs, gcs) - {mine}:
                _check_deadline(storage, others, deadline)
                time.sleep(POLL_SECONDS * (1 + random.random()))
            _check_deadline(storage, {"another gc"}, deadline)
            if exclusive:  # two gcs that yielded to each other must not meet again
                time.sleep(POLL_SECONDS * 2 * random.random())
    except BaseException:
        if token is not None:
            _withdraw(refs, mine, token)
        raise
    return _Heartbeat(store, refs, mine, token).release


class _Heartbeat:
    """Renews a held lock ref every :data:`HEARTBEAT_SECONDS`, so that a writer busy for
    longer than :data:`STALE_SECONDS` (a huge upload) is not taken for a dead one."""

    def __init__(self, store: ObjectStore, refs: RefStore, name: str, token: bytes) -> None:
        self.store, self.refs, self.name, self.token = store, refs, name, token
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._run, name=f"heartbeat {name}", daemon=True).start()

    def _run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_SECONDS):
            with self.lock:
                if self.stopped.is_set():
                    return
                try:
                    new = self.store.put(Blob(_stamp(self.name)))
                    self.refs.set_if_equals(self.name, self.token, new)
                    self.token = new
                except Exception:  # noqa: BLE001 - a missed beat is retried at the next
                    pass

    def release(self) -> None:
        self.stopped.set()
        with self.lock:
            _withdraw(self.refs, self.name, self.token)


def _stamp(name: str) -> bytes:
    # Unique (time, name, pid): a lock blob is never "already stored" from an earlier one.
    return f"{time.time()!r} {name} {os.getpid()}".encode()


def _check_deadline(storage: Storage, others: set[str], deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise UsageError(f"{storage.url} is busy: {sorted(others)[0]} holds it")


def _announce(refs: RefStore, name: str, token: bytes) -> None:
    while True:  # only this process writes its lock ref, but gc may delete an old tombstone
        try:
            refs.set_if_equals(name, refs.read(name), token)
            return
        except RefConflictError:
            continue


def _withdraw(refs: RefStore, name: str, token: bytes) -> None:
    try:
        refs.delete_if_equals(name, token)
    except RefConflictError:
        pass


def lock_renewed(storage: Storage, store: ObjectStore, name: str, target: bytes) -> float:
    """When the lock ref ``name`` was taken or last renewed (its blob's time, else the
    ref's modification time)."""
    try:
        return float(store.read_blob(target).split()[0])
    except Exception:
        # Never unreadable means stale: a lock whose blob cannot be read counts from the
        # ref's own write time, so it still excludes gc.
        try:
            return storage.stat(f"refs/{name}").mtime
        except Exception:
            return time.time()


def _live_locks(storage: Storage, store: ObjectStore, refs: RefStore, prefix: str) -> set[str]:
    live = set()
    for name, target in refs.list(prefix).items():
        if time.time() - lock_renewed(storage, store, name, target) < STALE_SECONDS:
            live.add(name)
    return live
