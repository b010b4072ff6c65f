"""What a user may edit of a logged version: its description, metadata, tags and TTL.

A version's commit and tree never change. Its annotations live beside it, in a
chain of **annotation records** under the ref ``annotation_ref(...)`` (one per
version, named by the version's commit id). A record is a commit whose tree is
the version's tree, whose parent is the previous record (none for the first),
and whose ``meta`` holds the whole state after the edit and the edit itself
(``change``). The chain is the version's annotation history.

Saving an edit is a compare-and-swap of that ref, retried on conflict by
re-applying the same change to whatever record is newest: two editors never
lose each other's edits. Edits to different keys both hold; two edits of the
same metadata key, or of the description, end with the last one to land, and
both stay in the history. A version with no record reads as its commit says, and a
record with no ``ttl`` leaves the TTL the version was logged with (artifacts.ttl).
See docs/format.md ("Annotation records").
"""

from __future__ import annotations

import getpass
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from cas import Commit, ObjectId
from cas.errors import InvalidObjectError, UsageError

from .errors import InvalidTagError
from .metadata import normalize_metadata
from .names import validate_alias
from .ref_names import annotation_ref
from .registry import Registry, Version
from .ttl import from_stored, of_version, to_stored

# W&B's rule for tags: words of letters, digits, "_" and "-", separated by spaces.
TAG = re.compile(r"[-\w]+( +[-\w]+)*")
CHANGE_KEYS = ("description", "metadata_set", "metadata_unset", "tags_add", "tags_remove", "ttl")
_ABSENT = object()


class _AsLogged:
    """The TTL of a state no edit has set: the version's own, as its commit says."""

    def __repr__(self) -> str:
        return "AS_LOGGED"


AS_LOGGED: Any = _AsLogged()


@dataclass(frozen=True)
class Annotations:
    """A version's editable state."""

    description: str | None
    metadata: dict[str, Any]
    tags: list[str]
    ttl: Any = AS_LOGGED  # an artifacts.ttl.Policy, or AS_LOGGED

    @classmethod
    def of_meta(cls, meta: dict[str, Any]) -> Annotations:
        return cls(
            meta.get("description"), dict(meta.get("metadata") or {}), list(meta.get("tags") or [])
        )


@dataclass(frozen=True)
class Record:
    """One edit in a version's annotation history."""

    id: ObjectId
    annotations: Annotations
    change: dict[str, Any]
    time: int  # ns since the epoch
    run: str | None  # the run that made the edit, if one was active
    user: str | None


def validate_tags(tags: Iterable[str]) -> list[str]:
    """The tags, each checked by W&B's rule, duplicates dropped (the first kept)."""
    found: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not TAG.fullmatch(tag):
            raise InvalidTagError(
                f"invalid tag {tag!r}: tags are letters, digits, '-' and '_', "
                "in words separated by spaces"
            )
        if tag not in found:
            found.append(tag)
    return found


def diff(before: Annotations, after: Annotations) -> dict[str, Any]:
    """The change that turns ``before`` into ``after``: only what differs, by top-level
    metadata key and by tag, so that it can be re-applied over someone else's edit."""
    change: dict[str, Any] = {}
    if after.description != before.description:
        change["description"] = after.description
    changed = {k: v for k, v in after.metadata.items() if before.metadata.get(k, _ABSENT) != v}
    removed = sorted(k for k in before.metadata if k not in after.metadata)
    added = [t for t in after.tags if t not in before.tags]
    dropped = [t for t in before.tags if t not in after.tags]
    for key, value in zip(CHANGE_KEYS[1:5], (changed, removed, added, dropped), strict=True):
        if value:
            change[key] = value
    if after.ttl != before.ttl:
        change["ttl"] = to_stored(after.ttl)
    return change


