"""Saving a draft: build its tree, commit it as a version, merge distributed parts.

A ``Saver`` saves on behalf of one run: the versions it makes name that run, and
the run's record notes each new one. It knows drafts (artifacts.draft) and the
header of the version to make, not the ``Artifact`` class.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cas import Commit, ObjectId, ObjectStore, PackWriter, Tree
from cas.errors import InvalidObjectError, RefConflictError, UsageError
from cas.ingest import OnStored, store_files
from cas.objects import TreeEntry, canonical_packb

from . import annotations, trees, ttl
from .draft import Draft, Staged
from .errors import MergeConflictError
from .files import LocalFile, Reference
from .lineage import RunLog
from .names import validate_alias
from .ref_names import dist_prefix
from .registry import Registry, Version
from .snapshot import DirSource, build_tree
from .staleness import warn_changed
from .statcache import StatCache
from .version_refs import VersionFile, check_held


@dataclass(frozen=True)
class Header:
    """What a version says about itself besides its files."""

    name: str
    type: str
    description: str | None
    metadata: dict[str, Any]
    ttl: ttl.Policy

    @classmethod
    def of(cls, artifact: Any) -> Header:
        return cls(
            artifact.name,
            artifact.type,
            artifact.description,
            artifact.metadata,
            artifact.ttl_policy(),
        )


class Previous:
    """The version a new one follows, lazily found: the large blob each path held
    there, for :func:`cas.ingest.store_files`'s ``replaced``: a large file replacing
    one is stored as chunks, and the one it replaces too, so that the new version
    costs only the chunks it changed (docs/chunks.md)."""

    def __init__(self, registry: Registry, draft: Draft, name: str, entity: str, project: str):
        self._find = lambda: _previous_tree(registry, draft, entity, project, name)
        self._store = registry.objects
        self._tree: ObjectId | None | bool = False  # False: not looked for yet

    def blob_at(self, path: trees.Path) -> ObjectId | None:
        if self._tree is False:
            self._tree = self._find()
        threshold = self._store.changed_chunk_threshold
        if self._tree is None or threshold is None:
            return None
        entry = trees.lookup(self._store, self._tree, path)  # type: ignore[arg-type]
        if entry is None or entry.kind != "blob" or entry.size < threshold:
            return None
        return entry.id

    def under(self, prefix: trees.Path, root: str) -> Callable[[str], ObjectId | None]:
        """``blob_at`` for a file of a directory scanned at ``root``, staged at ``prefix``."""
        return lambda path: self.blob_at(prefix + tuple(os.path.relpath(path, root).split(os.sep)))


def _previous_tree(
    registry: Registry, draft: Draft, entity: str, project: str, name: str
) -> ObjectId | None:
    if draft.base is not None:
        return draft.base.tree
    head = registry.head(entity, project, name)
    return head.tree if head is not None else None


def build(
    registry: Registry,
    draft: Draft,
    base_tree: bytes | None,
    on_stored: OnStored | None = None,
    previous: Previous | None = None,
) -> tuple[bytes, int]:
    """Store the staged files and return (root tree id, size) of the result;
    ``on_stored(size)`` as files are stored (see :func:`cas.ingest.store_files`);
    ``previous``: the version this one follows, if any (see :class:`Previous`)."""
    store = registry.objects
    store.refresh_packs()
    # A directory staged whole can be built alone only where the base has nothing.
    for prefix, staged in list(draft.edits.items()):
        if isinstance(staged, DirSource) and base_tree is not None:
            if not prefix or trees.lookup(store, base_tree, prefix) is not None:
                draft.expand_dirs_at(prefix)
    dirs = {p: s for p, s in draft.edits.items() if isinstance(s, DirSource)}
    singles = {p: s for p, s in draft.edits.items() if not isinstance(s, DirSource)}
    local_files = [s for s in singles.values() if isinstance(s, LocalFile)]
    check_held(registry, (s for s in singles.values() if isinstance(s, VersionFile)))
    # For a handful of files, hashing them beats loading a cache of the whole tree.
    use_cache = dirs or len(local_files) >= 64
    cache = StatCache.for_store(registry.repo) if use_cache else StatCache(None)
    with cache:  # its next file is written as directories are built
        with store.writer() as writer:
            edits: dict[trees.Path, trees.Edit] = {}
            result = None
            for prefix, source in dirs.items():
                scan = source.scan
                replaced = previous.under(prefix, scan.path) if previous else None
                built = build_tree(
                    store, writer, scan, cache, on_stored, replaced, source.immutable
                )
                if built is None:
                    continue  # an empty directory adds nothing
                if not prefix:
                    base_tree, result = built[0], built  # the base had nothing: this is the root
                else:
                    edits[prefix] = TreeEntry(prefix[-1], "tree", built[0], built[1])
            singles_edits = _single_edits(store, writer, singles, cache, on_stored, previous)
            if edits or singles_edits or result is None:
                writer.flush()  # the new trees must be readable to edit below them
                if edits:
                    base_tree, _ = trees.apply_edits(store, writer, base_tree, edits)
                    writer.flush()
                result = trees.apply_edits(store, writer, base_tree, singles_edits)
        cache.save()
    return result


def _single_edits(
    store: ObjectStore,
    writer: PackWriter,
    singles: dict[trees.Path, Staged],
    cache: StatCache,
    on_stored: OnStored | None,
    previous: Previous | None,
) -> dict[trees.Path, trees.Edit]:
    """Edits for files added one by one, references and removals."""
    files = {p: s for p, s in singles.items() if isinstance(s, LocalFile)}
    cached = {p: cache.lookup(s) for p, s in files.items()}
    present = store.has_many({i for i in cached.values() if i is not None})
    misses = [(p, files[p]) for p, blob_id in cached.items() if blob_id not in present]
    hashed_ns = cache.now_ns()
    replaced = (lambda i: previous.blob_at(misses[i][0])) if previous else None
    warn_changed(
        (s.path, (s.size, s.mtime_ns, s.ctime_ns, s.inode)) for _, s in misses if not s.immutable
    )
    stored = store_files(store, [(s.path, s.size) for _, s in misses], on_stored, replaced)
    sizes = {}
    for (path, staged), (blob_id, size) in zip(misses, stored, strict=True):
        cached[path], sizes[path] = blob_id, size
        cache.record(staged, blob_id, hashed_ns)
    edits: dict[trees.Path, trees.Edit] = {}
    for path, staged in singles.items():
        if isinstance(staged, LocalFile):
            blob_id, size = cached[path], sizes.get(path, staged.size)
            assert blob_id is not None
            edits[path] = TreeEntry(path[-1], "blob", blob_id, size, staged.executable)
        elif isinstance(staged, Reference):
            desc = staged.descriptor
            blob_id = writer.add_blob(canonical_packb(desc))
            edits[path] = TreeEntry(path[-1], "ref", blob_id, desc["size"])
        elif isinstance(staged, VersionFile):  # as stored there: the same blob
            edits[path] = staged.named(path[-1])
        else:
            edits[path] = staged  # type: ignore[assignment]
    return edits


def _files_of(draft: Draft) -> int | None:
    """How many files the draft's version holds, where its staging alone says so: one
    directory logged whole (a first log), whose scan counted them; else None, and the
    registry counts them from the trees (for a large first log, every page again)."""
    if draft.base is None and list(draft.edits) == [()]:
        staged = draft.edits[()]
        if isinstance(staged, DirSource):
            return staged.scan.total_files
    return None


class Saver:
    """Makes versions from drafts for ``run``, in its registry."""

    def __init__(self, run: RunLog) -> None:
        self.run = run
        self.registry = run.registry

    def log(
        self,
        draft: Draft,
        header: Header,
        aliases: list[str],
        tags: list[str],
        on_stored: OnStored | None = None,
    ) -> Version:
        """The draft as the next version; identical content reuses the latest one."""
        if draft.registry is not None and draft.registry.repo.url != self.registry.repo.url:
            raise UsageError("this draft was made from a version in another store")
        base = draft.base.tree if draft.base else None
        previous = Previous(self.registry, draft, header.name, *self._namespace(draft))
        with self.registry.repo.writing():
            tree, size = build(self.registry, draft, base, on_stored, previous)
            return self._commit(draft, header, tree, size, aliases, tags, {}, _files_of(draft))

    def upsert(
        self,
        draft: Draft,
        header: Header,
        distributed_id: str,
        replace: bool,
        aliases: list[str] | None = None,
    ) -> None:
        """Add the draft's files, and ``aliases`` for the finished version, to this run's
        part of a distributed version; with ``replace``, make them the whole part (what
        a task run again needs: nothing of an earlier attempt's stays)."""
        entity, project = self._namespace(draft)
        ref = dist_prefix(entity, project, header.name, distributed_id) + self.run.id
        store = self.registry.objects

        def held(part: ObjectId) -> bool:
            """Does the latest version hold ``part``? Then a finisher died before
            deleting it, and this upsert starts the next version, without its files."""
            head = self.registry.head(entity, project, header.name)
            return _consumed_parts(head, distributed_id).get(self.run.id) == part.hex()

        def compute(old: ObjectId | None) -> ObjectId:
            base, kept = None, []
            if old is not None and not replace and not held(old):
                previous = store.get_commit(old)
                base, kept = previous.tree, _part_aliases(previous)
            tree, _ = build(self.registry, draft, base)
            wanted = list(dict.fromkeys(kept + list(aliases or [])))
            return store.put(_part_commit(tree, old, self.run.id, header.type, wanted))

        with self.registry.repo.writing():
            self.registry.repo.update_ref(ref, compute)

    def finish(
        self, draft: Draft, header: Header, distributed_id: str, aliases: list[str]
    ) -> Version:
        """Merge every run's part, and the draft's files, into one new version."""
        with self.registry.repo.writing():
            return self._finish(draft, header, distributed_id, aliases)

    def _namespace(self, draft: Draft) -> tuple[str, str]:
        base = draft.base
        return (base.entity, base.project) if base else (self.run.entity, self.run.project)

    def _commit(
        self,
        draft: Draft,
        header: Header,
        tree: ObjectId,
        size: int,
        aliases: list[str] | None,
        tags: list[str] | None,
        extra: dict[str, Any],
        files: int | None = None,
    ) -> Version:
        entity, project = self._namespace(draft)
        meta = {
            "description": header.description,
            "metadata": header.metadata,
            "run": self.run.id,
            "tags": list(tags or []),
            **ttl.commit_meta(header.ttl),
            **extra,
        }
        version, created = self.registry.log(
            entity,
            project,
            header.name,
            header.type,
            tree,
            size,
            meta,
            list(aliases or []),
            files=files,
        )
        if created:
            self.run.note_logged(version.commit_id.hex())
        elif set(tags or ()) - set(annotations.current(self.registry, version).tags):
            # no new version: its tags go to the one reused, as its aliases do
            annotations.update(self.registry, version, {"tags_add": list(tags)}, self.run.id)
        return version

    def _finish(self, draft: Draft, header: Header, did: str, aliases: list[str] | None) -> Version:
        entity, project = self._namespace(draft)
        prefix = dist_prefix(entity, project, header.name, did)
        store = self.registry.objects
        own, _ = build(self.registry, draft, None)
        head = self.registry.head(entity, project, header.name)
        consumed = _consumed_parts(head, did)
        listed = self.registry.refs.list(prefix)
        parts_refs = {
            name: commit_id
            for name, commit_id in listed.items()
            if commit_id.hex() != consumed.get(name[len(prefix) :])
        }
        # Parts the latest version holds, left behind by a finisher that died before
        # clearing them.
        stale = {name: c for name, c in listed.items() if name not in parts_refs}
        if (
            not parts_refs
            and head is not None
            and head.commit.meta.get("distributed_id") == did
            and draft.base is None
            and self._holds(head, own)
        ):
            # Finishing again (a retry after a crash, before or after the commit): the
            # version exists and holds our files; making one without the parts would
            # drop them from `latest`.
            self._clear_parts(stale)
            size = head.commit.meta["size"]
            return self._commit(draft, header, head.tree, size, aliases, None, {})
        if not parts_refs and draft.base is None and own == Tree(()).id:
            # A mistyped id, or a finish before any upsert: an empty `latest` would hide
            # the version before it.
            raise UsageError(
                f"no part of {header.name} was upserted under distributed_id {did!r} and "
                "this run adds no files: check the id, and finish after the upserts return"
            )
        part_commits = {name: store.get_commit(c) for name, c in sorted(parts_refs.items())}
        parts = [trees.Part(self.run.id, own)] + [
            trees.Part(name[len(prefix) :], commit.tree) for name, commit in part_commits.items()
        ]
        upserted = [alias for commit in part_commits.values() for alias in _part_aliases(commit)]
        aliases = list(dict.fromkeys([*(aliases or []), *upserted]))
        with store.writer() as writer:
            tree, size = trees.merge(store, writer, parts)
            if draft.base is not None:
                writer.flush()  # the merged trees must be readable to be walked
                tree, size = self._onto_base(draft, tree, writer)
        extra = {
            "distributed_id": did,
            "parts": {name[len(prefix) :]: c.hex() for name, c in parts_refs.items()},
        }
        logged = self._commit(draft, header, tree, size, aliases, None, extra)
        # The version holds every part now; an upsert after this starts the next one.
        self._clear_parts({**stale, **parts_refs})
        return logged

    def _clear_parts(self, parts: dict[str, ObjectId]) -> None:
        for name, commit_id in parts.items():
            try:
                self.registry.refs.delete_if_equals(name, commit_id)
            except RefConflictError:
                pass  # a part that changed meanwhile belongs to the next version

    def _holds(self, version: Version, tree: ObjectId) -> bool:
        """Does ``version`` already hold every file of ``tree``, unchanged?"""
        store = self.registry.objects
        with store.writer() as writer:
            try:
                parts = [trees.Part(self.run.id, tree), trees.Part("latest", version.tree)]
                merged, _ = trees.merge(store, writer, parts)
            except MergeConflictError:
                return False
        return merged == version.tree

    def _onto_base(
        self, draft: Draft, merged: ObjectId, writer: PackWriter
    ) -> tuple[ObjectId, int]:
        """A draft's base tree with the draft's removals, then every merged file, applied."""
        store = self.registry.objects
        edits = draft.removals()
        for path, entry in trees.walk(store, merged):
            edits[tuple(path.split("/"))] = entry
        assert draft.base is not None
        return trees.apply_edits(store, writer, draft.base.tree, edits)


def _part_commit(
    tree: ObjectId, parent: ObjectId | None, run_id: str, type: str, aliases: list[str]
) -> Commit:
    meta: dict[str, Any] = {"part_of_run": run_id, "type": type}
    if aliases:  # only then: a part without any reads as before
        meta["aliases"] = aliases
    return Commit(tree, (parent,) if parent else (), meta)


def _part_aliases(part: Commit) -> list[str]:
    """The aliases a part's upserts gave, checked (a store may be hostile)."""
    found = part.meta.get("aliases", [])
    if not isinstance(found, list) or not all(isinstance(a, str) for a in found):
        raise InvalidObjectError(f"a part's aliases are not a list of names: {found!r}")
    for alias in found:
        if alias != "latest":
            validate_alias(alias)
    return found


def _consumed_parts(head: Version | None, distributed_id: str) -> dict[str, str]:
    """Parts the latest version already holds (left behind if a finisher died)."""
    if head is None or head.commit.meta.get("distributed_id") != distributed_id:
        return {}
    return dict(head.commit.meta.get("parts") or {})
