"""What the caller says its refs are for; remotes only moves them.

Like git's transport, which does not know what a branch is for, push, pull and
rebase take a :class:`RefPolicy` from the layer that names the refs (the
artifacts package passes ``artifacts.refpolicy.ARTIFACT_REFS``). Every ref is
one of three kinds:

- a **head**: a chain of commits (first parents). Push and pull only
  fast-forward it; chains that diverged are reported, and ``rebase`` re-applies
  the local-only commits on top of the other side's.
- a ref that **belongs with a head** (an artifact's alias): moved only where the
  other side still holds what we last saw (or has none), held back when its
  head is refused, and moved along when its head is rebased.
- a **record**: one writer each; copied as it is.

A record may **release** a commit (an artifact's deletion record): that commit's
tree is no longer followed (:func:`cas.walk.reachable`), so transfers do not ask
for it (it may be gone), and such a record lands on the other side before any
head that reaches the commit. Two stores' records releasing the same commit
agree: neither replaces the other.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from cas import Commit, ObjectId


class RefPolicy(Protocol):
    def is_head(self, ref: str) -> bool:
        """Is ``ref`` a chain of commits that may only move forward?"""
        ...

    def head_of(self, ref: str) -> str | None:
        """The head ``ref`` belongs with; None for heads and records."""
        ...

    def is_kept(self, ref: str) -> bool:
        """Does ``ref`` stay here when the other side no longer has it? (Other refs
        that vanished there are dropped here too, unless changed here.)"""
        ...

    def selects(self, ref: str, names: Collection[str]) -> bool:
        """Does a push or rebase of the things called ``names`` take ``ref``?"""
        ...

    def rebased(
        self, commit: Commit, commit_id: ObjectId, onto: ObjectId, tip: Commit
    ) -> Commit | None:
        """``commit`` (whose id is ``commit_id``) re-applied on top of ``onto``, whose
        commit is ``tip``: the same tree, ``onto`` as its parent; None if ``tip``
        already holds what ``commit`` brings (then ``commit`` becomes ``onto``)."""
        ...

    def releases(self, ref: str) -> ObjectId | None:
        """The commit ``ref`` releases (a record saying it is deleted); None for most refs."""
        ...

    def describe(self, ref: str) -> str:
        """``ref`` as people name it, for messages."""
        ...
