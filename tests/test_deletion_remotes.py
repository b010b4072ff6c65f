"""Deleting versions on a bucket, and deletions carried by push and pull (issue 20,
item 2's acceptance): the deleted data is freed on every side, the rest intact."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import artifacts
import remotes
from artifacts import deletion
from artifacts.errors import VersionDeletedError
from artifacts.refpolicy import ARTIFACT_REFS
from cas import Repository
from cas.fsck import fsck
from cas.gc import gc
from cas.storage import open_storage
from tests.helpers import ENTITY, PROJECT, write

MiB = 1024 * 1024
LEASE = 0.2


def open_repo(url: str, options: dict[str, Any] | None = None) -> Repository:
    return Repository(open_storage(url, **(options or {})))


def log_three(store: str, options: dict[str, Any] | None = None) -> bytes:
    """v0 (3 MiB), v1 (small), v2 of ``ckpt``; the 3 MiB."""
    big = os.urandom(3 * MiB)
    src = Path(os.getcwd()) / "src"
    with artifacts.init(PROJECT, ENTITY, store=store, store_options=options) as run:
        for data in (big, b"small", b"newest"):
            write(src / "weights.bin", data)
            artifact = artifacts.Artifact("ckpt", "model")
            artifact.add_dir(str(src))
            run.log_artifact(artifact)
    return big


def delete(store: str, *specs: str, options: dict[str, Any] | None = None) -> None:
    api = artifacts.Api(store=store, store_options=options)
    for spec in specs:
        api.artifact(f"{ENTITY}/{PROJECT}/{spec}").delete()


def stored_bytes(repo: Repository) -> int:
    return sum(repo.storage.stat(key).size for key in repo.storage.list(""))


def collect(repo: Repository) -> int:
    """gc twice, the fossils' life apart; bytes freed. A bucket stamps times to the
    second, on the fossil and on gc's clock marker alike (up to a second each way), and
    gc stops moving objects aside when a copy takes half a lease: a longer one there.
    There gc also counts an object younger than its grace until it is a second older
    than it looks, so the first gc waits until what was just logged is two seconds old."""
    local = repo.storage.capabilities.local
    lease, margin = (LEASE, 0) if local else (1.0, 1)
    repo.set_lease_seconds(lease)
    before = stored_bytes(repo)
    time.sleep(2 * margin + 0.1 if margin else 0)
    gc_to_the_end(repo)
    time.sleep(2 * lease + 2 * margin + 0.1)
    gc_to_the_end(repo)
    return before - stored_bytes(repo)


def gc_to_the_end(repo: Repository, tries: int = 5) -> None:
    """gc, again while it says it went on too long to move more aside (a loaded machine
    copies 3 MiB to a bucket in over half a lease), as its warning tells users to."""
    for _ in range(tries):
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            gc(repo, grace_seconds=0, released=deletion.released(repo))
        if not any("run it again" in str(w.message) for w in said):
            return
    raise AssertionError(f"gc stopped as too slow {tries} times running")


def assert_kept_and_clean(repo: Repository, store: str, dest: Path, options: Any = None) -> None:
    assert fsck(repo, released=deletion.released(repo)).ok
    api = artifacts.Api(store=store, store_options=options)
    root = api.artifact(f"{ENTITY}/{PROJECT}/ckpt:v2").download(str(dest))
    assert (Path(root) / "weights.bin").read_bytes() == b"newest"
    for gone in ("v0", "v1"):
        with pytest.raises(VersionDeletedError):
            api.artifact(f"{ENTITY}/{PROJECT}/ckpt:{gone}")


def test_gc_frees_deleted_versions_on_a_moto_bucket(ws, make_spec):
    spec = make_spec("s3-moto")
    url, options = spec["url"], spec.get("options")
    log_three(url, options)
    delete(url, "ckpt:v1", "ckpt:v0", options=options)
    repo = open_repo(url, options)
    assert collect(repo) >= 3 * MiB
    assert_kept_and_clean(repo, url, ws / "dl", options)


def test_push_and_pull_carry_deletions_and_every_side_frees_the_data(ws):
    a, remote, b = str(ws / "a"), str(ws / "remote"), str(ws / "b")
    log_three(a)
    repo_a = Repository.open(a)
    remotes.add_remote(repo_a, "origin", remote)
    remotes.push(repo_a, "origin", policy=ARTIFACT_REFS)
    repo_b = remotes.clone(remote, b, policy=ARTIFACT_REFS)
    b = str(Path(b) / ".artifacts")

    delete(a, "ckpt:v1", "ckpt:v0")
    assert collect(repo_a) >= 3 * MiB  # pushed after its own gc: the trees are gone here
    remotes.push(repo_a, "origin", policy=ARTIFACT_REFS)
    repo_r = Repository.open(remote)
    assert collect(repo_r) >= 3 * MiB
    assert_kept_and_clean(repo_r, remote, ws / "dl-r")

    pulled = remotes.pull(repo_b, "origin", policy=ARTIFACT_REFS)
    assert not pulled.diverged
    assert collect(repo_b) >= 3 * MiB
    assert_kept_and_clean(repo_b, b, ws / "dl-b")
    assert_kept_and_clean(repo_a, a, ws / "dl-a")

    # A new store from the collected remote: the deleted trees are asked for by nobody.
    fresh = remotes.clone(remote, str(ws / "c"), policy=ARTIFACT_REFS)
    assert_kept_and_clean(fresh, str(ws / "c" / ".artifacts"), ws / "dl-c")


def test_a_fetched_remote_deletion_frees_nothing_this_store_still_has(ws):
    a, remote = str(ws / "a"), str(ws / "remote")
    log_three(remote)
    repo_a = remotes.clone(remote, a, policy=ARTIFACT_REFS)
    a = str(Path(a) / ".artifacts")
    delete(remote, "ckpt:v0")
    remotes.fetch(repo_a, "origin", policy=ARTIFACT_REFS)  # not pulled: v0 lives here
    collect(repo_a)
    root = artifacts.Api(store=a).artifact(f"{ENTITY}/{PROJECT}/ckpt:v0").download(str(ws / "d"))
    assert (Path(root) / "weights.bin").stat().st_size == 3 * MiB
    assert fsck(repo_a, released=deletion.released(repo_a)).ok


def test_two_stores_that_deleted_the_same_version_do_not_conflict(ws):
    a, remote, b = str(ws / "a"), str(ws / "remote"), str(ws / "b")
    log_three(remote)
    repo_a = remotes.clone(remote, a, policy=ARTIFACT_REFS)
    repo_b = remotes.clone(remote, b, policy=ARTIFACT_REFS)
    delete(str(Path(a) / ".artifacts"), "ckpt:v1")
    delete(str(Path(b) / ".artifacts"), "ckpt:v1")
    remotes.push(repo_a, "origin", policy=ARTIFACT_REFS)
    remotes.push(repo_b, "origin", policy=ARTIFACT_REFS)  # not rejected
    pulled = remotes.pull(repo_b, "origin", policy=ARTIFACT_REFS)
    assert not pulled.diverged
    api = artifacts.Api(store=remote)
    with pytest.raises(VersionDeletedError):
        api.artifact(f"{ENTITY}/{PROJECT}/ckpt:v1")
    assert [v.version for v in api.artifact_collection("model", "ckpt").versions()] == ["v2", "v0"]


def test_a_collection_delete_on_a_moto_bucket_frees_every_version(ws, make_spec):
    spec = make_spec("s3-moto")
    url, options = spec["url"], spec.get("options")
    big = log_three(url, options)
    api = artifacts.Api(store=url, store_options=options)
    api.artifact_collection("model", f"{ENTITY}/{PROJECT}/ckpt").delete()
    repo = open_repo(url, options)
    assert collect(repo) >= len(big)
    assert fsck(repo, released=deletion.released(repo)).ok
    api = artifacts.Api(store=url, store_options=options)
    for gone in ("v0", "v1", "v2", "latest"):
        assert not api.artifact_exists(f"{ENTITY}/{PROJECT}/ckpt:{gone}")
