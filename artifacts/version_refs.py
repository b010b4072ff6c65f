"""References to a file of another logged version: W&B's ``entry.ref_url()``.

``derived.add_reference(entry.ref_url())`` (``artifact://<version id>/<path>``, or
W&B's ``wandb-artifact://`` spelling) puts that file into the draft as it is stored:
the same tree entry, so the same blob id. Nothing is read, copied or uploaded, and
the new version's file is an ordinary stored file (downloaded, verified, pushed and
kept by gc as any other). Where it came from is not recorded: the format has no
place for it in a tree entry.

The version is named by its commit id, so it is found in whichever store holds it;
the draft is logged only to a store that holds that version, not deleted (checked in
the logging's lease: gc then keeps what the new version reaches).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from cas.errors import ObjectNotFoundError, UsageError
from cas.objects import ID_SIZE, TreeEntry

from . import trees
from .errors import ArtifactNotFoundError, EntryNotFoundError, VersionDeletedError
from .names import split_path
from .registry import Registry, Version

SCHEMES = ("artifact://", "wandb-artifact://")  # ours (Entry.ref_url), W&B's


class VersionFile(NamedTuple):
    """A file of a logged version, staged as stored: its tree entry, nothing copied."""

    version: Version  # the version it is a file of
    entry: TreeEntry  # its entry there (named by its path there)

    def named(self, name: str) -> TreeEntry:
        """Its tree entry in the new version, where it is called ``name``."""
        return self.entry._replace(name=name)


def is_version_ref(uri: str) -> bool:
    return uri.startswith(SCHEMES)


def resolve(registry: Registry, url: str) -> VersionFile:
    """The file ``url`` names, a file of a version ``registry`` holds, not deleted."""
    commit_id, path = _parse(url)
    version = _version(registry, commit_id)
    found = trees.lookup(registry.objects, version.tree, path)
    if found is None:
        raise EntryNotFoundError(
            f"{version.label} has no file {'/'.join(path)!r}: reference one of its files "
            "(get_entry(path).ref_url())"
        )
    if found.kind == "tree":
        raise UsageError(
            f"{'/'.join(path)!r} is a directory of {version.label}: reference its files one "
            "by one (manifest.get_entries_in_directory)"
        )
    return VersionFile(version, found)


def check_held(registry: Registry, staged: Iterable[VersionFile]) -> None:
    """Refuse to log files of versions ``registry`` does not hold, or has deleted."""
    for commit_id in {f.version.commit_id for f in staged}:
        _version(registry, commit_id)


def _parse(url: str) -> tuple[bytes, trees.Path]:
    scheme, _, rest = url.partition("://")
    commit_hex, _, path = rest.partition("/")
    try:
        commit_id = bytes.fromhex(commit_hex)
        if len(commit_id) != ID_SIZE or not path:
            raise ValueError(url)
        return commit_id, split_path(path)
    except ValueError:
        raise UsageError(
            f"bad reference {url!r}: use a file's entry.ref_url(), {scheme}://<version id>/<path>"
        ) from None


def _version(registry: Registry, commit_id: bytes) -> Version:
    try:
        meta = registry.commit(commit_id).meta
    except ObjectNotFoundError:
        raise ArtifactNotFoundError(
            f"no version {commit_id.hex()} in the store {registry.repo.url}: log the new "
            "version to the store that holds it, or bring it here first (artifacts pull)"
        ) from None
    version = registry.version(meta.get("entity"), meta.get("project"), commit_id)
    try:
        return registry.not_deleted(version)
    except VersionDeletedError as exc:
        raise VersionDeletedError(
            f"{exc}: reference a file of a version that is not deleted"
        ) from None
