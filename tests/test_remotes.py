"""Remotes (issue #4), end to end on real stores: a local directory, S3 on moto (and
SeaweedFS), GCS on fake-gcs-server. Nothing of ours is mocked.

Buckets are reached the way users reach them: ``remotes`` opens a remote by its URL
alone, so endpoints and credentials come from the environment (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``... for S3, ``STORAGE_EMULATOR_HOST`` for a GCS emulator), as
docs/remotes.md says.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
import shutil
import tracemalloc
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

import artifacts
import remotes
from artifacts.refpolicy import ARTIFACT_REFS
from artifacts.registry import Registry
from cas import Repository, objects, pages
from cas.errors import AccessDeniedError, CasError, CorruptObjectError, PreconditionFailedError
from cas.fsck import fsck
from cas.keys import content_key, loose_key
from cas.storage import LocalStorage
from cas.store import LOOSE_THRESHOLD
from remotes import transfer
from remotes.config import normalized_url
from remotes.errors import PushRejectedError, RemoteAccessDeniedError, RemoteNotFoundError
from tests.helpers import tree_of, write_tree
from tests.httpproxy import Action, FaultProxy, Request
from tests.processes import python, wait_ok
from tests.servers import (
    S3_KEY,
    S3_SECRET,
    GCSServer,
    S3Server,
    moto_process,
    new_gcs_spec,
    new_s3_spec,
)

ROOT = Path(__file__).resolve().parent.parent
ENTITY, PROJECT = "team", "proj"

_rng = random.Random(4)
BIG_1 = _rng.randbytes(LOOSE_THRESHOLD + 300_000)  # > 1 MiB: travels as a loose blob
BIG_2 = _rng.randbytes(LOOSE_THRESHOLD + 7)

V0 = {
    "README.md": b"# a small dataset\n",
    "empty.txt": b"",
    "big.bin": BIG_1,
    "train/a.csv": b"x,y\n1,2\n",
    "train/deep/nested/dir/b.txt": b"deep\n" * 50,
}
V1 = {**V0, "train/a.csv": b"x,y\n1,2\n3,4\n", "val/c.csv": b"x,y\n5,6\n"}
V2 = {k: v for k, v in V1.items() if k != "README.md"} | {"big.bin": BIG_2}
VERSIONS = [V0, V1, V2]


# ---- helpers -------------------------------------------------------------------


def log(
    store: str | Path,
    files: dict[str, bytes],
    name: str = "data",
    aliases: list[str] | None = None,
    entity: str = ENTITY,
) -> str:
    """Log ``files`` as the next version of ``name`` in ``store``; returns "vN"."""
    src = write_tree(Path(os.getcwd()) / f"src-{uuid.uuid4().hex[:8]}", files)
    try:
        with artifacts.init(store=str(store), entity=entity, project=PROJECT) as run:
            artifact = artifacts.Artifact(name, "dataset")
            artifact.add_dir(str(src))
            run.log_artifact(artifact, aliases=aliases)
            return artifact.version
    finally:
        shutil.rmtree(src)


def download(store: str | Path, spec: str, entity: str = ENTITY) -> dict[str, bytes]:
    root = Path(os.getcwd()) / f"dl-{uuid.uuid4().hex[:8]}"
    with artifacts.init(store=str(store), entity=entity, project=PROJECT, job_type="check") as run:
        return tree_of(run.use_artifact(spec).download(str(root)))


def head(store: str | Path, name: str = "data", entity: str = ENTITY) -> bytes | None:
    repo = Repository.open(str(store))
    return repo.refs.read(f"{entity}/{PROJECT}/artifacts/{name}/latest")


def blob_key(data: bytes) -> str:
    """The key the blob of ``data`` has when it is stored loose (large: its content alone)."""
    return content_key(objects.object_id(objects.encode_header("blob", len(data)) + data))


def use_s3_env(monkeypatch: pytest.MonkeyPatch, endpoint: str, key: str, secret: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def use_gcs_env(monkeypatch: pytest.MonkeyPatch, server: GCSServer) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.endpoint_url)


def bucket_url(kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket store on server ``kind``, reachable through the environment."""
    if kind == "gcs":
        server: Any = request.getfixturevalue("gcs_server")
        use_gcs_env(monkeypatch, server)
        return new_gcs_spec(server)["url"]
    server = request.getfixturevalue("moto_server" if kind == "s3-moto" else "seaweed_server")
    use_s3_env(monkeypatch, server.endpoint_url, server.key, server.secret)
    return new_s3_spec(server)["url"]


@pytest.fixture
def ws(ws: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared workspace, with pack-index caches under it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(ws / "xdg-cache"))
    return ws


