"""The files of a logged version: its manifest, its entries, and writing them out.

``VersionFiles`` is a part of ``Artifact`` (artifacts.artifact), kept apart to keep that
module short. It relies on what ``Artifact`` defines: ``_version()`` (the registry and
the version, or ArtifactNotLoggedError for a draft), ``qualified_name`` and
``source_name``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any

from cas import pages
from cas.errors import InvalidNameError
from cas.objects import TreeEntry

from . import trees
from .artifact_files import ArtifactFile, ArtifactFiles
from .destinations import check_destinations
from .entries import Entry, Manifest
from .env import setting
from .errors import EntryNotFoundError, NotOneFileError, UnsavedFilesError
from .files import remove_others, verify_dir, write_files
from .names import split_path
from .unsaved import survey


class VersionFiles:
    _version: Any
    qualified_name: Any
    source_name: Any

    @property
    def manifest(self) -> Manifest:
        registry, version = self._version()
        registry.not_deleted(version)  # its files may be gone: say who deleted it
        return Manifest(registry, version.tree, self)

    def files(
        self,
        names: list[str | os.PathLike[str]] | None = None,
        per_page: int = 50,
        start: str | None = None,
    ) -> ArtifactFiles:
        """Every file, or those of ``names`` the version has, in path order, as W&B's
        ``ArtifactFiles`` (artifacts.artifact_files); ``per_page`` and ``start`` are W&B's
        page size and paging cursor (everything comes at once here)."""
        registry, _version = self._version()
        if names is None:
            found = self._files()
        else:  # each path once, however often or however spelled in names
            entries = map(self.manifest.get_entry_by_path, names)
            chosen = {e.path: e.origin.tree_entry for e in entries if e and e.origin}
            found = sorted(chosen.items())
        listed = [ArtifactFile.from_tree_entry(registry, p, e, self) for p, e in found]
        return ArtifactFiles(self, listed, per_page)

    def get_entry(self, name: str | os.PathLike[str]) -> Entry:
        entry = self.manifest.get_entry_by_path(name)
        if entry is None:
            raise EntryNotFoundError(f"{self.qualified_name} has no file {os.fspath(name)!r}")
        return entry

    get_path = get_entry  # W&B's older name

    def file(self, root: str | None = None) -> str:
        """Download the one file of a single-file version; returns its local path."""
        files = list(self.manifest.entries.values())
        if len(files) != 1:
            raise NotOneFileError(
                f"{self.qualified_name} holds {len(files)} files, not one: use download(), "
                'or get_entry("path").download()'
            )
        return files[0].download(root)

    def _files(self, path_prefix: str | None = None) -> list[tuple[str, TreeEntry]]:
        """Every file whose path starts with ``path_prefix`` (a plain string prefix, as in
        W&B: "d" matches "d/x" and "dd"), reading only the trees the prefix reaches."""
        registry, version = self._version()
        registry.not_deleted(version)
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
        for entry in pages.entries(store, root):
            if entry.name.startswith(last):
                path = (*dirs, entry.name)
                if entry.kind == "tree":
                    found.extend(trees.walk(store, entry.id, path))
                else:
                    found.append(("/".join(path), entry))
        return found

    def default_root(self) -> str:
        """``$ARTIFACTS_ARTIFACT_DIR/NAME:vN`` (else W&B's ``$WANDB_ARTIFACT_DIR``), else
        ``./artifacts/NAME:vN``, made absolute, as W&B's: the path given back by
        ``download()`` still names it after a change of directory."""
        base = setting("ARTIFACT_DIR") or "artifacts"
        return os.path.abspath(os.path.join(base, self.source_name))

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        allow_missing_references: bool = False,
        skip_cache: bool | None = None,
        path_prefix: str | None = None,
        multipart: bool | None = None,  # W&B's choice of transfer: nothing to choose here
    ) -> str:
        """``skip_cache``: neither read nor fill the download cache (artifacts.cache);
        ``allow_missing_references``: leave out, with a warning, a reference whose object
        no longer exists (else ReferenceGoneError, a FileNotFoundError, as in W&B)."""
        registry, _version = self._version()
        root = os.fspath(root or self.default_root())  # a str, as W&B gives back
        write_files(
            registry.objects,
            root,
            self._files(path_prefix),
            skip_cache=skip_cache,
            allow_missing_references=allow_missing_references,
        )
        return root

    def checkout(
        self,
        root: str | os.PathLike[str] | None = None,
        on_written: Callable[[int], object] | None = None,
        on_removed: Callable[[str], object] | None = None,
        force: bool = True,
    ) -> str:
        """Make ``root`` hold exactly this version: delete extra files, then download.

        Deleting first clears a file (or a symlink) standing where the version has a
        directory, and empties a directory standing where it has a file. A store in
        ``root`` is never touched: a version that would write into one is refused before
        anything is deleted. ``on_written(size)`` is called as each file is written,
        ``on_removed(path)`` as each other file (or link) is deleted.

        ``force=False`` (the CLI's default) first hashes what ``root`` holds: files that
        already hold the version's bytes are left as they are, and if any file to delete
        or overwrite holds bytes that no object of the store holds, nothing changes and
        UnsavedFilesError names them. W&B's checkout deletes them: so does the default.
        """
        registry, _version = self._version()
        root = os.fspath(root or self.default_root())
        files = self._files()
        check_destinations(root, files, links_removed=True)
        to_write = files
        if not force and os.path.isdir(root):
            found = survey(registry.objects, root, files)
            if found.unsaved:
                raise UnsavedFilesError(root, found.unsaved)
            to_write = [(path, entry) for path, entry in files if path not in found.unchanged]
        remove_others(root, files, on_removed)
        write_files(registry.objects, root, to_write, on_written=on_written, swept=True)
        return root

    def verify(self, root: str | None = None) -> None:
        registry, _ = self._version()
        verify_dir(registry.objects, root or self.default_root(), self._files())

    def iter_entries(self, path_prefix: str | None = None) -> list[tuple[str, TreeEntry]]:
        """(path, tree entry) of every file whose path starts with ``path_prefix``."""
        return self._files(path_prefix)

    # ---- for tools built on the library (the UI) ----------------------

    def list_dir(
        self,
        path: str = "",
        after: str | None = None,
        limit: int = 1000,
        before: str | None = None,
    ) -> list[TreeEntry]:
        """The entries of directory ``path`` (files, references and subdirectories, whose
        size is all below them), in name order: at most ``limit``, those named after
        ``after``, or with ``before`` the last ones named before it. Reads only the pages
        from ``after`` on (up to ``before``), so the pages of a directory of a million
        entries each cost about the same."""
        registry, version = self._version()
        registry.not_deleted(version)
        tree_id = version.tree
        if path.strip("/"):
            try:
                found = trees.lookup(registry.objects, tree_id, split_path(path.strip("/")))
            except InvalidNameError:  # no version holds such a path
                found = None
            if found is None or found.kind != "tree":
                raise EntryNotFoundError(f"{self.qualified_name} has no directory {path!r}")
            tree_id = found.id
        if before is not None:
            last = itertools.islice(pages.entries_before(registry.objects, tree_id, before), limit)
            return list(last)[::-1]
        return list(itertools.islice(pages.entries(registry.objects, tree_id, after), limit))

    def diff_files(self, other: Any) -> trees.Diff:
        """The paths added, removed and modified from this version to ``other`` (another
        logged ``Artifact`` of the same store), as ``artifacts diff`` prints them."""
        registry, version = self._version()
        return trees.diff(registry.objects, version.tree, bytes.fromhex(other.digest))
