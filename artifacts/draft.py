"""A draft's staged edits: what logging will apply to the base version's tree.

Files are staged by path, directories whole (see artifacts.snapshot) as long as no
other edit touches them, references as their descriptors, and removals as
``trees.REMOVE``. The newest edit of a path comes last.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from cas import ObjectId
from cas.errors import UsageError
from cas.objects import Blob, Object, TreeEntry, canonical_packb, object_id

from . import trees
from .errors import DuplicateEntryError, PathNotFoundError
from .files import LocalFile, Reference, blob_id_of_file, stage_file
from .references import unchecked
from .registry import Registry, Version
from .scan import DirScan
from .snapshot import DirSource
from .version_refs import VersionFile

StagedFile = LocalFile | Reference | VersionFile
# new_file's modes: one of x, w, a (r has no file to read), each letter once
_MODE = re.compile(r"(?=[^xwa]*[xwa][^xwa]*$)[xwabt+]+")
Staged = StagedFile | trees.Removal | DirSource


def overlaps(path: trees.Path, staged: Staged, prefix: trees.Path, scan: DirScan | None) -> bool:
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


class Draft:
    """The edits staged against ``base`` (a version of ``registry``), or against nothing."""

    def __init__(self, base: Version | None = None, registry: Registry | None = None) -> None:
        self.edits: dict[trees.Path, Staged] = {}
        self.base = base
        self.registry = registry
        self._tmpdir: str | None = None  # files written by new_file
        self._written: dict[trees.Path, str] = {}  # the last file new_file wrote at a path

    def stage(
        self,
        path: trees.Path,
        staged: StagedFile,
        overwrite: bool,
        fix: str = "pass overwrite=True to replace it",
    ) -> None:
        """Stage a file or reference at ``path``; unless ``overwrite``, refused (saying
        ``fix``) if something else is staged there, as W&B's manifest refuses another
        digest whatever the kinds."""
        self.expand_dirs_at(path)
        old = self.edits.get(path)
        if isinstance(old, StagedFile) and not overwrite and not _same(old, staged):
            raise DuplicateEntryError("/".join(path), fix)
        self.edits.pop(path, None)  # re-insert: the newest edit comes last
        self.edits[path] = staged

    def stage_dir(self, prefix: trees.Path, source: DirSource, merge: bool) -> None:
        """Stage a scanned directory at ``prefix``: whole, unless other edits touch it."""
        scan = source.scan
        if any(overlaps(path, staged, prefix, scan) for path, staged in self.edits.items()):
            for rel, staged in source.files():  # file by file, as the edits demand
                self.stage(prefix + rel, staged, merge, "pass merge=True to replace it")
        else:  # staged whole: logged directory by directory (see artifacts.snapshot)
            self.edits[prefix] = source

    def remove(self, path: trees.Path, target: str) -> None:
        """Unstage everything at or below ``path``, and remove it from the base if there."""
        self.expand_dirs_at(path)
        n = len(path)
        dropped = [p for p in self.edits if p[:n] == path]
        for p in dropped:
            del self.edits[p]
        in_base = (
            self.base is not None
            and self.registry is not None
            and trees.lookup(self.registry.objects, self.base.tree, path) is not None
        )
        if in_base:
            self.edits[path] = trees.REMOVE
        elif not dropped or all(s is trees.REMOVE for s in map(self.edits.get, dropped)):
            raise PathNotFoundError(f"cannot remove {target!r}: no such file or directory")

    @contextmanager
    def new_file(self, path: trees.Path, mode: str, encoding: str | None) -> Iterator[IO]:
        """new_file's file for ``path``, staged once written. As W&B's, which keeps one
        temporary file per name: mode "a" appends to what new_file last wrote at
        ``path`` in this draft (else starts empty), and a mode without "x" replaces a
        different file staged there. Any other mode writes a fresh file; "a" appends in
        place (a copy each time made N appends copy, and keep, N²/2 writes' bytes), and
        a failed block puts the file back as it was (see :class:`_Restorable`), so that
        neither a second file of the same name nor a failed block changes the file
        staged."""
        if not _MODE.fullmatch(mode) or len(set(mode)) != len(mode) or {"b", "t"} <= set(mode):
            raise UsageError(
                "new_file's mode is 'x', 'w' or 'a', with 'b' for bytes and '+' to read "
                f"too, not {mode!r}"
            )
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="artifact-")
        local = self._written.get(path) if "a" in mode else None
        if local is None:
            local = os.path.join(tempfile.mkdtemp(dir=self._tmpdir), *path)
            os.makedirs(os.path.dirname(local), exist_ok=True)
        raw = _Restorable(local, ("a" if "a" in mode else "w") + ("+" if "+" in mode else ""))
        try:
            buffered = io.BufferedRandom(raw) if "+" in mode else io.BufferedWriter(raw)
            f: IO = buffered
            if "b" not in mode:
                f = io.TextIOWrapper(buffered, encoding or "utf-8")
                f.mode = mode  # type: ignore[misc]  # as open() says it
            with f:
                yield f
            fix = "open it with mode='w' to replace it, or mode='a' to append to it"
            self.stage(path, stage_file(local, immutable=True), "x" not in mode, fix)
        except BaseException:
            raw.restore()
            raise
        finally:
            raw.close()
            raw.drop_copy()
        self._written[path] = local

    def expand_dirs_at(self, path: trees.Path) -> None:
        """Turn staged directories that hold something at ``path`` into single files."""
        for prefix, staged in list(self.edits.items()):
            if isinstance(staged, DirSource) and overlaps(prefix, staged, path, None):
                del self.edits[prefix]
                for rel, f in staged.files():
                    self.edits[prefix + rel] = f

    def staged_bytes(self) -> int:
        """Bytes of the local files staged: at most what logging will read."""
        return sum(
            s.size if isinstance(s, LocalFile) else s.scan.total_size
            for s in self.edits.values()
            if isinstance(s, LocalFile | DirSource)
        )

    def tree_id(self) -> ObjectId:
        """The root tree id logging this draft would make (its digest), computed without
        storing anything: each staged file is hashed, the base's trees are read."""
        edits: dict[trees.Path, trees.Edit] = {}
        for path, staged in self.edits.items():
            if isinstance(staged, DirSource):
                for rel, file in staged.scan.iter_files():
                    edits[path + rel] = _leaf(path + rel, file)
            else:
                edits[path] = staged if staged is trees.REMOVE else _leaf(path, staged)
        store = self.registry.objects if self.registry else None
        base = self.base.tree if self.base else None
        return trees.apply_edits(store, _IdsOnly(), base, edits)[0]  # type: ignore[arg-type]

    def removals(self) -> dict[trees.Path, trees.Edit]:
        """The paths of the base this draft removes."""
        return {p: e for p, e in self.edits.items() if e is trees.REMOVE}

    def cleanup(self) -> None:
        """Delete the files new_file wrote: once logged, the store holds them."""
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            self._written.clear()


class _Restorable(io.FileIO):
    """The file of one new_file block, put back by ``restore()`` as it was before: cut
    back to its length then (appends are all mode "a" allows), or, if the block
    truncated it shorter (which mode "a" allows too), first replaced by the copy of
    its bytes made at that truncate, the one time its earlier bytes are copied."""

    def __init__(self, path: str, mode: str) -> None:
        super().__init__(path, mode)
        self.before = os.fstat(self.fileno()).st_size
        self.copy: str | None = None

    def truncate(self, size: int | None = None) -> int:
        if self.copy is None and (self.tell() if size is None else size) < self.before:
            fd, self.copy = tempfile.mkstemp(dir=os.path.dirname(self.name))
            os.close(fd)
            shutil.copyfile(self.name, self.copy)
        return super().truncate(size)

    def restore(self) -> None:
        if self.copy is not None:
            os.replace(self.copy, self.name)
            self.copy = None
        os.truncate(self.name, self.before)

    def drop_copy(self) -> None:
        if self.copy is not None:
            os.unlink(self.copy)


def _same(old: StagedFile, new: StagedFile) -> bool:
    """Is ``new`` what ``old`` is (W&B's test: the same digest)? The same local file,
    or the same bytes by their blob id (a file, a file of a version, a checked
    ``file://`` reference), or the same reference. A bucket's or an http(s) server's
    digest says nothing of a blob id, and an unchecked reference's bytes are not
    known until fetched: such a reference is the same only as itself."""
    if isinstance(old, LocalFile) and isinstance(new, LocalFile) and old.path == new.path:
        return True
    return not _identities(old).isdisjoint(_identities(new))


def _identities(staged: StagedFile) -> set[tuple[str, bytes]]:
    """What a staged file is known to be: its tree entry's kind and id, and for a
    checked local reference its bytes' blob id (the digest it records)."""
    if isinstance(staged, LocalFile):
        return {("blob", blob_id_of_file(staged.path))}
    if isinstance(staged, VersionFile):
        return {(staged.entry.kind, staged.entry.id)}
    assert isinstance(staged, Reference)
    descriptor = staged.descriptor
    found = {("ref", _descriptor_id(descriptor))}
    if descriptor["uri"].startswith("file://") and not unchecked(descriptor):
        found.add(("blob", bytes.fromhex(descriptor["digest"])))
    return found


def _leaf(path: trees.Path, staged: Staged) -> TreeEntry:
    """The tree entry logging would make of a staged file or reference."""
    if isinstance(staged, Reference):
        descriptor = staged.descriptor
        return TreeEntry(path[-1], "ref", _descriptor_id(descriptor), descriptor["size"])
    if isinstance(staged, VersionFile):
        return staged.named(path[-1])
    assert isinstance(staged, LocalFile)
    return TreeEntry(path[-1], "blob", blob_id_of_file(staged.path), staged.size, staged.executable)


def _descriptor_id(descriptor: dict) -> ObjectId:
    """The id of a reference's blob: its descriptor's canonical bytes."""
    return object_id(Blob(canonical_packb(descriptor)).to_bytes())


class _IdsOnly:
    """A pack writer that names the objects it is given and keeps none of them."""

    def add(self, obj: Object) -> ObjectId:
        return object_id(obj.to_bytes())
