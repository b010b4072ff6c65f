"""Deletion records: which versions are deleted, by whom, when and why.

A version is deleted when the ref ``<e>/<p>/artifacts/<name>/deleted/<commit>``
exists (``<commit>`` the version's commit id in hex). It points at a blob, the
record: canonical msgpack of the commit id, the time, the user, the run and the
reason (docs/format.md, "Deletion records"). The version's commit stays (later
versions name it as parent); the deletion *releases* it: gc and fsck, told so,
no longer follow its tree (:func:`released_by`, :mod:`artifacts.deletion`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import msgpack

from cas import ObjectId, Repository
from cas.errors import CasError, InvalidObjectError
from cas.objects import ID_SIZE, Blob, canonical_packb

UNREADABLE = "unreadable"  # the reason given for a record that cannot be read


def deletion_prefix(entity: str, project: str, name: str) -> str:
    return f"{entity}/{project}/artifacts/{name}/deleted/"


def deletion_ref(entity: str, project: str, name: str, commit_id: ObjectId) -> str:
    return deletion_prefix(entity, project, name) + commit_id.hex()


def released_by(ref: str) -> ObjectId | None:
    """The commit a deletion ref releases; None for any other ref."""
    parts = ref.split("/")
    if len(parts) != 6 or parts[2] != "artifacts" or parts[4] != "deleted":
        return None
    try:
        commit_id = bytes.fromhex(parts[5])
    except ValueError:
        return None
    return commit_id if len(commit_id) == ID_SIZE and parts[5] == commit_id.hex() else None


@dataclass(frozen=True)
class Deletion:
    commit: ObjectId  # the deleted version's commit id
    time: int  # ns since the epoch
    user: str | None
    run: str | None  # the run that deleted it, if one was active
    reason: str  # "delete" (by a user) or "ttl" (expired)

    def to_blob(self) -> Blob:
        fields = {"commit": self.commit, "time": self.time, "user": self.user}
        return Blob(canonical_packb({**fields, "run": self.run, "reason": self.reason}))

    @classmethod
    def from_bytes(cls, data: bytes, commit_id: ObjectId) -> Deletion:
        """The record of ``commit_id``'s deletion; refused if it says anything else."""
        try:
            fields = msgpack.unpackb(data, raw=False)
            found = cls(*(fields[k] for k in ("commit", "time", "user", "run", "reason")))
        except (ValueError, TypeError, KeyError, msgpack.UnpackException):
            raise InvalidObjectError("a deletion record holds unreadable bytes") from None
        if found.commit != commit_id:
            raise InvalidObjectError(f"the deletion record of {commit_id.hex()} names another")
        if not isinstance(found.time, int) or not isinstance(found.reason, str):
            raise InvalidObjectError(f"the deletion record of {commit_id.hex()} is invalid")
        return found

    def describe(self) -> str:
        """``by alice at 2026-12-01 10:00:00 UTC`` (and the run, and an expiry)."""
        if self.reason == UNREADABLE:
            return "(its deletion record cannot be read)"
        when = datetime.fromtimestamp(self.time / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        said = f"by {self.user or 'an unknown user'} at {when} UTC"
        if self.run:
            said += f" in run {self.run}"
        return said + (" (its TTL expired)" if self.reason == "ttl" else "")


def read_deletion(
    repo: Repository, entity: str, project: str, name: str, commit_id: ObjectId
) -> Deletion | None:
    """The record of the version's deletion; None while it is not deleted. A record
    that cannot be read still says the version is deleted."""
    blob_id = repo.refs.read(deletion_ref(entity, project, name, commit_id))
    if blob_id is None:
        return None
    try:
        return Deletion.from_bytes(repo.objects.read_blob(blob_id), commit_id)
    except CasError:
        return Deletion(commit_id, 0, None, None, UNREADABLE)


def deleted_ids(repo: Repository, entity: str, project: str, name: str) -> set[ObjectId]:
    """The commit ids of the artifact's deleted versions (one listing)."""
    found = (released_by(ref) for ref in repo.refs.list(deletion_prefix(entity, project, name)))
    return {commit_id for commit_id in found if commit_id is not None}
