"""What a checkout or a download would lose: the files it would delete or overwrite
whose bytes no object of the store holds.

A checkout makes a directory hold exactly a version, so it deletes the files the version
lacks and rewrites those that differ. Run in a project (``artifacts checkout ds:v1 .``),
that would take the user's own files with it: a script, an edited copy of a data file.
:func:`survey` hashes what the directory holds and names every such file whose id is no
blob of the store, so that it can be refused before anything changes; a file whose
bytes the store holds can come back from it. Hashing also finds the files that already
hold the version's bytes: those need no rewriting.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from cas import ObjectStore
from cas.objects import TreeEntry
from cas.threads import worker_pool

from .dirwalk import walk_up
from .files import VCS_METADATA
from .hashing import blob_id_of_file
from .partfiles import is_part_name

HASH_WORKERS = 4


@dataclass
class Survey:
    unchanged: set[str] = field(default_factory=set)  # version paths already as logged
    unsaved: list[str] = field(default_factory=list)  # would be lost, in path order


def survey(
    store: ObjectStore, root: str, files: list[tuple[str, TreeEntry]], others: bool = True
) -> Survey:
    """The regular files below ``root`` (paths relative to it, ``/``-separated) that
    writing ``files`` there would leave as they are, and those it would lose: the files
    at their paths, and with ``others`` (a checkout) every other file too."""
    wanted = dict(files)
    found: list[tuple[str, str, int]] = []  # (relative path, path, st_mode)

    def consider(rel: str, path: str) -> None:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return  # nothing there (any more), or no path there: the writing says so
        if stat.S_ISREG(mode):  # a link loses no bytes
            found.append((rel, path, mode))

    if others:
        for dirpath, _dirs, names in walk_up(root, VCS_METADATA):
            for name in names:
                if not is_part_name(name):
                    path = os.path.join(dirpath, name)
                    consider(os.path.relpath(path, root).replace(os.sep, "/"), path)
    else:
        for rel, _entry in files:
            consider(rel, os.path.join(root, *rel.split("/")))
    with worker_pool(HASH_WORKERS) as pool:
        ids = list(pool.map(_blob_id, [path for _, path, _ in found]))
    result = Survey()
    at_risk: dict[bytes | None, list[str]] = {}
    for (rel, _path, mode), blob_id in zip(found, ids, strict=True):
        entry = wanted.get(rel)
        if entry is not None and entry.kind == "ref":
            continue  # its bytes are the referenced object's, fetched again from there
        if entry is not None and entry.kind == "blob" and entry.id == blob_id:
            if bool(mode & stat.S_IXUSR) == entry.executable:
                result.unchanged.add(rel)
            continue  # the version's own bytes: nothing to lose by rewriting them
        at_risk.setdefault(blob_id, []).append(rel)
    held = store.has_many(i for i in at_risk if i is not None)
    result.unsaved = sorted(rel for i, rels in at_risk.items() if i not in held for rel in rels)
    return result


def _blob_id(path: str) -> bytes | None:
    """The file's id, or None if it cannot be read: its bytes are then taken for unsaved."""
    try:
        return blob_id_of_file(path)
    except OSError:
        return None
