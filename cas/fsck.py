"""fsck: read and verify every object reachable from every ref."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from . import keys, pages
from .errors import CasError, CorruptObjectError, InvalidObjectError, NotFoundError
from .objects import TREE_KINDS, Commit, ObjectId, Tree, TreeEntry
from .packs import LOOSE_THRESHOLD
from .refs import LEGACY_LOCKS
from .repo import Repository
from .store import ObjectStore


@dataclass
class FsckProblem:
    problem: str  # "missing", "corrupt" or "invalid"
    object_id: str  # hex; the ref's name for a ref that cannot be read
    kind: str | None  # what the referrer expected, when it says
    ref: str  # a ref it was reached from
    message: str
    where: str = ""  # for a corrupt object: the key holding the copy that is read
    # For a chunk of large files (docs/format.md, 4.2): the paths of the files using it.
    used_by: list[str] = field(default_factory=list)


@dataclass
class FsckReport:
    refs: int = 0
    objects: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    problems: list[FsckProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


def fsck(
    repo: Repository,
    on_object: Callable[[], None] | None = None,
    released: Collection[ObjectId] = frozenset(),
) -> FsckReport:
    """Read and verify every object reachable from every ref but locks, blobs included.

    A ``released`` commit's tree is not followed (:func:`cas.walk.reachable`): it
    may be gone. Without the set, such a tree is reported missing, at worst.

    A damaged pack index, set aside by the store, is reported by its pack's name.

    Like :func:`cas.walk.reachable`, but a missing or damaged object is
    recorded and the walk goes on, so one bad object does not hide others
    (the objects only a damaged tree or commit reaches are checked once it is
    repaired: :func:`cas.repair.repair` runs fsck until nothing new is found).
    A missing or damaged chunk of a file stored as chunks is reported as itself,
    with the paths of the files found using it.
    """
    store = repo.objects
    report = FsckReport()
    seen: set[ObjectId] = set()
    page_of: dict[ObjectId, tuple[TreeEntry, str | None]] = {}  # a page: what names it, where
    sink: Any = _Discard()  # copy_blob_to verifies as it streams; the bytes are not needed
    for name, problem in sorted(store.refresh_packs(whole=True).items()):
        where = keys.index_key(name)  # its objects are read elsewhere, or reported missing
        report.problems.append(FsckProblem("invalid", name, "pack index", "", problem, where))
    path_of: dict[ObjectId, str] = {}  # of trees and files, as first reached
    chunk_problems: dict[ObjectId, FsckProblem] = {}
    for ref in sorted(repo.refs.names("")):
        if ref.startswith(LEGACY_LOCKS):
            continue  # an older version's lock: no data
        try:
            target = repo.refs.read(ref)
        except CasError as exc:
            report.problems.append(FsckProblem("invalid", ref, "ref", ref, str(exc)))
            continue
        if target is None:
            continue  # a deleted ref's tombstone
        report.refs += 1
        stack: list[tuple[ObjectId, str | None]] = [(target, None)]
        while stack:
            object_id, kind = stack.pop()
            if object_id in seen:
                continue
            seen.add(object_id)
            report.objects += 1
            if on_object is not None:
                on_object()
            try:
                if kind == "blob":
                    report.blob_bytes += store.copy_blob_to(object_id, sink)
                    report.blobs += 1
                    continue
                obj = store.get(object_id, kind)
                if isinstance(obj, Tree):  # checked where it stands, as readers do
                    pages.check(object_id, obj, page_of.get(object_id))
            except (NotFoundError, CorruptObjectError) as exc:
                problem_kind = "missing" if isinstance(exc, NotFoundError) else "corrupt"
                bad = getattr(exc, "object_id", object_id)
                if bad != object_id:  # a chunk of this file
                    if bad not in chunk_problems:
                        chunk_problems[bad] = _problem(problem_kind, bad, "blob", ref, exc)
                        report.problems.append(chunk_problems[bad])
                        _locate(store, chunk_problems[bad])
                    chunk_problems[bad].used_by.append(path_of.get(object_id, object_id.hex()))
                    continue
                problem = _problem(problem_kind, object_id, kind, ref, exc)
                if problem_kind == "corrupt":
                    _locate(store, problem)
                report.problems.append(problem)
                continue
            except InvalidObjectError as exc:
                report.problems.append(_problem("invalid", object_id, kind, ref, exc))
                continue
            if isinstance(obj, Commit):
                if object_id not in released:
                    stack.append((obj.tree, "tree"))
                stack.extend((p, "commit") for p in obj.parents)
            elif isinstance(obj, Tree):
                if pages.height_of(obj):
                    upper = page_of[object_id][1] if object_id in page_of else None
                    page_of.update((e.id, (e, end)) for e, end in pages.page_ranges(obj, upper))
                for entry in obj.entries:
                    stack.append((entry.id, "tree" if entry.kind in TREE_KINDS else "blob"))
                    if entry.kind in TREE_KINDS or entry.size >= LOOSE_THRESHOLD:
                        above = path_of.get(object_id)
                        name = entry.name if entry.kind != "page" else None
                        path_of.setdefault(entry.id, "/".join(p for p in (above, name) if p))
            else:
                report.blobs += 1
                report.blob_bytes += len(obj.data)
    return report


def _locate(store: ObjectStore, problem: FsckProblem) -> None:
    """Name the key holding the copy of a corrupt object that is read."""
    object_id = bytes.fromhex(problem.object_id)
    pack = store.pack_of(object_id)
    problem.where = (keys.pack_key(pack) if pack else store.loose_location(object_id)) or ""


def _problem(
    problem: str, object_id: ObjectId, kind: str | None, ref: str, exc: Exception
) -> FsckProblem:
    return FsckProblem(problem, object_id.hex(), kind, ref, str(exc))
