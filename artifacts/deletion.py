"""Deleting versions (W&B's ``artifact.delete()`` and ``collection.delete()``), and
telling gc and fsck which commits the deletions release.

Deleting a version writes its deletion record ref first
(:mod:`artifacts.deletion_records`): from then on the version is deleted. Then
its alias refs go, and its annotation ref (annotation records are commits whose
tree is the version's tree: left in place they would keep its data alive).
Killed at any instant, a version is either not deleted (no record) or deleted,
perhaps with refs left to clean up; deleting it again finishes that and says
it was deleted already. Nothing else changes: the version's commit stays (later
versions name it as parent) and ``latest`` is never rewound.

gc frees a deleted version's data once told its commit is released
(:func:`released`): ``artifacts gc`` and ``artifacts fsck`` pass it.
"""

from __future__ import annotations

import time

from cas import ObjectId, Repository
from cas.errors import RefConflictError, UsageError

from .annotations import user_name
from .deletion_records import Deletion, deletion_ref, read_deletion, released_by
from .errors import VersionDeletedError
from .ref_names import alias_ref, annotation_ref, collection_ref
from .registry import Registry, Version


def delete_version(
    registry: Registry,
    version: Version,
    delete_aliases: bool = False,
    run: str | None = None,
    reason: str = "delete",
) -> Deletion:
    """Delete ``version``; refuse one holding aliases unless ``delete_aliases``
    (``latest`` is not an alias: it moves to the newest version left). Raises
    VersionDeletedError, once the cleanup is finished, if it was deleted already."""
    label = version.label
    found = read_deletion(registry.repo, *_where(version))
    if found is None:
        held = [a for a in registry.aliases(version) if a != "latest"]
        if held and not delete_aliases:
            raise UsageError(
                f"{label} has aliases {', '.join(held)}: remove them first, or delete with "
                "delete_aliases=True (artifacts rm --delete-aliases)"
            )
        record = Deletion(version.commit_id, time.time_ns(), user_name(), run, reason)
        with registry.repo.writing():
            blob_id = registry.objects.put(record.to_blob())
            try:
                registry.refs.set_if_equals(deletion_ref(*_where(version)), None, blob_id)
            except RefConflictError:  # someone else deleted it meanwhile
                found = read_deletion(registry.repo, *_where(version))
    _clean_up(registry, version)
    if found is not None:
        raise VersionDeletedError(f"{label} was already deleted {found.describe()}")
    return record


def delete_collection(registry: Registry, entity: str, project: str, name: str) -> list[Version]:
    """Delete every version of artifact ``name``, its aliases and its own record
    (description and tags); the versions deleted now (those deleted before are cleaned
    up, not counted)."""
    head = registry.refs.read(f"{entity}/{project}/artifacts/{name}/latest")
    if head is None:
        return []
    _drop(registry, collection_ref(entity, project, name), None)
    deleted = []
    for version in registry.chain(registry.version(entity, project, head, name)):
        try:
            delete_version(registry, version, delete_aliases=True)
        except VersionDeletedError:
            continue
        deleted.append(version)
    return deleted


def _where(version: Version) -> tuple[str, str, str, ObjectId]:
    return version.entity, version.project, version.name, version.commit_id


def _clean_up(registry: Registry, version: Version) -> None:
    """Remove the refs a deleted version keeps alive: its aliases, its annotations."""
    where = version.entity, version.project, version.name
    for alias in registry.aliases(version):
        if alias != "latest":
            _drop(registry, alias_ref(*where, alias), version.commit_id)
    _drop(registry, annotation_ref(*where, version.commit_id), None)


def _drop(registry: Registry, ref: str, only_if: ObjectId | None) -> None:
    """Delete ``ref`` (only while it points at ``only_if``, if given), retried on conflict."""
    registry.repo.update_ref(ref, lambda old: None if only_if in (None, old) else old)


def released(repo: Repository) -> set[ObjectId]:
    """The commits whose trees gc and fsck must not follow: every version deleted in this
    store; and a version another store deleted (a remote-tracking deletion record) whose
    tree is not here (a fetch does not bring a deleted version's data), as nothing here
    can need a tree that is not here."""
    from remotes.config import TRACKING  # here: the remotes package is no import of `log`

    found: set[ObjectId] = set()
    elsewhere: set[ObjectId] = set()
    records = {}  # deletion ref -> the commit it releases
    for ref in repo.refs.names():
        tracked = ref.startswith(TRACKING + "/")
        commit_id = released_by(ref.split("/", 2)[2] if tracked else ref)
        if commit_id is not None:
            records[ref] = commit_id
    # Only the deletion refs are read (on a bucket, a request each), and only those set.
    for ref in repo.refs.read_many(list(records)):
        (elsewhere if ref.startswith(TRACKING + "/") else found).add(records[ref])
    store = repo.objects
    for commit_id in elsewhere - found:
        if store.has(commit_id):
            tree = store.get_commit(commit_id).tree
            if not store.has(tree) and not (store.fossils and store.fossils.has(tree)):
                found.add(commit_id)
    return found
