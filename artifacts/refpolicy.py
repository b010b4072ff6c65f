"""What each of artifacts' refs is for, told to ``remotes`` (which knows no ref names).

The refs (see :mod:`artifacts.ref_names`) and their kinds:

- ``<e>/<p>/artifacts/<name>/latest``: a head, the version chain. Push and pull
  only fast-forward it; ``rebase`` re-applies local-only versions after the
  remote's with the next numbers.
- ``<e>/<p>/artifacts/<name>/aliases/<alias>``: belongs with its artifact's head,
  so nobody's alias is clobbered and a refused head keeps its aliases back.
- ``<e>/<p>/artifacts/<name>/annotations/<commit>``: a head too, the chain of a
  version's annotation records (artifacts.annotations). Two stores that both
  edited a version diverge like two version chains: pull reports it, and
  ``rebase`` re-applies each local edit over the remote's newest record.
- ``<e>/<p>/artifacts/<name>/deleted/<commit>``: a record (artifacts.deletion_records)
  that releases the version's commit; kept when the remote lacks it.
- ``<e>/<p>/artifacts/<name>/collection``: a record, the artifact's description and
  tags (artifacts.collection_info); pushed with its artifact, dropped with it.
- ``<e>/<p>/runs/<id>`` and ``<e>/<p>/dist/<name>/…``: records, one writer each.
  A run's record stays when the remote drops it; a part goes once merged.
- ``<org>/wandb-registry-<r>/registry``: a record, a registry's settings
  (artifacts.registries); it stays when the remote drops it, as a run's does.

``push NAME…`` and ``rebase NAME…`` take the artifacts called NAME (their head,
aliases and distributed parts), every run record and every registry's settings.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from cas import Commit, ObjectId

from . import annotations
from .deletion_records import released_by
from .ref_names import ref_label, registry_settings_ref


class ArtifactRefPolicy:
    """The :class:`remotes.policy.RefPolicy` of artifact versions, aliases, runs and parts."""

    def is_head(self, ref: str) -> bool:
        parts = ref.split("/")
        if len(parts) == 6 and parts[2] == "artifacts" and parts[4] == "annotations":
            return True
        return len(parts) == 5 and parts[2] == "artifacts" and parts[4] == "latest"

    def head_of(self, ref: str) -> str | None:
        parts = ref.split("/")
        if len(parts) == 6 and parts[2] == "artifacts" and parts[4] == "aliases":
            return "/".join([*parts[:4], "latest"])
        return None

    def is_kept(self, ref: str) -> bool:
        return (
            self.is_head(ref)
            or _is_run(ref)
            or _is_registry_settings(ref)
            or released_by(ref) is not None
        )

    def selects(self, ref: str, names: Collection[str]) -> bool:
        parts = ref.split("/")
        named = len(parts) > 3 and parts[2] in ("artifacts", "dist") and parts[3] in names
        return named or _is_run(ref) or _is_registry_settings(ref)

    def rebased(
        self, commit: Commit, commit_id: ObjectId, onto: ObjectId, tip: Commit
    ) -> Commit | None:
        """The version after ``tip``, with the tree and metadata of ``commit`` (None if
        ``tip`` has that tree); or an annotation record's change re-applied over ``tip``
        (None if ``tip`` already says what it would)."""
        if annotations.is_record(commit):
            return _rebased_record(commit, commit_id, onto, tip)
        if commit.tree == tip.tree:
            return None
        meta = dict(commit.meta)
        meta.update(version=tip.meta["version"] + 1, rebased_from=commit_id.hex())
        meta["time"] = meta.get("time") or time.time_ns()
        return Commit(commit.tree, (onto,), meta)

    def releases(self, ref: str) -> ObjectId | None:
        return released_by(ref)

    def describe(self, ref: str) -> str:
        return ref_label(ref)


def _rebased_record(
    commit: Commit, commit_id: ObjectId, onto: ObjectId, tip: Commit
) -> Commit | None:
    edit = annotations.read_record(commit_id, commit)
    base = annotations.read_record(onto, tip).annotations
    state = annotations.apply(base, edit.change)
    if state == base:
        return None
    meta = {k: v for k, v in commit.meta.items() if k != "ttl"}
    meta.update(annotations.state_meta(state))
    meta["rebased_from"] = commit_id.hex()
    return Commit(commit.tree, (onto,), meta)


def _is_run(ref: str) -> bool:
    parts = ref.split("/")
    return len(parts) == 4 and parts[2] == "runs"


def _is_registry_settings(ref: str) -> bool:
    parts = ref.split("/")
    return len(parts) == 3 and registry_settings_ref(parts[0], parts[1]) == ref


ARTIFACT_REFS = ArtifactRefPolicy()
