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
  id per process), written by compare-and-swap (a released lock is a
  tombstone, which gc removes after an hour). A locker announces itself,
  then looks: of two racing lockers at least one sees the other. A writer
  that sees gc withdraws and waits for gc to go (saying so once); gc that
  sees only writers stays announced (new writers see it and withdraw) and
  waits for them to leave. A lock's age is its ref's modification time as
  the bucket stamps it, against the bucket's clock (read from the locker's
  own lock ref), never a time a client wrote: a future-dated stamp ages
  like any lock, and bytes that are no ref at all are no lock. A held writer lock is
  renewed every :data:`HEARTBEAT_SECONDS` and one not renewed for
  :data:`STALE_SECONDS` is ignored (a crashed writer holds gc back that
  long); gc renews its own every :data:`GC_HEARTBEAT_SECONDS` and it goes
  stale after :data:`GC_STALE_SECONDS`, so a gc killed while it works holds
  writers back for a minute at most.

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
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import CasError, KeyNotFoundError, RefConflictError, UsageError
from .objects import Blob
from .refs import RefStore
from .storage.base import Storage
from .store import ObjectStore

STALE_SECONDS = 3600
HEARTBEAT_SECONDS = STALE_SECONDS / 6  # a held lock ref is renewed this often
# gc renews its lock often and it goes stale soon: a gc killed while it works holds
# writers back for this long at most.
GC_STALE_SECONDS = 60.0
GC_HEARTBEAT_SECONDS = GC_STALE_SECONDS / 6
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
    clock: _BucketClock | None = None  # bucket stores: the bucket's time
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
                release, clock = _acquire(storage, store, refs, exclusive, remaining)
                hold = _holds[key] = _Hold(exclusive, release, me, clock)
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


def store_time(storage: Storage) -> float:
    """Now, by the clock that stamps the store's modification times: the bucket's,
    read when this process took its lock there, else this machine's."""
    hold = _holds.get(_store_key(storage))
    if hold is not None and hold.clock is not None:
        return hold.clock.now()
    return time.time()


def _acquire(
    storage: Storage, store: ObjectStore, refs: RefStore, exclusive: bool, wait: float | None
) -> tuple[Callable[[], None], _BucketClock | None]:
    path = storage.local_path("locks/gc.lock")
    if path is not None:
        return _acquire_flock(path, exclusive, wait), None
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


class _BucketClock:
    """The bucket's time: the modification time it stamped on a ref we just wrote,
    advanced by this machine's monotonic clock since."""

    def __init__(self) -> None:
        self._base = time.time()
        self._at = time.monotonic()

    def set_from(self, storage: Storage, key: str) -> None:
        at = time.monotonic()
        self._base, self._at = storage.stat(key).mtime, at

    def now(self) -> float:
        return self._base + time.monotonic() - self._at


def _acquire_refs(
    storage: Storage, store: ObjectStore, refs: RefStore, exclusive: bool, wait: float | None
) -> tuple[Callable[[], None], _BucketClock]:
    key = _store_key(storage)
    suffix = _names.setdefault(key, secrets.token_hex(8))
    mine = f"{LOCK_PREFIX}{'gc' if exclusive else 'writers'}/{suffix}"
    gcs = f"{LOCK_PREFIX}gc/"
    # A writer needs only gc away; gc needs everybody away.
    look = LOCK_PREFIX if exclusive else gcs
    deadline = None if wait is None else time.monotonic() + wait
    token = None
    clock = _BucketClock()
    told = False
    try:
        while True:
            # Announce first, then look: of two racing lockers, one sees the other.
            token = store.put(Blob(_stamp(mine)))
            _announce(refs, mine, token)
            clock.set_from(storage, f"refs/{mine}")
            while True:
                others = _live_locks(storage, refs, look, clock) - {mine}
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
            while others := _live_locks(storage, refs, gcs, clock) - {mine}:
                if not exclusive and not told:
                    warnings.warn(
                        f"{storage.url}: waiting for gc ({sorted(others)[0]}) to finish; a gc "
                        f"that died stops counting {GC_STALE_SECONDS:.0f} s after its last renewal",
                        stacklevel=2,
                    )
                    told = True
                _check_deadline(storage, others, deadline)
                time.sleep(POLL_SECONDS * (1 + random.random()))
            _check_deadline(storage, {"another gc"}, deadline)
            if exclusive:  # two gcs that yielded to each other must not meet again
                time.sleep(POLL_SECONDS * 2 * random.random())
    except BaseException:
        if token is not None:
            _withdraw(refs, mine, token)
        raise
    beat = GC_HEARTBEAT_SECONDS if exclusive else HEARTBEAT_SECONDS
    return _Heartbeat(store, refs, mine, token, beat).release, clock


class _Heartbeat:
    """Renews a held lock ref every ``interval`` seconds, so that a writer busy for
    longer than :data:`STALE_SECONDS` (a huge upload), or a gc busy for longer than
    :data:`GC_STALE_SECONDS`, is not taken for a dead one."""

    def __init__(
        self, store: ObjectStore, refs: RefStore, name: str, token: bytes, interval: float
    ) -> None:
        self.store, self.refs, self.name, self.token = store, refs, name, token
        self.interval = interval
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._run, name=f"heartbeat {name}", daemon=True).start()

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
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


def stale_after(name: str) -> float:
    """How long the lock ref ``name`` counts after it was last written."""
    return GC_STALE_SECONDS if name.startswith(f"{LOCK_PREFIX}gc/") else STALE_SECONDS


def lock_written(storage: Storage, refs: RefStore, name: str) -> tuple[float, bool] | None:
    """(when the bucket last wrote the lock ref ``name``, whether it is held), or None
    if it is gone. Bytes that are no ref are no lock: ours never write them."""
    try:
        held = refs.read(name) is not None
    except CasError:
        held = False
    try:
        return storage.stat(f"refs/{name}").mtime, held
    except KeyNotFoundError:
        return None


def _live_locks(storage: Storage, refs: RefStore, prefix: str, clock: _BucketClock) -> set[str]:
    live = set()
    for name in refs.names(prefix):
        written = lock_written(storage, refs, name)
        if written is not None and written[1] and clock.now() - written[0] < stale_after(name):
            live.add(name)
    return live
