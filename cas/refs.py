"""Refs: named, mutable pointers to object ids, changed only by compare-and-swap.

A ref named ``a/b/c`` is stored at the key ``refs/a/b/c`` as canonical msgpack
``{"id": <32 bytes> | nil, "seq": <int>}``. ``seq`` grows by one on every
write, so a ref's bytes never repeat: a conditional write keyed on an ETag or
content hash cannot be fooled by a value that went away and came back (ABA).
A deleted ref keeps its key with ``id`` nil (a tombstone) for the same reason.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import msgpack

from . import keys
from .errors import (
    CasError,
    DamagedRefError,
    InvalidNameError,
    InvalidObjectError,
    KeyNotFoundError,
    PreconditionFailedError,
    RefConflictError,
    RefNotFoundError,
)
from .objects import ID_SIZE, ObjectId, canonical_packb
from .storage.base import IfMatch, Mode, Storage
from .threads import worker_pool

_SEGMENT = re.compile(r"[A-Za-z0-9_.@=+-]{1,128}")
MAX_REF_DEPTH = 16
# Older versions locked bucket stores with refs here; nothing does now, gc deletes
# them, and nothing there is data.
LEGACY_LOCKS = "locks/"


def validate_ref_name(name: str) -> str:
    segments = name.split("/")
    if len(segments) > MAX_REF_DEPTH:
        raise InvalidNameError(name, f"more than {MAX_REF_DEPTH} segments")
    for segment in segments:
        if not _SEGMENT.fullmatch(segment) or segment in (".", ".."):
            raise InvalidNameError(
                name, "ref segments are 1-128 of A-Z a-z 0-9 _ . @ = + -, and not '.' or '..'"
            )
    return name


def _decode(name: str, data: bytes) -> tuple[ObjectId | None, int]:
    try:
        value = msgpack.unpackb(data, raw=False)
        target, seq = value["id"], value["seq"]
    except Exception:
        raise DamagedRefError(name, f"ref {name!r} holds unreadable bytes") from None
    if target is not None and (not isinstance(target, bytes) or len(target) != ID_SIZE):
        raise DamagedRefError(name, f"ref {name!r} does not hold an object id")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise DamagedRefError(name, f"ref {name!r} has no valid sequence number")
    return target, seq


def encode_ref(target: ObjectId | None, seq: int) -> bytes:
    return canonical_packb({"id": target, "seq": seq})


class RefStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        # Called with a ref's new target before it is written (a writer's lease check).
        self.before_set: Callable[[ObjectId], None] | None = None

    def _key(self, name: str) -> str:
        return keys.ref_key(validate_ref_name(name))

    def _read(self, name: str) -> tuple[ObjectId | None, int, str | None]:
        try:
            data, token = self.storage.get_versioned(self._key(name))
        except KeyNotFoundError:
            return None, 0, None
        target, seq = _decode(name, data)
        return target, seq, token

    def read(self, name: str) -> ObjectId | None:
        """The ref's target, or None when it is not set."""
        return self._read(name)[0]

    def get(self, name: str) -> ObjectId:
        target = self.read(name)
        if target is None:
            raise RefNotFoundError(name)
        return target

    def __contains__(self, name: str) -> bool:
        return self.read(name) is not None

    def set_if_equals(self, name: str, old: ObjectId | None, new: ObjectId | None) -> None:
        """Point ``name`` at ``new`` if it still points at ``old`` (None: absent).

        ``new=None`` deletes. Raises :class:`RefConflictError` otherwise.
        """
        if new is not None and (not isinstance(new, bytes) or len(new) != ID_SIZE):
            raise InvalidObjectError(f"ref {name!r} can only point at a {ID_SIZE}-byte id")
        current, seq, token = self._read(name)
        if current != old:
            raise RefConflictError(name, old, current)
        if current is None and new is None:
            return
        if new is not None and self.before_set is not None:
            self.before_set(new)
        mode: Mode = "create" if token is None else IfMatch(token)
        self.storage.sync()  # what the ref reaches survives a power loss before the ref does
        try:
            self.storage.put(self._key(name), encode_ref(new, seq + 1), mode)
        except PreconditionFailedError as exc:
            if not (exc.retried and self._holds(name, new, seq + 1)):
                raise RefConflictError(name, old, self.read(name)) from None
            # else our first attempt landed; its answer was lost
        except Exception:
            if not self._holds(name, new, seq + 1):
                raise
            # no answer, yet the write landed
        self.storage.sync()  # and the ref itself, before we say it moved

    def _holds(self, name: str, target: ObjectId | None, seq: int) -> bool:
        """Whether the ref holds exactly this value: after a write that got no clear
        answer, the sign that it landed (the seq makes the value one no earlier write
        of the ref had). False when it cannot be read either."""
        try:
            return self._read(name)[:2] == (target, seq)
        except (CasError, OSError):
            return False

    def delete_if_equals(self, name: str, old: ObjectId) -> None:
        self.set_if_equals(name, old, None)

    def set_aside(self, name: str) -> str:
        """Move a damaged ref's bytes out of the way, to a key of their own, returned;
        the ref is then unset. Nothing is lost: the bytes are kept as they were."""
        key = self._key(name)
        data = self.storage.get(key)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{time.time_ns() % 10**9:09d}"
        kept = keys.damaged_ref_key(name, stamp)
        self.storage.put(kept, data, "create")
        self.storage.sync()  # the copy survives a power loss before the ref goes
        self.storage.delete(key)
        return kept

    def names(self, prefix: str = "") -> Iterator[str]:
        """Names of refs that start with ``prefix`` (tombstones included)."""
        for key in self.storage.list(keys.ref_key(prefix)):
            yield keys.parse_ref_key(key)

    def list(self, prefix: str = "") -> dict[str, ObjectId]:
        """Every set ref whose name starts with ``prefix``, with its target."""
        return self.read_many(sorted(self.names(prefix)))

    def read_many(self, names: list[str]) -> dict[str, ObjectId]:
        """The set refs among ``names``, with their targets, in the order given."""
        if self.storage.capabilities.local or len(names) < 4:
            targets = [self.read(n) for n in names]
        else:
            with worker_pool(16) as pool:  # one request a ref: overlap them
                targets = list(pool.map(self.read, names))
        return {n: t for n, t in zip(names, targets, strict=False) if t is not None}
