"""``Artifact``: a draft you add files to, then a logged version you read from.

An artifact is *open* (a draft) until a run logs it; then it is *logged* and
read-only, and ``new_draft()`` starts the next change. A draft records edits
(files to add, paths to remove) against its base version; logging applies
them to the base tree, so only the touched subtrees are rewritten and
untouched files are never read, hashed or uploaded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from cas import ObjectStore, PackWriter
from cas.errors import UsageError
from cas.ingest import OnStored, store_files
from cas.objects import TreeEntry, canonical_packb

from . import references, trees
from .errors import ArtifactNotFoundError, ArtifactStateError, DuplicateEntryError
from .files import (
    Entry,
    LocalFile,
    Reference,
    blob_id_of_file,
    check_destinations,
    remove_others,
    stage_file,
    verify_dir,
    write_files,
)
from .metadata import normalize_metadata
from .names import split_path, validate_artifact_name
from .registry import Registry, RunRecord, Version
from .scan import DirScan, scan_tree
from .snapshot import DirSource, build_tree
from .statcache import StatCache

if TYPE_CHECKING:
    pass

Staged = LocalFile | Reference | trees._Remove | DirSource


def _overlaps(path: trees.Path, staged: Staged, prefix: trees.Path, scan: DirScan | None) -> bool:
    """Does the edit (path, staged) touch anything the directory at ``prefix`` would?

    ``scan`` is that directory's scan, or None to ask about the path ``prefix``
    alone (a file added or removed there).
    """
    if isinstance(staged, DirSource):
        if scan is not None:  # two directories: only side by side are they simple
            n = min(len(path), len(prefix))
            return path[:n] == prefix[:n]
        path, prefix, scan = prefix, path, staged.scan
    if scan is None:
        return path == prefix
    if prefix[: len(path)] == path:
        return True  # the edit is at or above the directory
    return path[: len(prefix)] == prefix and scan.find(path[len(prefix) :])


class Artifact:
    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        **_ignored: Any,  # W&B options with no meaning here (incremental, use_as)
    ) -> None:
        self.name = validate_artifact_name(name)
        if not isinstance(type, str) or not type:
            raise UsageError("an artifact needs a non-empty type")
        self.type = type
        self.description = description
        self.metadata = metadata  # the setter converts it
        self._edits: dict[trees.Path, Staged] = {}
        self._base: Version | None = None  # the version a draft was made from
        self._registry: Registry | None = None
        self._logged: Version | None = None
        self._tmpdir: str | None = None

    def __repr__(self) -> str:
        state = f"{self._logged.name}:v{self._logged.number}" if self._logged else "draft"
        return f"<Artifact {self.name} ({self.type}) {state}>"

    @property
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    @metadata.setter
    def metadata(self, metadata: dict[str, Any] | None) -> None:
        """Converted now (numpy values, dates…), or refused: see artifacts.metadata."""
        self._metadata = normalize_metadata(metadata)

    # ---- building a draft ---------------------------------------------

    def _check_open(self) -> None:
        if self._logged is not None:
            raise ArtifactStateError(
                f"{self.qualified_name} is logged and cannot change; use new_draft() to edit it"
            )

    def _check_loggable(self) -> None:
        """Refuse, before any file is stored, what the version's refs could not hold."""
        self._check_open()
        validate_artifact_name(self.name)  # the attribute may have changed since __init__
        self.metadata = self._metadata  # and the dict may have been changed in place

    def is_draft(self) -> bool:
        return self._logged is None

    def add_file(
        self,
        local_path: str,
        name: str | None = None,
        is_tmp: bool = False,
        skip_cache: bool | None = None,
        policy: str | None = None,
        overwrite: bool = False,
    ) -> Entry:
        self._check_open()
        staged = stage_file(local_path)
        path = split_path(name if name is not None else os.path.basename(local_path))
        self._stage(path, staged, overwrite)
        return Entry("/".join(path), "", staged.size, staged.executable)

    def add_dir(
        self,
        local_path: str,
        name: str | None = None,
        skip_cache: bool | None = None,
        policy: str | None = None,
        merge: bool = False,
    ) -> None:
        self._check_open()
        prefix = split_path(name.strip("/")) if name and name.strip("/") else ()
        scan = scan_tree(local_path)
        if any(_overlaps(path, staged, prefix, scan) for path, staged in self._edits.items()):
            for rel, staged in scan.iter_files():  # file by file, as the edits demand
                self._stage(prefix + rel, staged, overwrite=merge)
        else:  # staged whole: logged directory by directory (see artifacts.snapshot)
            self._edits[prefix] = DirSource(scan)

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[Entry]:
        """One entry per object: a directory or bucket prefix adds each object below it
        (refused past ``max_objects``, default 10 million), named by its path there."""
        self._check_open()
        prefix = split_path(name.strip("/")) if name and name.strip("/") else ()
        staged = []
        for rel, descriptor in references.expand(uri, checksum, max_objects):
            if rel:
                path = prefix + split_path(rel)
            else:
                path = split_path(name or uri.split("://", 1)[1].rstrip("/").rsplit("/", 1)[-1])
            staged.append((path, descriptor))
        entries = []
        for path, descriptor in staged:  # every name is valid before any is staged
            self._stage(path, Reference(descriptor), overwrite=False)
            digest, size = descriptor["digest"], descriptor["size"]
            entries.append(Entry("/".join(path), digest, size, ref=descriptor["uri"]))
        return entries

    @contextmanager
    def new_file(self, name: str, mode: str = "x", encoding: str | None = None) -> Iterator[IO]:
        """Write a file straight into the draft: ``with a.new_file("x.txt") as f``."""
        self._check_open()
        path = split_path(name)
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="artifact-")
        # A fresh directory per call: writing a second file of the same name must not
        # overwrite the first behind _stage's back (it refuses different contents).
        local = os.path.join(tempfile.mkdtemp(dir=self._tmpdir), *path)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        open_mode = "w" + ("b" if "b" in mode else "")
        with open(local, open_mode, encoding=None if "b" in mode else (encoding or "utf-8")) as f:
            yield f
        self._stage(path, stage_file(local), overwrite=False)

    def remove(self, item: str | Entry) -> None:
        """Remove a file, or a directory with everything below it."""
        self._check_open()
        target = item.path if isinstance(item, Entry) else item
        path = split_path(target.rstrip("/"))
        self._expand_dirs_at(path)
        n = len(path)
        dropped = [p for p in self._edits if p[:n] == path]
        for p in dropped:
            del self._edits[p]
        registry = self._registry
        in_base = (
            self._base is not None
            and registry is not None
            and trees.lookup(registry.objects, self._base.tree, path) is not None
        )
        if in_base:
            self._edits[path] = trees.REMOVE
        elif not dropped or all(s is trees.REMOVE for s in map(self._edits.get, dropped)):
            raise ArtifactNotFoundError(f"cannot remove {target!r}: no such file or directory")

    def _stage(self, path: trees.Path, staged: LocalFile | Reference, overwrite: bool) -> None:
        self._expand_dirs_at(path)
        old = self._edits.get(path)
        if isinstance(old, LocalFile) and isinstance(staged, LocalFile) and not overwrite:
            same_file = old.path == staged.path
            if not same_file and blob_id_of_file(old.path) != blob_id_of_file(staged.path):
                raise DuplicateEntryError("/".join(path))
        elif isinstance(old, Reference) and not overwrite and old != staged:
            raise DuplicateEntryError("/".join(path))
        self._edits.pop(path, None)  # re-insert: the newest edit comes last
        self._edits[path] = staged

    def _expand_dirs_at(self, path: trees.Path) -> None:
        """Turn staged directories that hold something at ``path`` into single files."""
        for prefix, staged in list(self._edits.items()):
            if isinstance(staged, DirSource) and _overlaps(prefix, staged, path, None):
                del self._edits[prefix]
                for rel, f in staged.scan.iter_files():
                    self._edits[prefix + rel] = f

    def _build(
        self, registry: Registry, base_tree: bytes | None, on_stored: OnStored | None = None
    ) -> tuple[bytes, int]:
        """Store the staged files and return (root tree id, size) of the result;
        ``on_stored(size)`` as files are stored (see :func:`cas.ingest.store_files`)."""
        store = registry.objects
        store.refresh_packs()
        # A directory staged whole can be built alone only where the base has nothing.
        for prefix, staged in list(self._edits.items()):
            if isinstance(staged, DirSource) and base_tree is not None:
                if not prefix or trees.lookup(store, base_tree, prefix) is not None:
                    self._expand_dirs_at(prefix)
        dirs = {p: s.scan for p, s in self._edits.items() if isinstance(s, DirSource)}
        singles = {p: s for p, s in self._edits.items() if not isinstance(s, DirSource)}
        local_files = [s for s in singles.values() if isinstance(s, LocalFile)]
        # For a handful of files, hashing them beats loading a cache of the whole tree.
        use_cache = dirs or len(local_files) >= 64
        cache = StatCache.for_store(registry.repo) if use_cache else StatCache(None)
        with store.writer() as writer:
            edits: dict[trees.Path, trees.Edit] = {}
            result = None
            for prefix, scan in dirs.items():
                built = build_tree(store, writer, scan, cache, on_stored)
                if built is None:
                    continue  # an empty directory adds nothing
                if not prefix:
                    base_tree, result = built[0], built  # the base had nothing: this is the root
                else:
                    edits[prefix] = TreeEntry(prefix[-1], "tree", built[0], built[1])
            singles_edits = self._single_edits(store, writer, singles, cache, on_stored)
            if edits or singles_edits or result is None:
                writer.flush()  # the new trees must be readable to edit below them
                if edits:
                    base_tree, _ = trees.apply_edits(store, writer, base_tree, edits)
                    writer.flush()
                result = trees.apply_edits(store, writer, base_tree, singles_edits)
        cache.save()
        return result

    def _single_edits(
        self,
        store: ObjectStore,
        writer: PackWriter,
        singles: dict[trees.Path, Staged],
        cache: StatCache,
        on_stored: OnStored | None,
    ) -> dict[trees.Path, trees.Edit]:
        """Edits for files added one by one, references and removals."""
        files = {p: s for p, s in singles.items() if isinstance(s, LocalFile)}
        cached = {p: cache.lookup(s) for p, s in files.items()}
        present = store.has_many({i for i in cached.values() if i is not None})
        misses = [(p, files[p]) for p, blob_id in cached.items() if blob_id not in present]
        hashed_ns = cache.now_ns()
        stored = store_files(store, [(s.path, s.size) for _, s in misses], on_stored)
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
            else:
                edits[path] = staged  # type: ignore[assignment]
        return edits

    def _cleanup(self) -> None:
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    # ---- after logging -------------------------------------------------

    def _bind(self, registry: Registry, version: Version) -> None:
        self._registry, self._logged, self._base = registry, version, None
        self._edits = {}
        self.name = version.name
        self.type = version.type
        self.description = version.commit.meta.get("description")
        self._metadata = dict(version.commit.meta.get("metadata") or {})  # as stored
        self._cleanup()

    @classmethod
    def _from_version(cls, registry: Registry, version: Version) -> Artifact:
        artifact = cls(version.name, version.type)
        artifact._bind(registry, version)
        return artifact

    def _version(self) -> tuple[Registry, Version]:
        if self._logged is None or self._registry is None:
            raise ArtifactStateError(f"artifact {self.name!r} is a draft: log it first")
        return self._registry, self._logged

    def wait(self, timeout: float | None = None) -> Artifact:
        return self

    @property
    def version(self) -> str:
        return f"v{self._version()[1].number}"

    @property
    def entity(self) -> str:
        return self._version()[1].entity

    @property
    def project(self) -> str:
        return self._version()[1].project

    @property
    def qualified_name(self) -> str:
        if self._logged is None:
            return self.name
        v = self._logged
        return f"{v.entity}/{v.project}/{v.name}:v{v.number}"

    @property
    def source_name(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def id(self) -> str:
        return self._version()[1].commit_id.hex()

    @property
    def digest(self) -> str:
        return self._version()[1].tree.hex()

    @property
    def size(self) -> int:
        return self._version()[1].commit.meta["size"]

    @property
    def created_at(self) -> int:
        return self._version()[1].commit.meta["time"]

    @property
    def tags(self) -> list[str]:
        return list(self._version()[1].commit.meta.get("tags") or [])

    @property
    def aliases(self) -> list[str]:
        registry, version = self._version()
        return registry.aliases(version)

    @property
    def manifest(self) -> Manifest:
        registry, version = self._version()
        return Manifest(registry.objects, version.tree)

    def files(self) -> list[Entry]:
        return list(self.manifest.entries.values())

    def get_entry(self, name: str) -> Entry:
        registry, version = self._version()
        entry = trees.lookup(registry.objects, version.tree, split_path(name))
        if entry is None or entry.kind == "tree":
            raise ArtifactNotFoundError(f"{self.qualified_name} has no file {name!r}")
        return Entry.from_tree_entry(registry.objects, name, entry)

    def _files(self, path_prefix: str | None = None) -> list[tuple[str, TreeEntry]]:
        """Every file whose path starts with ``path_prefix`` (a plain string prefix, as in
        W&B: "d" matches "d/x" and "dd"), reading only the trees the prefix reaches."""
        registry, version = self._version()
        store, root = registry.objects, version.tree
        if not path_prefix:
            return list(trees.walk(store, root))
        *dirs, last = path_prefix.split("/")
        if dirs:
            parent = trees.lookup(store, root, tuple(dirs))
            if parent is None or parent.kind != "tree":
                return []
            root = parent.id
        found: list[tuple[str, TreeEntry]] = []
        for entry in store.get_tree(root).entries:
            if entry.name.startswith(last):
                path = (*dirs, entry.name)
                if entry.kind == "tree":
                    found.extend(trees.walk(store, entry.id, path))
                else:
                    found.append(("/".join(path), entry))
        return found

    def default_root(self) -> str:
        return os.path.join(".", "artifacts", f"{self.name}:{self.version}")

    def download(self, root: str | None = None, path_prefix: str | None = None, **_: Any) -> str:
        registry, _version = self._version()
        root = root or self.default_root()
        write_files(registry.objects, root, self._files(path_prefix))
        return root

    def checkout(
        self,
        root: str | None = None,
        on_written: Callable[[int], object] | None = None,
        on_removed: Callable[[str], object] | None = None,
    ) -> str:
        """Make ``root`` hold exactly this version: delete extra files, then download.

        Deleting first clears a file (or a symlink) standing where the version has a
        directory, and empties a directory standing where it has a file. A store in
        ``root`` is never touched: a version that would write into one is refused before
        anything is deleted. ``on_written(size)`` is called as each file is written,
        ``on_removed(path)`` as each other file (or link) is deleted.
        """
        registry, _version = self._version()
        root = root or self.default_root()
        files = self._files()
        check_destinations(root, files, links_removed=True)
        remove_others(root, files, on_removed)
        write_files(registry.objects, root, files, on_written=on_written)
        return root

    def verify(self, root: str | None = None) -> None:
        registry, _ = self._version()
        verify_dir(registry.objects, root or self.default_root(), self._files())

    def logged_by(self) -> RunRecord | None:
        registry, version = self._version()
        run_id = version.commit.meta.get("run")
        return registry.find_run(run_id, version.entity, version.project) if run_id else None

    def used_by(self) -> list[RunRecord]:
        registry, version = self._version()
        wanted = version.commit_id.hex()
        # Any project's run may use this version ("team/proj/name:v0"): look at them all.
        return [r for r in registry.all_runs() if wanted in r.used]

    def new_draft(self) -> Artifact:
        registry, version = self._version()
        draft = Artifact(version.name, version.type, self.description)
        # As stored: a version of an older store may hold metadata no longer accepted
        # (bytes that are not UTF-8); that must not stop a draft, only its logging.
        draft._metadata = dict(self.metadata)
        draft._registry, draft._base = registry, version
        return draft

    def save(self, project: str | None = None, settings: Any = None) -> Artifact:
        """Log this artifact: through the active run, or a short one of its own."""
        from . import run as run_module

        active = run_module.current_run()
        if active is not None:
            return active.log_artifact(self)
        # A draft of a logged version goes back to that version's store.
        store = self._registry.repo.url if self._registry is not None else None
        with run_module.init(project=project, job_type="auto", store=store) as run:
            return run.log_artifact(self)

    def delete(self) -> None:
        raise UsageError("versions are immutable; remove aliases instead, and let gc reclaim space")

    # ---- for tools built on the library (the CLI) ----------------------
    # Named apart from W&B's Artifact API, which may give its own names other meanings.

    @classmethod
    def from_version(cls, registry: Registry, version: Version) -> Artifact:
        """The logged ``version`` (from ``registry.resolve``), read-only."""
        return cls._from_version(registry, version)

    def iter_entries(self, path_prefix: str | None = None) -> list[tuple[str, TreeEntry]]:
        """(path, tree entry) of every file whose path starts with ``path_prefix``."""
        return self._files(path_prefix)

    def staged_bytes(self) -> int:
        """Bytes of the local files staged in this draft: at most what logging will read."""
        return sum(
            s.size if isinstance(s, LocalFile) else s.scan.total_size
            for s in self._edits.values()
            if isinstance(s, LocalFile | DirSource)
        )


class Manifest:
    """Every file of a version: ``manifest.entries[path]`` is an :class:`Entry`."""

    def __init__(self, store: ObjectStore, tree: bytes) -> None:
        self._store = store
        self._tree = tree
        self._entries: dict[str, Entry] | None = None

    @property
    def entries(self) -> dict[str, Entry]:
        if self._entries is None:
            self._entries = {
                path: Entry.from_tree_entry(self._store, path, entry)
                for path, entry in trees.walk(self._store, self._tree)
            }
        return self._entries

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)