def apply(state: Annotations, change: dict[str, Any]) -> Annotations:
    metadata = {
        k: v for k, v in state.metadata.items() if k not in change.get("metadata_unset", ())
    }
    metadata.update(change.get("metadata_set", {}))
    removed = set(change.get("tags_remove", ()))
    tags = [t for t in state.tags if t not in removed]
    tags += [t for t in change.get("tags_add", ()) if t not in tags]
    description = change["description"] if "description" in change else state.description
    ttl = from_stored(change["ttl"]) if "ttl" in change else state.ttl
    return Annotations(description, metadata, tags, ttl)


def state_meta(state: Annotations) -> dict[str, Any]:
    """The keys of a record's ``meta`` that hold ``state``: ``ttl`` only once an edit
    has set it, so that records that never touch it keep the bytes they had before it."""
    meta = {"description": state.description, "metadata": state.metadata, "tags": state.tags}
    if state.ttl is not AS_LOGGED:
        meta["ttl"] = to_stored(state.ttl)
    return meta


def record_commit(
    version: Version,
    parent: ObjectId | None,
    state: Annotations,
    change: dict[str, Any],
    when: int,
    run: str | None,
    user: str | None,
) -> Commit:
    """The record of ``change`` to ``version``, leaving it in ``state``."""
    meta = {
        "annotates": version.commit_id,
        "change": change,
        **state_meta(state),
        "time": when,
        "run": run,
        "user": user,
    }
    return Commit(version.tree, () if parent is None else (parent,), meta)


def is_record(commit: Commit) -> bool:
    return "annotates" in commit.meta


def read_record(
    commit_id: ObjectId, commit: Commit, versions: Iterable[ObjectId] | None = None
) -> Record:
    """The record ``commit`` is, checked (a store may be hostile or damaged): if
    ``versions`` is given, a record of one of them."""
    meta = commit.meta
    description, metadata, tags, change = (
        meta.get(k) for k in ("description", "metadata", "tags", "change")
    )
    problem = None
    if not isinstance(meta.get("annotates"), bytes):
        problem = "it annotates no version"
    elif versions is not None and meta["annotates"] not in versions:
        problem = f"it annotates {meta['annotates'].hex()}, another version"
    elif description is not None and not isinstance(description, str):
        problem = "its description is not a string"
    elif not isinstance(metadata, dict):
        problem = "its metadata is not a map"
    elif not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        problem = "its tags are not a list of strings"
    elif not _is_change(change):
        problem = "its change is not a map of known edits"
    elif not isinstance(meta.get("time"), int):
        problem = "it has no time"
    elif "ttl" in meta and not _is_stored_ttl(meta["ttl"]):
        problem = "its TTL is not seconds > 0, nil or 'inherit'"
    if problem:
        raise InvalidObjectError(f"commit {commit_id.hex()} is not an annotation record: {problem}")
    ttl = from_stored(meta["ttl"]) if "ttl" in meta else AS_LOGGED
    state = Annotations(description, metadata, tags, ttl)
    return Record(commit_id, state, change, meta["time"], meta.get("run"), meta.get("user"))


def _is_change(change: Any) -> bool:
    if not isinstance(change, dict) or not set(change) <= set(CHANGE_KEYS):
        return False
    lists = [change.get(k, []) for k in ("metadata_unset", "tags_add", "tags_remove")]
    return (
        isinstance(change.get("description"), (str, type(None)))
        and isinstance(change.get("metadata_set", {}), dict)
        and all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in lists)
        and ("ttl" not in change or _is_stored_ttl(change["ttl"]))
    )


def _is_stored_ttl(value: Any) -> bool:
    try:
        from_stored(value)
    except InvalidObjectError:
        return False
    return True


def _annotated(version: Version) -> list[ObjectId]:
    """The commits whose records are the version's: its own, and for a version that
    ``rebase`` re-made, the one it re-applies (``rebased_from``), whose records are
    its history until it is edited (its first record continues their chain)."""
    origin = version.commit.meta.get("rebased_from")
    if isinstance(origin, str) and re.fullmatch(r"[0-9a-f]{64}", origin):
        return [version.commit_id, bytes.fromhex(origin)]
    return [version.commit_id]