@pytest.fixture(params=["local", "s3-moto", "s3-seaweed", "gcs"])
def remote_url(request: pytest.FixtureRequest, ws: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "local":
        return str(ws / "remote-store")
    return bucket_url(request.param, request, monkeypatch)


# ---- 1. push, clone, byte for byte ----------------------------------------------


def test_push_clone_roundtrip_is_byte_identical(ws: Path, remote_url: str) -> None:
    local = ws / "a" / ".artifacts"
    for number, files in enumerate(VERSIONS):
        assert log(local, files) == f"v{number}"
    repo = Repository.open(str(local))
    remotes.add_remote(repo, "origin", remote_url)

    pushed = remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    assert pushed.objects_uploaded > 0 and pushed.bytes_uploaded > len(BIG_1) + len(BIG_2)
    assert f"{ENTITY}/{PROJECT}/artifacts/data/latest" in pushed.refs_updated
    assert not pushed.warnings
    remote = Repository.open(remote_url)
    report = fsck(remote)
    assert report.ok, report.problems
    assert report.refs == len(pushed.refs_updated)
    # Both ways objects travel: the big blobs loose, the small objects in packs.
    assert all(remote.storage.exists(blob_key(data)) for data in (BIG_1, BIG_2))
    assert remote.objects.packs()
    # Packs of blobs only travel as they are (same bytes, same name); the others are
    # re-packed so that trees land after their blobs.
    blob_packs = {p for p in repo.objects.packs() if kinds_in_pack(repo, p) == {"blob"}}
    assert blob_packs and blob_packs <= remote.objects.packs()

    again = remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    assert (again.objects_uploaded, again.bytes_uploaded, again.refs_updated) == (0, 0, [])

    clone = remotes.clone(remote_url, str(ws / "b"), policy=ARTIFACT_REFS)
    assert clone.url == str(ws / "b" / ".artifacts")
    for number, files in enumerate(VERSIONS):
        assert download(clone.url, f"data:v{number}") == files
    assert download(clone.url, "data:latest") == V2
    assert fsck(clone).ok
    assert blob_packs <= clone.objects.packs()


def test_a_push_to_an_emptied_remote_sends_everything_again(ws: Path, remote_url: str) -> None:
    """What we saw of a remote that has since been emptied (or replaced under the
    same URL) must not hold our refs back as if the remote had moved on."""
    local = ws / "a" / ".artifacts"
    log(local, V0)
    repo = Repository.open(str(local))
    remotes.add_remote(repo, "origin", remote_url)
    first = remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    remote = Repository.open(remote_url)
    for name in first.refs_updated:
        remote.refs.delete_if_equals(name, remote.refs.get(name))
    again = remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    assert sorted(again.refs_updated) == sorted(first.refs_updated) and again.behind == []
    assert (
        download(remotes.clone(remote_url, str(ws / "b"), policy=ARTIFACT_REFS).url, "data:latest")
        == V0
    )


def test_pointing_a_remote_at_another_store_forgets_what_we_saw_of_the_old_one(
    ws: Path,
) -> None:
    """Tracking refs describe one store. After `remote set-url` gives the name another
    URL, a push must not hold refs back because of what the old store held."""
    local = ws / "a" / ".artifacts"
    log(local, V0, name="data")
    log(local, V1, name="other")
    repo = Repository.open(str(local))
    old, new = str(ws / "old-remote"), str(ws / "new-remote")
    remotes.add_remote(repo, "origin", old)
    remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    remotes.add_remote(repo, "second", new)
    # the new store holds some of our refs
    remotes.push(repo, "second", ["other"], policy=ARTIFACT_REFS)
    remotes.add_remote(repo, "origin", old)  # the same URL again: nothing forgotten
    assert repo.refs.list("remotes/origin/")
    with pytest.raises(remotes.RemoteExistsError, match="remote set-url origin"):
        remotes.add_remote(repo, "origin", new)  # a typo must not redirect later pushes
    assert repo.refs.list("remotes/origin/")
    remotes.set_remote_url(repo, "origin", new)
    pushed = remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    assert f"{ENTITY}/{PROJECT}/artifacts/data/latest" in pushed.refs_updated
    assert pushed.behind == []
    assert download(new, "data:latest") == V0


def test_fetch_and_pull_from_a_missing_directory_fail_and_create_nothing(ws: Path) -> None:
    """Reading never creates a store: a mistyped path is an error, not an empty remote."""
    local = ws / "a" / ".artifacts"
    log(local, V0)
    repo = Repository.open(str(local))
    missing_dir = ws / "no-such-remote"
    remotes.add_remote(repo, "origin", str(missing_dir))
    for read in (remotes.fetch, functools.partial(remotes.pull, policy=ARTIFACT_REFS)):
        with pytest.raises(RemoteNotFoundError, match="no store at .*no-such-remote"):
            read(repo, "origin")
    assert not missing_dir.exists()
    remotes.push(repo, "origin", policy=ARTIFACT_REFS)  # a push is what creates a remote
    assert remotes.fetch(repo, "origin").objects_downloaded == 0


def test_clone_refuses_an_address_with_nothing_to_clone(ws: Path, remote_url: str) -> None:
    """A mistyped address must fail, not give an empty clone; and neither side is
    created or touched (a plain directory does not become a store)."""
    plain = ws / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    message = "holds no store" if "://" in remote_url else "is not a store"
    for url, expected in [(remote_url, message), (str(plain), "is not a store")]:
        with pytest.raises(RemoteNotFoundError, match=f"nothing to clone: .*{expected}"):
            remotes.clone(url, str(ws / "c"), policy=ARTIFACT_REFS)
        assert not (ws / "c").exists()
    assert os.listdir(plain) == ["notes.txt"]
    if "://" not in remote_url:
        assert not os.path.exists(remote_url)


def test_a_store_just_made_clones_empty_then_pulls_what_is_pushed_to_it(
    ws: Path, remote_url: str
) -> None:
    """A team makes its shared store (`artifacts init --store URL`) and each member clones
    it before anything is logged: the clone is an empty store whose origin is that one."""
    Repository.open(remote_url).update_config(lambda config: None)  # what init does
    laptop = remotes.clone(remote_url, str(ws / "laptop"), policy=ARTIFACT_REFS)
    assert list(laptop.refs.names("")) == []
    assert remotes.list_remotes(laptop)["origin"] == normalized_url(remote_url)
    other = ws / "other" / ".artifacts"
    log(other, V0)
    repo = Repository.open(str(other))
    remotes.add_remote(repo, "origin", remote_url)
    remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    remotes.pull(laptop, "origin", policy=ARTIFACT_REFS)
    assert download(ws / "laptop" / ".artifacts", "data:latest") == V0


def test_a_failed_clone_does_not_block_the_next(ws: Path, remote_url: str) -> None:
    """A clone that fails part way (here: a damaged blob on the remote) leaves no
    store in the directory, so the next clone, once the remote is repaired, works
    instead of saying the store already exists."""
    local = ws / "a" / ".artifacts"
    log(local, V0)
    log(local, V1)
    repo = Repository.open(str(local))
    remotes.add_remote(repo, "origin", remote_url)
    remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    remote = Repository.open(remote_url)
    key = blob_key(BIG_1)
    good = remote.storage.get(key)
    remote.storage.put(key, good[:-1] + bytes([good[-1] ^ 1]))

    with pytest.raises(CorruptObjectError):
        remotes.clone(remote_url, str(ws / "b"), policy=ARTIFACT_REFS)
    assert not (ws / "b" / ".artifacts").exists()

    remote.storage.put(key, good)
    clone = remotes.clone(remote_url, str(ws / "b"), policy=ARTIFACT_REFS)
    assert clone.url == str(ws / "b" / ".artifacts")
    assert os.listdir(ws / "b") == [".artifacts"]
    assert download(clone.url, "data:v0") == V0
    assert download(clone.url, "data:latest") == V1
    assert fsck(clone).ok


def kinds_in_pack(repo: Repository, pack: str) -> set[str]:
    return {
        objects.decode_header(repo.objects.get_raw(i))[0]
        for i, *_ in repo.objects.pack_entries(pack)
    }


def test_a_copy_reads_around_a_pack_repacked_away_since_it_looked(ws: Path) -> None:
    """A fetch does not lock the remote: a gc there may repack a pack we found. It
    publishes the live objects in a new pack before deleting the old one, so the copy
    reads them from there instead of failing."""
    src_url, dst_url = str(ws / "src"), str(ws / "dst")
    log(src_url, V1)
    src = Repository.open(src_url)
    roots = list(src.refs.list("").values())
    ids = list(transfer.missing(src.objects, Repository.open(dst_url).objects, roots))
    old_packs = src.objects.packs()  # loaded now, as a fetch would have
    gc = Repository.open(src_url).objects  # another process: repack everything, drop the old
    with gc.writer() as writer:
        for object_id in list(gc):
            if gc.pack_of(object_id) is not None:
                writer.add_raw(gc.get_raw(object_id), force=True)
    for pack in old_packs:
        gc.storage.delete(f"packs/{pack}.idx")
        gc.storage.delete(f"packs/{pack}.pack")
    dst = Repository.open(dst_url)
    copied = transfer.copy_objects(src.objects, dst.objects, ids)
    assert copied.objects == len(ids)
    assert dst.objects.has_many(ids) == set(ids)


def test_a_push_with_nothing_new_writes_nothing(ws: Path, monkeypatch) -> None:
    """It reads our refs there, finds them equal, and only brings our record of the
    remote up to date: no write."""
    local = Repository.open(str(ws / "a" / ".artifacts"))
    log(local.url, V1)
    url = str(ws / "remote-store")
    remotes.add_remote(local, "origin", url)
    remotes.push(local, "origin", policy=ARTIFACT_REFS)
    tracking = local.refs.list("remotes/")
    assert tracking
    for name, target in tracking.items():
        local.refs.set_if_equals(name, target, None)  # as if we had never pushed
    recording = DropsConnection(url, lambda key: False)
    monkeypatch.setattr(
        remotes.sync, "open_remote", lambda repo, name, create=False: Repository(recording)
    )
    again = remotes.push(local, "origin", policy=ARTIFACT_REFS)
    assert (again.objects_uploaded, again.refs_updated, recording.written) == (0, [], [])
    assert local.refs.list("remotes/") == tracking
    log(local.url, V2)  # something new: then it does send
    assert remotes.push(local, "origin", policy=ARTIFACT_REFS).refs_updated
    assert recording.written


# ---- 2. the seed's distributed example, every run writing straight to the bucket ----

UPSERT = """\
import artifacts

with artifacts.init() as run:
    artifact = artifacts.Artifact("dist", "dataset")
    artifact.add_file("shard-{i}.bin")
    artifact.add_dir("part")
    run.upsert_artifact(artifact, distributed_id="xyz")
"""

FINISH = """\
import artifacts

with artifacts.init() as run:
    artifact = artifacts.Artifact("dist", "dataset")
    artifact.add_file("final.txt")
    run.finish_artifact(artifact, distributed_id="xyz")
"""


def part_files(i: int) -> dict[str, bytes]:
    shard = random.Random(i).randbytes(LOOSE_THRESHOLD + i if i == 1 else 1000 + i)
    return {f"shard-{i}.bin": shard, f"part/run{i}/rows.csv": f"run,{i}\n".encode()}


@pytest.mark.parametrize("kind", ["s3-moto", "gcs"])
def test_distributed_runs_upsert_straight_into_a_bucket(
    kind: str, ws: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = bucket_url(kind, request, monkeypatch)
    monkeypatch.setenv("ARTIFACTS_STORE", url)
    procs = []
    expected: dict[str, bytes] = {"final.txt": b"the finisher's own file\n"}
    for i in (1, 2, 3):
        cwd = ws / f"machine{i}"
        files = part_files(i)
        write_tree(cwd, files)
        expected[f"shard-{i}.bin"] = files[f"shard-{i}.bin"]
        expected[f"run{i}/rows.csv"] = files[f"part/run{i}/rows.csv"]
        procs.append(python("-c", UPSERT.replace("{i}", str(i)), cwd=cwd))
    for proc in procs:
        wait_ok(proc, timeout=120)
    finisher = ws / "finisher"
    write_tree(finisher, {"final.txt": expected["final.txt"]})
    wait_ok(python("-c", FINISH, cwd=finisher), timeout=120)

    assert download(url, "dist:v0") == expected
    repo = Repository.open(url)
    assert not repo.refs.list(f"{ENTITY}/{PROJECT}/dist/"), "the parts were consumed"
    assert fsck(repo).ok


# ---- 3. divergence: refused, pulled, rebased, pushed; nothing lost --------------

HEAD = f"{ENTITY}/{PROJECT}/artifacts/data/latest"
BEST = f"{ENTITY}/{PROJECT}/artifacts/data/aliases/best"
V3 = {**V2, "train/a.csv": b"one's v3\n"}
V4 = {**V2, "train/a.csv": b"two's v3\n"}


def test_diverged_push_is_refused_then_rebased_and_nothing_is_lost(
    ws: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = bucket_url("s3-moto", request, monkeypatch)
    seed = Repository.open(str(ws / "seed" / ".artifacts"))
    log(seed.url, V0)
    remotes.add_remote(seed, "origin", url)
    remotes.push(seed, "origin", policy=ARTIFACT_REFS)
    one = remotes.clone(url, str(ws / "one"), policy=ARTIFACT_REFS)
    two = remotes.clone(url, str(ws / "two"), policy=ARTIFACT_REFS)

    assert log(one.url, V1) == "v1"
    remotes.push(one, "origin", policy=ARTIFACT_REFS)
    assert log(two.url, V2, aliases=["best"]) == "v1"  # the same number, other content
    twos_v1 = head(two.url)
    with pytest.raises(PushRejectedError, match=r"artifacts pull") as refused:
        remotes.push(two, "origin", policy=ARTIFACT_REFS)
    assert refused.value.names == [HEAD]
    assert isinstance(refused.value, CasError)
    remote = Repository.open(url)
    assert remote.refs.read(HEAD) == head(one.url) and remote.refs.read(BEST) is None

    pulled = remotes.pull(two, "origin", policy=ARTIFACT_REFS)
    assert pulled.diverged == [HEAD] and HEAD not in pulled.fast_forwarded
    assert head(two.url) == twos_v1  # pull changes nothing of a diverged artifact

    assert remotes.rebase(two, "origin", policy=ARTIFACT_REFS) == [HEAD]
    rebased = two.objects.get_commit(head(two.url))
    assert rebased.parents == (head(one.url),)
    assert rebased.meta["version"] == 2 and rebased.meta["rebased_from"] == twos_v1.hex()
    assert two.refs.read(BEST) == head(two.url)  # the alias followed its version

    pushed = remotes.push(two, "origin", policy=ARTIFACT_REFS)
    assert HEAD in pushed.refs_updated and BEST in pushed.refs_updated
    assert remote.refs.read(HEAD) == head(two.url)
    assert fsck(remote).ok
    # Every version of both sides is on the remote, by content.
    check = remotes.clone(url, str(ws / "check"), policy=ARTIFACT_REFS)
    assert [download(check.url, f"data:v{n}") for n in range(3)] == [V0, V1, V2]
    assert download(check.url, "data:best") == V2
    assert remotes.pull(one, "origin", policy=ARTIFACT_REFS).fast_forwarded == [HEAD]

    # --force overwrites a remote that moved on, with a warning; the dropped version's
    # objects stay on the remote until gc.
    log(one.url, V3)
    remotes.push(one, "origin", policy=ARTIFACT_REFS)
    dropped = head(one.url)
    log(two.url, V4)
    with pytest.warns(UserWarning, match=f"forced {HEAD}"):
        forced = remotes.push(two, "origin", force=True, policy=ARTIFACT_REFS)
    assert forced.warnings and "dropped" in forced.warnings[0]
    assert remote.refs.read(HEAD) == head(two.url) != dropped
    assert remote.objects.has(dropped)


def test_push_does_not_undo_what_the_remote_changed_after_our_pull(ws: Path) -> None:
    """A ref we pulled and did not change is not ours to send back: sending our stale copy
    would revert a run record, a distributed part or a head that moved on the remote."""
    url = str(ws / "remote-store")
    shard1, shard2 = write_tree(ws / "s1", {"f": b"1"}), write_tree(ws / "s2", {"g": b"2"})
    with artifacts.init(store=url) as run:  # a run writing straight to the shared store
        log(url, V0)
        part = artifacts.Artifact("dist", "dataset")
        part.add_dir(str(shard1))
        run.upsert_artifact(part, distributed_id="d")
        # pulls the run while it is going on
        two = remotes.clone(url, str(ws / "two"), policy=ARTIFACT_REFS)
        more = artifacts.Artifact("dist", "dataset")
        more.add_dir(str(shard2))
        run.upsert_artifact(more, distributed_id="d")
    log(url, V1)  # and the remote's head moves on
    part_ref = f"{ENTITY}/{PROJECT}/dist/dist/d/{run.id}"
    run_ref = f"{ENTITY}/{PROJECT}/runs/{run.id}"
    remote = Repository.open(url)
    newer = {ref: remote.refs.read(ref) for ref in (part_ref, run_ref, HEAD)}
    assert all(two.refs.read(ref) not in (None, newer[ref]) for ref in newer)

    log(two.url, {"x": b"x"}, name="other")  # two's own change
    pushed = remotes.push(two, "origin", policy=ARTIFACT_REFS)
    assert f"{ENTITY}/{PROJECT}/artifacts/other/latest" in pushed.refs_updated
    assert sorted(pushed.behind) == sorted(newer)
    assert {ref: remote.refs.read(ref) for ref in newer} == newer  # nothing reverted

    pulled = remotes.pull(two, "origin", policy=ARTIFACT_REFS)
    assert pulled.fast_forwarded == [HEAD]
    assert {ref: two.refs.read(ref) for ref in newer} == newer

    # The parts are merged into a version on the remote: pull drops them here too
    # (a stale part pushed back would be merged into the next version).
    with artifacts.init(store=url) as finisher:
        finisher.finish_artifact(artifacts.Artifact("dist", "dataset"), distributed_id="d")
    pulled = remotes.pull(two, "origin", policy=ARTIFACT_REFS)
    assert f"{ENTITY}/{PROJECT}/artifacts/dist/latest" in pulled.fast_forwarded
    assert two.refs.read(part_ref) is None
    assert download(two.url, "dist:v0") == {"f": b"1", "g": b"2"}


def test_a_forced_push_reverts_no_artifact_it_did_not_change(ws: Path) -> None:
    """`push --force` to overwrite one diverged artifact must not send back every stale
    ref with it: another artifact the remote moved on since our pull keeps its versions."""
    url = str(ws / "remote-store")
    log(url, V0)
    log(url, V0, name="model")
    mine = remotes.clone(url, str(ws / "mine"), policy=ARTIFACT_REFS)
    log(url, V1)
    log(url, V1, name="model")  # someone else's new model, which we never pulled
    log(mine.url, V2)  # our data diverged from the remote's
    remote = Repository.open(url)
    model = f"{ENTITY}/{PROJECT}/artifacts/model/latest"
    theirs = remote.refs.read(model)

    with pytest.warns(UserWarning, match=f"forced {HEAD}"):
        forced = remotes.push(mine, "origin", force=True, policy=ARTIFACT_REFS)
    assert remote.refs.read(HEAD) == head(mine.url)
    assert remote.refs.read(model) == theirs and model in forced.behind
    assert download(url, "model:latest") == V1

    # Named, a ref is forced even where only the remote changed it.
    remotes.push(mine, "origin", ["model"], force=True, policy=ARTIFACT_REFS)
    assert remote.refs.read(model) == head(mine.url, "model") != theirs


def test_a_refused_head_holds_back_only_its_own_aliases(ws: Path) -> None:
    url = str(ws / "remote-store")
    log(url, V0, entity="x")
    mine = remotes.clone(url, str(ws / "mine"), policy=ARTIFACT_REFS)
    log(url, V1, entity="x")  # the remote moves on...
    log(mine.url, V2, entity="x")  # ...and so do we: x's data diverged
    log(mine.url, V0, entity="y", aliases=["best"])  # same name, another namespace
    with pytest.raises(PushRejectedError) as refused:
        remotes.push(mine, "origin", policy=ARTIFACT_REFS)
    assert refused.value.names == ["x/proj/artifacts/data/latest"]
    remote = Repository.open(url)
    assert remote.refs.read("y/proj/artifacts/data/aliases/best") == head(mine.url, entity="y")


def test_an_artifact_called_runs_is_an_artifact_like_any_other(ws: Path) -> None:
    """Its refs hold "/runs/" but are no run records: a push of another name leaves
    them here, and its alias that the remote removed is removed here too."""
    local, url = ws / "a" / ".artifacts", str(ws / "remote-store")
    log(local, V0, name="runs", aliases=["best"])
    log(local, V1)
    repo = Repository.open(str(local))
    remotes.add_remote(repo, "origin", url)
    pushed = remotes.push(repo, "origin", ["data"], policy=ARTIFACT_REFS)
    assert [ref for ref in pushed.refs_updated if "/artifacts/" in ref] == [HEAD]

    remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    alias = f"{ENTITY}/{PROJECT}/artifacts/runs/aliases/best"
    remote = Repository.open(url)
    remote.refs.delete_if_equals(alias, remote.refs.get(alias))
    remotes.pull(repo, "origin", policy=ARTIFACT_REFS)
    assert repo.refs.read(alias) is None


# ---- 4. an interrupted push, re-run, sends only what is missing -------------------


class DropsConnection(LocalStorage):
    """A remote whose first write of a key matching ``drops`` fails, as if the network
    dropped: a test-only subclass of the destination storage, nothing else is touched."""

    def __init__(self, root: str, drops: Callable[[str], bool]) -> None:
        super().__init__(root)
        self.drops: Callable[[str], bool] | None = drops
        self.written: list[str] = []

    def _check(self, key: str) -> None:
        if self.drops is not None and self.drops(key):
            self.drops = None
            raise ConnectionResetError(f"connection reset while sending {key}")

    def put(self, key: str, data: bytes, mode: Any = "overwrite") -> None:
        self._check(key)
        super().put(key, data, mode)
        self.written.append(key)

    def put_file(self, key: str, local_path: str, mode: Any = "overwrite") -> None:
        self._check(key)
        super().put_file(key, local_path, mode)
        self.written.append(key)

    def move_in(self, key: str, local_path: str, mode: Any = "overwrite") -> None:
        try:
            self._check(key)
        except ConnectionResetError:
            os.unlink(local_path)  # move_in consumes its file, whatever happens
            raise
        super().move_in(key, local_path, mode)
        self.written.append(key)


@pytest.mark.parametrize("lost", ["first pack", "one big blob"])
def test_interrupted_push_rerun_sends_only_the_rest(
    ws: Path, lost: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = Repository.open(str(ws / "a" / ".artifacts"))
    for files in VERSIONS:
        log(local.url, files)
    url = str(ws / "remote-store")
    remotes.add_remote(local, "origin", url)
    roots = list(local.refs.list("").values())
    total = len(set(transfer.missing(local.objects, Repository.open(url).objects, roots)))

    if lost == "first pack":
        flaky = DropsConnection(url, lambda key: key.endswith(".pack"))
    else:
        flaky = DropsConnection(url, lambda key: key == blob_key(BIG_2))
    # The seam: push opens its remote by name; hand it the flaky storage instead.
    monkeypatch.setattr(
        remotes.sync, "open_remote", lambda repo, name, create=False: Repository(flaky)
    )
    with pytest.raises(ConnectionResetError):
        remotes.push(local, "origin", policy=ARTIFACT_REFS)
    monkeypatch.undo()

    remote = Repository.open(url)
    landed = [k for k in flaky.written if k.startswith("blobs/")]
    landed = [k for k in landed if remote.storage.stat(k).size > LOOSE_THRESHOLD]
    assert len(landed) == (2 if lost == "first pack" else 1)
    assert not remote.objects.packs()
    assert not remote.refs.list(""), "no ref moved before its objects were all there"
    assert not local.refs.list("remotes/"), "nor did our record of the remote"

    again = remotes.push(local, "origin", policy=ARTIFACT_REFS)
    assert again.objects_uploaded == total - len(landed)
    assert HEAD in again.refs_updated
    assert fsck(remote).ok
    assert remotes.push(local, "origin", policy=ARTIFACT_REFS).objects_uploaded == 0


# ---- 5. one bucket, many teams: IAM policies, enforced by moto ---------------------

SHARING_DOC = ROOT / "docs" / "sharing.md"
TEAMS = ("vision", "speech")  # entities; docs/sharing.md writes its policies for "vision"


def doc_policies() -> dict[str, str]:
    """The policies of docs/sharing.md, as written: the shared pool's, then the per-team one's."""
    blocks = re.findall(r"```json\n(.*?)```", SHARING_DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 2, "docs/sharing.md has one policy per mode"
    for block in blocks:
        json.loads(block)
    return {"shared": blocks[0], "per-team": blocks[1]}


def registry_statements() -> dict[str, dict[str, Any]]:
    """The statements of docs/sharing.md's "Registries" section, by Sid, as written."""
    text = SHARING_DOC.read_text(encoding="utf-8")
    section = text.split("### Registries", 1)[1].split("\n## ", 1)[0]
    statements = [json.loads(b) for b in re.findall(r"```text\n(.*?)```", section, re.S)]
    return {statement["Sid"]: statement for statement in statements}


# Users of the shared pool with registry statements added: user -> (the team whose
# shared-pool policy it has, the Sids of docs/sharing.md's registry statements it adds).
REGISTRY_USERS = {
    "admin": ("ops", ("AdministerFineTuned",)),
    "vision": ("vision", ("LinkIntoFineTuned",)),
    "audio": ("audio", ("HideFineTuned",)),  # fine-tuned is restricted: audio may not see it
}


def policy_for(template: str, bucket: str, team: str, extra: tuple[str, ...] = ()) -> str:
    """The doc's policy for ``team`` on ``bucket`` (the doc says "bucket" and "vision"),
    with the doc's registry statements ``extra`` added."""
    policy = json.loads(template.replace("vision", team))
    policy["Statement"] += [registry_statements()[sid] for sid in extra]
    return json.dumps(policy).replace("arn:aws:s3:::bucket", f"arn:aws:s3:::{bucket}")


class IAMBucket:
    def __init__(self, server: S3Server, bucket: str, keys: dict[tuple[str, str], Any]) -> None:
        self.server, self.bucket, self.keys = server, bucket, keys

    def act_as(self, monkeypatch: pytest.MonkeyPatch, mode: str, team: str) -> None:
        """Be ``team``'s user under ``mode``'s policy, through the environment."""
        key, secret = self.keys[(mode, team)]
        use_s3_env(monkeypatch, self.server.endpoint_url, key, secret)


@pytest.fixture(scope="module")
def iam_bucket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IAMBucket]:
    """A bucket on a moto server of its own, with IAM enforced: one user per team and
    mode, each with exactly the policy docs/sharing.md gives, and the users of
    REGISTRY_USERS (mode "registry"). (A server of its own:
    enforcement is process-wide in moto, and the session's moto is shared.)"""
    boto3 = pytest.importorskip("boto3")
    with moto_process(tmp_path_factory.mktemp("moto-iam")) as server:
        root = {
            "endpoint_url": server.endpoint_url,
            "aws_access_key_id": S3_KEY,
            "aws_secret_access_key": S3_SECRET,
            "region_name": "us-east-1",
        }
        bucket = f"bucket-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", **root).create_bucket(Bucket=bucket)
        iam = boto3.client("iam", **root)
        policies = doc_policies()
        users = {
            (mode, team): policy_for(template, bucket, team)
            for mode, template in policies.items()
            for team in TEAMS
        }
        for user, (team, extra) in REGISTRY_USERS.items():
            users[("registry", user)] = policy_for(policies["shared"], bucket, team, extra)
        keys = {}
        for (mode, team), policy in users.items():
            user = f"{team}-{mode}"
            iam.create_user(UserName=user)
            iam.put_user_policy(
                UserName=user, PolicyName=f"artifacts-{mode}", PolicyDocument=policy
            )
            made = iam.create_access_key(UserName=user)["AccessKey"]
            keys[(mode, team)] = (made["AccessKeyId"], made["SecretAccessKey"])
        request = urllib.request.Request(
            f"{server.endpoint_url}/moto-api/reset-auth",
            data=b"0",  # the count of requests still let through unchecked
            headers={"Content-Type": "text/plain"},  # not a form: moto reads the raw body
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200  # from now on every request is checked
        yield IAMBucket(server, bucket, keys)


def big_loose(url: str) -> set[bytes]:
    store = Repository.open(url).objects
    return {i for i in store.iter_loose() if store.storage.exists(content_key(i))}


@pytest.mark.xdist_group("iam")  # under pytest-xdist: one worker starts its moto
def test_shared_pool_each_team_writes_only_its_own_refs(
    iam_bucket: IAMBucket, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = f"s3://{iam_bucket.bucket}/store"
    iam_bucket.act_as(monkeypatch, "shared", "vision")
    with pytest.raises(AccessDeniedError):  # enforcement is on: no policy grants this
        Repository.open(pool).storage.put("config.json", b"{}")

    # Straight into the pool, in its own namespace.
    assert log(pool, V0, entity="vision") == "v0"
    # From a local store: its own refs go; a ref in the other team's namespace does not.
    local = Repository.open(str(ws / "vision" / ".artifacts"))
    log(local.url, V1, name="model", entity="vision")
    log(local.url, {"x.txt": b"not ours"}, name="data", entity="speech")
    remotes.add_remote(local, "origin", pool)
    with pytest.raises(RemoteAccessDeniedError, match="speech/proj/artifacts/data/latest") as no:
        remotes.push(local, "origin", policy=ARTIFACT_REFS)
    assert isinstance(no.value, CasError) and "docs/sharing.md" in str(no.value)
    shared = Repository.open(pool)
    assert shared.refs.read("vision/proj/artifacts/model/latest") == head(
        local.url, "model", "vision"
    )
    assert not shared.refs.list("speech/")
    with pytest.raises(AccessDeniedError):  # nor straight into the other namespace
        log(pool, V0, entity="speech")
    assert not shared.refs.list("speech/")
    assert fsck(shared).ok

    # The other team: its own namespace, everyone's data to read, and common files
    # stored once.
    iam_bucket.act_as(monkeypatch, "shared", "speech")
    before = big_loose(pool)
    assert log(pool, V0, entity="speech") == "v0"
    assert big_loose(pool) == before
    assert download(pool, "vision/proj/data:v0", entity="speech") == V0
    with pytest.raises(PermissionError):
        log(pool, V2, entity="vision")
    assert Repository.open(pool).refs.read("vision/proj/artifacts/data/latest") == head(
        pool, "data", "vision"
    )

    # A clone of the whole pool holds the other team's refs too; when that team moves
    # on, a push of our own work leaves theirs alone instead of failing on them.
    iam_bucket.act_as(monkeypatch, "shared", "vision")
    clone = remotes.clone(pool, str(ws / "vision-clone"), policy=ARTIFACT_REFS)
    iam_bucket.act_as(monkeypatch, "shared", "speech")
    log(pool, V1, entity="speech")
    iam_bucket.act_as(monkeypatch, "shared", "vision")
    log(clone.url, V2, entity="vision")
    pushed = remotes.push(clone, "origin", policy=ARTIFACT_REFS)
    assert "vision/proj/artifacts/data/latest" in pushed.refs_updated
    assert "speech/proj/artifacts/data/latest" in pushed.behind


OBJECT_PREFIXES = ("blobs/", "objects/", "packs/")


def test_the_shared_pool_policy_lets_objects_only_be_created() -> None:
    """Every team may write blobs/, objects/ and packs/: the shared pool's policy must
    let them create keys there, never replace one (else a team could put garbage over
    another team's blob). S3 enforces this with the s3:if-none-match condition key;
    moto does not evaluate it, so this checks the policy as written, and
    test_shared_pool_objects_are_created_never_replaced checks our writes meet it."""
    policy = json.loads(doc_policies()["shared"])
    grants = [
        statement
        for statement in policy["Statement"]
        if statement["Effect"] == "Allow"
        and "s3:PutObject" in statement["Action"]
        and any(
            prefix in resource for resource in statement["Resource"] for prefix in OBJECT_PREFIXES
        )
    ]
    assert grants
    create_only = {"Null": {"s3:if-none-match": "false"}}
    parts_only = {"Bool": {"s3:ObjectCreationOperation": "false"}}
    for statement in grants:
        assert statement.get("Condition") in (create_only, parts_only), statement
        # Every key the statement grants is one that is only ever created.
        assert all(
            any(f"/store/{prefix}*" in resource for prefix in OBJECT_PREFIXES)
            for resource in statement["Resource"]
        ), statement


@pytest.mark.xdist_group("iam")  # under pytest-xdist: one worker starts its moto
def test_shared_pool_objects_are_created_never_replaced(
    iam_bucket: IAMBucket, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What moto does not check of the shared policy (the s3:if-none-match condition),
    checked on the requests themselves: every object write of two teams carries
    If-None-Match, so the create-only policy lets their work through; and with it, a
    team cannot replace another team's blob."""
    pool = f"s3://{iam_bucket.bucket}/store"
    files = {"big.bin": os.urandom(LOOSE_THRESHOLD + 5), "small.txt": os.urandom(20)}
    with FaultProxy(iam_bucket.server.endpoint_url, lambda request: None) as proxy:
        for team in TEAMS:
            key, secret = iam_bucket.keys[("shared", team)]
            use_s3_env(monkeypatch, proxy.endpoint_url, key, secret)
            log(pool, files, name="created", entity=team)
        writes = [
            r
            for r, _ in proxy.log
            if r.method in ("PUT", "POST")
            and any(f"/store/{prefix}" in r.path for prefix in OBJECT_PREFIXES)
        ]
        assert any("/store/blobs/" in r.path for r in writes)
        # Parts of a multipart upload take no condition; its completion does.
        assert all(
            "if-none-match" in r.headers
            for r in writes
            if "partNumber=" not in r.path and not r.path.endswith("?uploads")
        ), [r.path for r in writes if "if-none-match" not in r.headers]

        store = Repository.open(pool).storage  # as the last team, "speech"
        theirs = blob_key(files["big.bin"])
        with pytest.raises(PreconditionFailedError):
            store.put(theirs, b"garbage", mode="create")
        assert store.get(theirs) == files["big.bin"]
        iam_bucket.act_as(monkeypatch, "shared", "vision")
        assert download(pool, "vision/proj/created:v0", entity="vision") == files


@pytest.mark.xdist_group("iam")  # under pytest-xdist: one worker starts its moto
def test_a_registry_is_fenced_by_its_statements(
    iam_bucket: IAMBucket, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/sharing.md's registry statements, as written, on the shared pool: the admin
    creates registry fine-tuned of acme, vision links into it, speech (no statement)
    cannot, only the admin may change its settings, and audio, denied it, cannot read it."""
    pool = f"s3://{iam_bucket.bucket}/store"
    net = {"weights.bin": b"w" * 5000, "config.json": b"{}"}
    target = "acme/wandb-registry-fine-tuned/detector"
    settings_key = "store/refs/acme/wandb-registry-fine-tuned/registry"
    detector_refs = "store/refs/acme/wandb-registry-fine-tuned/artifacts/detector"

    def api(entity: str) -> artifacts.Api:
        return artifacts.Api({"entity": entity, "project": PROJECT}, store=pool)

    def registry_refs() -> dict[str, bytes]:
        return Repository.open(pool).refs.list("acme/wandb-registry-fine-tuned/")

    iam_bucket.act_as(monkeypatch, "registry", "vision")
    with pytest.raises(AccessDeniedError, match=settings_key):  # a linker creates no registry
        api("vision").create_registry("fine-tuned", "organization", organization="acme")
    assert registry_refs() == {}
    iam_bucket.act_as(monkeypatch, "registry", "admin")
    api("ops").create_registry("fine-tuned", "organization", organization="acme")
    assert list(registry_refs()) == ["acme/wandb-registry-fine-tuned/registry"]

    # vision links its version; the link reads back as the source's files.
    iam_bucket.act_as(monkeypatch, "registry", "vision")
    log(pool, net, name="net", entity="vision")
    linked = api("vision").artifact("vision/proj/net:v0").link(target, aliases=["staging"])
    assert linked.qualified_name == f"{target}:v0"
    read = api("vision").artifact(f"{target}:staging")
    assert read.source_qualified_name == "vision/proj/net:v0"
    assert tree_of(read.download(str(ws / "linked"))) == net
    linked_refs = registry_refs()

    # speech, without the statement, reads the registry and cannot link into it.
    iam_bucket.act_as(monkeypatch, "shared", "speech")
    log(pool, {"asr.bin": b"speech"}, name="asr", entity="speech")
    assert api("speech").artifact(f"{target}:v0").source_qualified_name == "vision/proj/net:v0"
    with pytest.raises(AccessDeniedError, match=f"{detector_refs}/latest") as refused:
        api("speech").artifact("speech/proj/asr:v0").link(target)
    assert "docs/sharing.md" in str(refused.value) and "\n" not in str(refused.value)
    assert registry_refs() == linked_refs

    # Its settings are the admin's alone.
    iam_bucket.act_as(monkeypatch, "registry", "vision")
    registry = api("vision").registry("fine-tuned", organization="acme")
    registry.description = "vision's now"
    with pytest.raises(AccessDeniedError, match=settings_key):
        registry.save()
    assert registry_refs() == linked_refs
    iam_bucket.act_as(monkeypatch, "registry", "admin")
    registry = api("ops").registry("fine-tuned", organization="acme")
    registry.description = "models fine-tuned on acme's data"
    registry.visibility = "restricted"
    registry.save()
    assert api("ops").registry("fine-tuned", "acme").description == registry.description

    # Restricted: audio, denied the registry's refs, cannot read it; the rest of the
    # pool it reads as before.
    iam_bucket.act_as(monkeypatch, "registry", "audio")
    with pytest.raises(AccessDeniedError, match=settings_key):
        api("audio").registry("fine-tuned", organization="acme")
    with pytest.raises(AccessDeniedError, match=detector_refs):
        api("audio").artifact(f"{target}:staging")
    assert [r.name for r in api("audio").registries("acme")] == ["dataset", "model"]
    assert download(pool, "vision/proj/net:v0", entity="audio") == net
    iam_bucket.act_as(monkeypatch, "shared", "speech")
    assert [r.name for r in api("speech").registries("acme")] == ["dataset", "fine-tuned", "model"]


@pytest.mark.xdist_group("iam")  # under pytest-xdist: one worker starts its moto
def test_pool_per_team_fences_everything(
    iam_bucket: IAMBucket, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, theirs = (f"s3://{iam_bucket.bucket}/teams/{team}" for team in TEAMS)
    iam_bucket.act_as(monkeypatch, "per-team", "speech")
    assert log(theirs, V1, entity="speech") == "v0"

    iam_bucket.act_as(monkeypatch, "per-team", "vision")
    assert log(mine, V0, entity="vision") == "v0"
    local = Repository.open(str(ws / "vision" / ".artifacts"))
    log(local.url, V2, name="model", entity="vision")
    remotes.add_remote(local, "origin", mine)
    remotes.add_remote(local, "speech", theirs)
    assert (
        "vision/proj/artifacts/model/latest"
        in remotes.push(local, "origin", policy=ARTIFACT_REFS).refs_updated
    )
    assert remotes.pull(local, "origin", policy=ARTIFACT_REFS).fast_forwarded == [
        "vision/proj/artifacts/data/latest"
    ]

    with pytest.raises(RemoteAccessDeniedError, match="refused to let you push") as no:
        remotes.push(local, "speech", policy=ARTIFACT_REFS)
    assert str(no.value).count("docs/sharing.md") == 1  # the storage's error adds no second
    with pytest.raises(RemoteAccessDeniedError, match="refused to let you read"):
        remotes.fetch(local, "speech")
    with pytest.raises(PermissionError):
        log(theirs, V0, entity="vision")
    with pytest.raises(PermissionError):
        download(theirs, "speech/proj/data:v0", entity="vision")
    assert fsck(Repository.open(mine)).ok

    iam_bucket.act_as(monkeypatch, "per-team", "speech")
    assert download(theirs, "speech/proj/data:latest", entity="speech") == V1
    assert Repository.open(theirs).refs.list("vision/") == {}


def older_form_version(root: Path) -> tuple[Repository, objects.Blob]:
    """A store whose only version holds a large blob in the older form: its whole
    bytes under objects/, as stores written before blobs/ existed keep them."""
    repo = Repository(LocalStorage(str(root)))
    blob = objects.Blob(os.urandom(LOOSE_THRESHOLD + 9))
    repo.storage.put(loose_key(blob.id), blob.to_bytes())
    tree = objects.Tree((objects.TreeEntry("big.bin", "blob", blob.id, len(blob.data)),))
    commit = objects.Commit(repo.objects.put(tree))
    repo.refs.set_if_equals("e/p/artifacts/old/latest", None, repo.objects.put(commit))
    return repo, blob


def test_a_large_blob_of_the_older_form_arrives_as_its_content(tmp_path: Path) -> None:
    old, blob = older_form_version(tmp_path / "old")
    new = Repository(LocalStorage(str(tmp_path / "new")))
    copied = transfer.copy_objects(old.objects, new.objects, [blob.id])
    assert copied.bytes == len(blob.data)
    assert new.storage.get(content_key(blob.id)) == blob.data
    assert not new.storage.exists(loose_key(blob.id))


def test_repair_replaces_a_damaged_older_form_blob_with_its_content(tmp_path: Path) -> None:
    local, blob = older_form_version(tmp_path / "local")
    origin = Repository(LocalStorage(str(tmp_path / "origin")))
    transfer.copy_objects(local.objects, origin.objects, list(local.objects))
    whole = bytearray(blob.to_bytes())
    whole[-1] ^= 1
    local.storage.put(loose_key(blob.id), bytes(whole))
    assert [p.problem for p in fsck(local).problems] == ["corrupt"]
    result = transfer.repair(local, origin)
    assert result.ok and result.repaired == [blob.id.hex()]
    assert local.storage.get(content_key(blob.id)) == blob.data
    assert not local.storage.exists(loose_key(blob.id))  # the damaged copy is gone


# ---- 6. answers lost on the way back ----------------------------------------------


def lose_first_write_of_each_ref() -> Callable[[Request], Action]:
    """Lose the answer of the first conditional write of each ref (locks aside)."""
    seen: set[str] = set()

    def fault(request: Request) -> Action:
        path = unquote(request.path)
        match = re.search(r"/refs/([^?&]+)", path)
        if not request.conditional() or match is None or match[1].startswith("locks/"):
            return None
        if match[1] in seen:
            return None
        seen.add(match[1])
        return "lose-response"

    return fault


@pytest.fixture
def lossy_url(
    moto_server: S3Server, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, FaultProxy]]:
    """A fresh bucket store on moto, reached through a proxy that loses answers to ref
    writes. (The ref-level test of the same in test_remote_backends.py runs on every
    server; this one is about what the layers above make of it.)"""
    spec = new_s3_spec(moto_server)
    with FaultProxy(moto_server.endpoint_url, lose_first_write_of_each_ref()) as proxy:
        use_s3_env(monkeypatch, proxy.endpoint_url, moto_server.key, moto_server.secret)
        yield spec["url"], proxy


def test_writes_whose_answers_were_lost_count_once(
    lossy_url: tuple[str, FaultProxy], ws: Path
) -> None:
    """A ref write that landed but was answered 500 is retried by the client, and the
    retry fails its condition. That must read as the success it was: no version
    twice, none missing from its run's record, no push rejected by its own write."""
    url, proxy = lossy_url
    contents = [{"a.txt": str(number).encode()} for number in range(2)]
    for number, files in enumerate(contents):
        assert log(url, files) == f"v{number}"
    lost = {unquote(r.path) for r in proxy.faults()}
    assert any("artifacts/data/latest" in p for p in lost) and any("runs/" in p for p in lost)

    store = Repository.open(url)
    registry = Registry(store)
    versions = list(registry.history(registry.head(ENTITY, PROJECT, "data")))
    assert [v.number for v in versions] == [1, 0]
    logged = [c for run in registry.runs(ENTITY, PROJECT) for c in run.logged]
    assert sorted(logged) == sorted(v.commit_id.hex() for v in versions)
    assert download(url, "data:v0") == contents[0]

    local = Repository.open(str(ws / "a" / ".artifacts"))
    log(local.url, contents[0], name="model")
    remotes.add_remote(local, "origin", url)
    pushed = remotes.push(local, "origin", policy=ARTIFACT_REFS)
    assert f"{ENTITY}/{PROJECT}/artifacts/model/latest" in pushed.refs_updated
    again = remotes.push(local, "origin", policy=ARTIFACT_REFS)
    assert (again.refs_updated, again.behind) == ([], [])
    assert store.refs.read(f"{ENTITY}/{PROJECT}/artifacts/model/latest") == head(local.url, "model")


def test_a_copy_holds_a_batch_of_objects_not_all_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21: a push of a million files peaked at 849 MB, holding sets and lists of
    every id sent, a table of every packed object and whole packs. It now walks and
    copies a batch at a time: its peak follows the batch, not the object count."""
    count = 40_000
    src = Repository(LocalStorage(str(tmp_path / "src")))
    with src.objects.writer() as writer:
        entries = [
            objects.TreeEntry(f"f{i:07d}", "blob", writer.add(objects.Blob(b"%016d" % i)), 16)
            for i in range(count)
        ]
        found = pages.build(writer, entries)
        assert found is not None
        commit = writer.add(objects.Commit(found[0]))
    del entries, found
    monkeypatch.setattr(transfer, "BATCH", 2_000)  # packs of more than SMALL_PACK objects
    src = Repository.open(src.url)  # as a push opens it: nothing loaded yet
    dst = Repository(LocalStorage(str(tmp_path / "dst")))
    tracemalloc.start()
    try:
        sent = transfer.copy_objects(
            src.objects, dst.objects, transfer.missing(src.objects, dst.objects, [commit])
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sent.objects >= count + 2
    # The pack indexes of both sides stay loaded (44 bytes an object each): about 190
    # bytes an object in all here; a set or a list of every id sent (100 bytes an id or
    # more) would not fit. Before: 1,240.
    assert peak < count * 250, f"{peak / count:.0f} bytes an object"
    assert fsck(dst).problems == []
    assert Repository.open(dst.url).objects.has(commit)
