"""Where the version a damaged ref named can be found again, once ``artifacts fsck
--repair`` has set the ref aside: said to the user, never set by guess (the ref's own
bytes are gone; another ref's word is a clue, not the value)."""

from __future__ import annotations

from collections.abc import Iterable

from cas import Commit, ObjectId, Repository
from cas.errors import CasError

from .ref_names import alias_ref, head_ref
from .registry import RunRecord

PROG = "artifacts"


def how_to_restore(repo: Repository, ref: str) -> str:
    """One sentence: how to give ``ref`` (set aside, so unset) its value again."""
    parts = ref.split("/")
    if len(parts) < 5 or parts[2] != "artifacts":
        return "it is unset now; what used it reads as if it had never been written"
    entity, project, _, name = parts[:4]
    label = f"{entity}/{project}/{name}"
    if ref == head_ref(entity, project, name):
        newest = _newest_named(repo, entity, project, name)
        if newest is None:
            return f"no other ref names a version of {label}: restore it from a copy of the store"
        commit_id, number = newest[0].hex(), newest[1]
        return (
            f"the newest version its other refs name is v{number} ({commit_id}), runs' "
            f"records included: if it is {label}'s newest, restore it with "
            f"`{PROG} fsck --restore {ref}={commit_id}`"
        )
    if len(parts) == 6 and ref == alias_ref(entity, project, name, parts[5]):
        return f"give the alias again: `{PROG} alias add {label}:VERSION {parts[5]}`"
    return "it is unset now; what used it reads as if it had never been written"


def _newest_named(
    repo: Repository, entity: str, project: str, name: str
) -> tuple[ObjectId, int] | None:
    """(commit id, number) of the newest version of the artifact that its other refs
    name (aliases point at versions, annotation and deletion records are named by them)
    or its project's runs logged; None if none does, or two differ at the top number."""
    prefix = f"{entity}/{project}/artifacts/{name}/"
    named = set(repo.refs.list(prefix + "aliases/").values())
    for kind in ("annotations/", "deleted/"):
        named.update(_ids(ref.rpartition("/")[2] for ref in repo.refs.names(prefix + kind)))
    for record_id in repo.refs.list(f"{entity}/{project}/runs/").values():
        try:
            named.update(_ids(RunRecord.from_bytes(repo.objects.read_blob(record_id)).logged))
        except (CasError, ValueError, TypeError, KeyError):
            continue  # a damaged record: fsck says so
    versions: dict[ObjectId, int] = {}  # commit id -> version number
    for commit_id in named:
        try:
            commit = repo.objects.get(commit_id, "commit")
        except CasError:
            continue
        meta = commit.meta if isinstance(commit, Commit) else {}
        if (meta.get("entity"), meta.get("project"), meta.get("artifact")) != (
            entity,
            project,
            name,
        ):
            continue  # a run's version of another artifact
        if isinstance(meta.get("version"), int):
            versions[commit_id] = meta["version"]
    top = max(versions.values(), default=None)
    newest = [(i, n) for i, n in versions.items() if n == top]
    return newest[0] if len(newest) == 1 else None


def _ids(texts: Iterable[str]) -> set[ObjectId]:
    found = set()
    for text in texts:
        try:
            found.add(bytes.fromhex(text))
        except (ValueError, TypeError):
            continue
    return found