def _newest(registry: Registry, version: Version) -> ObjectId | None:
    for commit_id in _annotated(version):
        found = registry.refs.read(
            annotation_ref(version.entity, version.project, version.name, commit_id)
        )
        if found is not None:
            return found
    return None


def current(registry: Registry, version: Version) -> Annotations:
    """The version's annotations now: its newest record's, or its commit's if none
    (the TTL is the version's own unless an edit set it)."""
    newest = next(history(registry, version), None)
    state = newest.annotations if newest is not None else Annotations.of_meta(version.commit.meta)
    return _with_ttl(version, state)


def _with_ttl(version: Version, state: Annotations) -> Annotations:
    if state.ttl is not AS_LOGGED and "link" not in version.commit.meta:  # a link has none
        return state
    return replace(state, ttl=of_version(version.commit.meta))


def history(registry: Registry, version: Version) -> Iterator[Record]:
    """The version's records, newest first (read as they are walked)."""
    record_id = _newest(registry, version)
    annotated = _annotated(version)
    while record_id is not None:
        commit = registry.commit(record_id)
        yield read_record(record_id, commit, annotated)
        record_id = commit.parents[0] if commit.parents else None


def update(
    registry: Registry, version: Version, change: dict[str, Any], run: str | None
) -> Annotations:
    """Apply ``change`` to the version's newest annotations by compare-and-swap,
    re-applied on conflict; returns the annotations as written."""
    change = check_change(change)
    ref = annotation_ref(version.entity, version.project, version.name, version.commit_id)
    written: list[Annotations] = []

    def compute(old: ObjectId | None) -> ObjectId:
        parent = old if old is not None else _newest(registry, version)
        if parent is None:
            base = Annotations.of_meta(version.commit.meta)
        else:
            base = read_record(parent, registry.commit(parent)).annotations
        state = apply(base, change)
        written[:] = [state]
        commit = record_commit(version, parent, state, change, time.time_ns(), run, user_name())
        return registry.objects.put(commit)

    with registry.repo.writing():
        registry.repo.update_ref(ref, compute)
    return _with_ttl(version, written[0])


def check_change(change: dict[str, Any]) -> dict[str, Any]:
    """``change`` with its metadata made storable and its added tags checked."""
    checked = dict(change)
    if "description" in checked and not isinstance(checked["description"], (str, type(None))):
        raise UsageError("a description is a string or None")
    if "metadata_set" in checked:
        checked["metadata_set"] = normalize_metadata(checked["metadata_set"])
    if "tags_add" in checked:
        checked["tags_add"] = validate_tags(checked["tags_add"])
    if "ttl" in checked and not _is_stored_ttl(checked["ttl"]):
        raise UsageError(f"a TTL edit is seconds > 0, None or 'inherit', not {checked['ttl']!r}")
    return checked


def move_aliases(
    registry: Registry, version: Version, before: Iterable[str], after: Iterable[str]
) -> None:
    """Add the aliases of ``after`` not in ``before``, remove the others: all are
    checked first, so a bad one changes nothing. ``latest`` always names the newest
    version: it can be neither given to another version nor taken from the newest."""
    before, after = set(before), set(after)
    added, removed = after - before, before - after
    if not added and not removed:
        return
    head = registry.head(version.entity, version.project, version.name)
    is_head = head is not None and head.commit_id == version.commit_id
    if ("latest" in added and not is_head) or ("latest" in removed and is_head):
        raise UsageError(
            f"'latest' always names the newest version of {version.name}: "
            "it cannot be added or removed"
        )
    for alias in (added | removed) - {"latest"}:
        validate_alias(alias)
    for alias in sorted(added - {"latest"}):
        registry.set_alias(version, alias)
    for alias in sorted(removed - {"latest"}):
        registry.remove_alias(version, alias)


def user_name() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no user name to be found (e.g. a container without one)
        return None
