"""A version's files as W&B hands them out: ``Entry`` (one file, which downloads
itself) and ``Manifest`` (every file of a version).

An entry of a logged version knows its artifact and where its bytes are; one that
``add_file`` returns for a draft knows only its path and size until the draft is
logged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from cas.errors import InvalidNameError
from cas.objects import TreeEntry

from . import trees
from .errors import ArtifactNotLoggedError, NotAReferenceError
from .files import read_descriptor, write_files
from .names import logical_path, split_path
from .registry import Registry

# What W&B's ref_url() gives: a URL naming a version's file by the version's commit id.
REF_URL_SCHEME = "artifact"


class Parent(Protocol):
    """The logged artifact an entry belongs to (an ``artifacts.Artifact``)."""

    @property
    def id(self) -> str: ...

    def default_root(self) -> str: ...


class Origin(NamedTuple):
    """Where a logged entry comes from: its artifact, and its bytes in that store."""

    artifact: Parent
    registry: Registry
    tree_entry: TreeEntry


@dataclass(frozen=True)
class Entry:
    """One file of a version, as the manifest lists it."""

    path: str
    digest: str  # hex id of the blob (or of a reference's descriptor)
    size: int
    executable: bool = False
    ref: str | None = None  # the URI, for references
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # W&B's; always empty
    origin: Origin | None = field(default=None, compare=False, repr=False)  # None: a draft's
    # The file add_file staged (W&B's field); None for a logged version's entries
    local_path: str | None = field(default=None, compare=False)

    @classmethod
    def from_tree_entry(
        cls, registry: Registry, path: str, entry: TreeEntry, artifact: Parent
    ) -> Entry:
        ref = read_descriptor(registry.objects, entry)["uri"] if entry.kind == "ref" else None
        origin = Origin(artifact, registry, entry)
        return cls(path, entry.id.hex(), entry.size, entry.executable, ref, origin=origin)

    @property
    def name(self) -> str:
        """W&B's older name for ``path``."""
        return self.path

    def to_json(self) -> dict[str, Any]:
        """W&B's: the entry's fields as a dict (not a JSON string, despite the name),
        those without a value left out."""
        fields = {
            "path": self.path,
            "digest": self.digest,
            "ref": self.ref,
            "size": self.size,
            "executable": self.executable,
            "extra": dict(self.extra),
            "local_path": self.local_path,
        }
        return {name: value for name, value in fields.items() if value is not None}

    def _origin(self) -> Origin:
        if self.origin is None:
            raise ArtifactNotLoggedError(f"{self.path!r} is an entry of a draft: log it first")
        return self.origin

    def parent_artifact(self) -> Parent:
        """The logged artifact this entry belongs to."""
        return self._origin().artifact

    def download(self, root: str | None = None, skip_cache: bool | None = None) -> str:
        """Write this file (verified) below ``root`` (default: its artifact's default root),
        at its path in the version; returns the file's local path. Other files in ``root``
        stay. ``skip_cache``: neither read nor fill the download cache (artifacts.cache)."""
        artifact, registry, tree_entry = self._origin()
        root = root or artifact.default_root()
        write_files(registry.objects, root, [(self.path, tree_entry)], skip_cache=skip_cache)
        return os.path.join(root, *split_path(self.path))

    def ref_target(self) -> str:
        """The URI a reference entry points at."""
        if self.ref is None:
            raise NotAReferenceError(f"{self.path!r} is not a reference: it has no ref_target()")
        return self.ref

    def ref_url(self) -> str:
        """A URL naming this file of this version: ``artifact://<version id>/<path>``."""
        return f"{REF_URL_SCHEME}://{self.parent_artifact().id}/{self.path}"


class Manifest:
    """Every file of a version: ``manifest.entries[path]`` is an :class:`Entry`."""

    def __init__(self, registry: Registry, tree: bytes, artifact: Parent) -> None:
        self._registry = registry
        self._store = registry.objects
        self._tree = tree
        self._artifact = artifact
        self._entries: dict[str, Entry] | None = None

    def _entry(self, path: str, entry: TreeEntry) -> Entry:
        return Entry.from_tree_entry(self._registry, path, entry, self._artifact)

    @property
    def entries(self) -> dict[str, Entry]:
        if self._entries is None:
            self._entries = {
                path: self._entry(path, entry)
                for path, entry in trees.walk(self._store, self._tree)
            }
        return self._entries

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def digest(self) -> str:
        """The version's digest: the id of its root tree (hex), as ``artifact.digest``."""
        return self._tree.hex()

    def size(self) -> int:
        """The bytes of every file, references included (W&B's: its entries' sizes)."""
        return sum(entry.size or 0 for entry in self.entries.values())

    def to_manifest_json(self) -> dict[str, Any]:
        """W&B's manifest as a dict (see ``manifest_json``)."""
        return manifest_json(self.entries)

    def get_entry_by_path(self, path: str | os.PathLike[str]) -> Entry | None:
        """The file at ``path`` (spelled as W&B allows, see ``logical_path``), or None;
        reads only the trees along the path."""
        try:
            segments = logical_path(path)
        except InvalidNameError:  # no version holds such a path
            return None
        found = trees.lookup(self._store, self._tree, segments)
        if found is None or found.kind == "tree":
            return None
        return self._entry("/".join(segments), found)

    def get_entries_in_directory(self, directory: str) -> list[Entry]:
        """Every file below ``directory`` (at any depth), in path order."""
        found = self._lookup(directory.strip("/"))
        if found is None or found.kind != "tree":
            return []
        below = trees.walk(self._store, found.id, split_path(directory.strip("/")))
        return [self._entry(path, entry) for path, entry in below]

    def _lookup(self, path: str) -> TreeEntry | None:
        try:
            segments = split_path(path)
        except InvalidNameError:  # no version holds such a path
            return None
        return trees.lookup(self._store, self._tree, segments)


def manifest_json(entries: dict[str, Entry]) -> dict[str, Any]:
    """W&B's manifest as a dict: each path's fields (``to_json()`` but the path and the
    values W&B leaves out as defaults) under ``contents``. The storage policy is this
    store's content addressing, which takes no config."""
    defaults = {"executable": False, "extra": {}}
    contents = {
        path: {
            key: value
            for key, value in entry.to_json().items()
            if key not in ("path", "local_path") and defaults.get(key, ...) != value
        }
        for path, entry in entries.items()
    }
    return {
        "version": 1,
        "storagePolicy": "artifacts-content-addressed",
        "storagePolicyConfig": {},
        "contents": contents,
    }
