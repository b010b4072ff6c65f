"""A draft's files as W&B's draft lists them in its manifest: the base version's, with
the staged edits applied. A staged local file has no digest until it is logged (as the
entry ``add_file`` returns); the manifest's ``digest()`` is the draft's, computed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from cas.errors import InvalidNameError

from . import trees
from .draft import Draft, StagedFile
from .entries import Entry, Parent, manifest_json
from .files import LocalFile, Reference
from .names import logical_path
from .snapshot import DirSource


def staged_entry(path: str, staged: StagedFile) -> Entry:
    """The entry of a file staged at ``path``: what W&B's add calls return for it."""
    if isinstance(staged, LocalFile):
        return Entry(path, "", staged.size, staged.executable, local_path=staged.path)
    if isinstance(staged, Reference):
        d = staged.descriptor
        return Entry(path, d["digest"], d["size"], ref=d["uri"])
    e = staged.entry  # a file of a logged version, as stored there
    return Entry(path, e.id.hex(), e.size, e.executable)


class DraftManifest:
    """``manifest`` of a draft, read afresh each time: the draft may still change.
    ``base`` gives the base version's artifact, whose entries download themselves."""

    def __init__(self, draft: Draft, base: Callable[[], Parent]) -> None:
        self._draft = draft
        self._base = base

    @property
    def entries(self) -> dict[str, Entry]:
        found: dict[str, Entry] = {}
        registry, version = self._draft.registry, self._draft.base
        if registry is not None and version is not None:
            parent = self._base()
            for path, entry in trees.walk(registry.objects, version.tree):
                found[path] = Entry.from_tree_entry(registry, path, entry, parent)
        for segments, staged in self._draft.edits.items():  # the newest edit comes last
            path = "/".join(segments)
            if staged is trees.REMOVE:
                for gone in [p for p in found if p == path or p.startswith(path + "/")]:
                    del found[gone]
            elif isinstance(staged, DirSource):
                for rel, file in staged.files():
                    found["/".join(segments + rel)] = staged_entry("/".join(segments + rel), file)
            else:
                found[path] = staged_entry(path, staged)
        return dict(sorted(found.items()))

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def digest(self) -> str:
        """The digest logging the draft would give (its staged files hashed)."""
        return self._draft.tree_id().hex()

    def size(self) -> int:
        return sum(entry.size or 0 for entry in self.entries.values())

    def to_manifest_json(self) -> dict[str, Any]:
        return manifest_json(self.entries)

    def get_entry_by_path(self, path: str | os.PathLike[str]) -> Entry | None:
        try:
            return self.entries.get("/".join(logical_path(path)))
        except InvalidNameError:  # no draft holds such a path
            return None

    def get_entries_in_directory(self, directory: str) -> list[Entry]:
        below = directory.strip("/") + "/"
        return [e for path, e in self.entries.items() if path.startswith(below)]
