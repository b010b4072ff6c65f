"""Released commits (cas): walked and kept, their trees not followed.

A layer above cas deletes a version by naming its commit *released*: history
stays whole (a later commit still names it as parent), but nothing reaches its
tree through it any more, so gc frees the tree like an object whose only ref
was deleted, and fsck does not ask for it. Local stores; the artifacts tests
run the same over buckets.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from cas import Repository
from cas.fsck import fsck
from cas.gc import gc
from cas.objects import Blob, Commit, Tree, TreeEntry
from cas.walk import reachable

LEASE = 0.2  # fossils are deleted 2 L after they moved


def chain(repo: Repository) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Three commits c0 <- c1 <- c2 under one ref, each with a tree of its own blob
    and a blob all three share; (commits, trees, own blobs)."""
    shared = Blob(b"shared\n" * 50)
    repo.objects.put(shared)
    commits, trees, blobs = [], [], []
    parent: tuple[bytes, ...] = ()
    for n in range(3):
        own = Blob(f"version {n}\n".encode() * 1000)
        tree = Tree(
            (
                TreeEntry("own", "blob", repo.objects.put(own), len(own.data)),
                TreeEntry("shared", "blob", shared.id, len(shared.data)),
            )
        )
        commit = Commit(repo.objects.put(tree), parent, {"n": n})
        parent = (repo.objects.put(commit),)
        commits.append(commit.id)
        trees.append(tree.id)
        blobs.append(own.id)
    repo.refs.set_if_equals("head", None, commits[-1])
    repo.set_lease_seconds(LEASE)
    return commits, trees, blobs


def collect(repo: Repository, released: set[bytes]) -> None:
    """Move what is unreachable to the fossils, then delete those fossils for good."""
    gc(repo, grace_seconds=0, released=released)
    time.sleep(2 * LEASE + 0.1)
    gc(repo, grace_seconds=0, released=released)


def test_the_walk_yields_a_released_commit_but_not_its_tree(tmp_path: Path) -> None:
    repo = Repository.open(str(tmp_path / "s"))
    commits, trees, blobs = chain(repo)
    walked = {i for i, _ in reachable(repo.objects, [commits[2]], released={commits[1]})}
    assert set(commits) <= walked
    assert trees[1] not in walked and blobs[1] not in walked
    assert {trees[0], trees[2], blobs[0], blobs[2]} <= walked


def test_gc_frees_a_released_commits_tree_and_keeps_the_history(tmp_path: Path) -> None:
    repo = Repository.open(str(tmp_path / "s"))
    commits, trees, blobs = chain(repo)
    collect(repo, {commits[0], commits[1]})
    store = repo.objects
    assert all(store.has(c) for c in commits)  # later commits still name them
    assert not store.has(trees[0]) and not store.has(blobs[0])
    assert not store.has(trees[1]) and not store.has(blobs[1])
    assert store.has(trees[2]) and store.has(blobs[2])
    shared = store.get_tree(trees[2]).get("shared")
    assert shared is not None and store.has(shared.id)  # the kept version still holds it
    assert not repo.objects.fossils.has(blobs[0])  # gone for good, not only aside
    assert fsck(repo, released={commits[0], commits[1]}).ok


def test_gc_and_fsck_without_the_released_set_stay_safe(tmp_path: Path) -> None:
    repo = Repository.open(str(tmp_path / "s"))
    commits, trees, blobs = chain(repo)
    collect(repo, set())  # a caller that does not say: everything is kept
    assert all(repo.objects.has(i) for i in [*commits, *trees, *blobs])
    collect(repo, {commits[0]})
    report = fsck(repo)  # a caller that does not say: the freed tree is reported, nothing else
    assert [(p.problem, p.object_id, p.kind) for p in report.problems] == [
        ("missing", trees[0].hex(), "tree")
    ]


def test_a_writer_reusing_a_released_tree_while_gc_frees_it_keeps_it(tmp_path: Path) -> None:
    """The tree goes the way of an object whose only ref was deleted, so the lease
    protects a writer that found it "already stored" just before gc moved it."""
    repo = Repository.open(str(tmp_path / "s"))
    commits, trees, blobs = chain(repo)
    released = {commits[0]}
    with repo.writing():
        assert repo.objects.has(trees[0])  # the writer's "already stored?"
        gc_run = threading.Thread(target=gc, args=(repo, 0), kwargs={"released": released})
        gc_run.start()  # gc in its own thread: leases are per thread
        gc_run.join()
        assert not repo.objects.has(trees[0])  # moved aside under the writer
        again = Commit(trees[0], (commits[2],), {"n": 3})
        repo.refs.set_if_equals("head", commits[2], repo.objects.put(again))
    time.sleep(2 * LEASE + 0.1)
    gc(repo, grace_seconds=0, released=released)  # sees the new ref: restores, deletes nothing
    assert repo.objects.has(trees[0]) and repo.objects.has(blobs[0])
    assert fsck(repo, released=released).ok
