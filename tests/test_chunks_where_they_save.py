"""Large files as chunks where that saves, the default (issue 22): a first log into a
local store stores a large file whole (as fast as storing goes), a file replacing a
large one at its path is stored as chunks and the one it replaces is converted, and a
log or a copy into a bucket brings large files as chunks; so a changed file costs only
the chunks it changed."""

from __future__ import annotations

import os
import random
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

import artifacts
import remotes
from artifacts.refpolicy import ARTIFACT_REFS
from cas import Repository, chunked, keys
from cas.fsck import fsck
from cas.objects import Blob
from tests.helpers import ENTITY, PROJECT
from tests.test_remotes import bucket_url

THRESHOLD = 1 << 20
SIZE = 4 * THRESHOLD
AROUND_AN_EDIT = 4 * chunked.MAX_CHUNK + 20_000  # the chunks around it, a list, a tree


def stored_bytes(repo: Repository) -> int:
    return sum(repo.storage.stat(k).size for k in repo.storage.list(""))


def changed_store(path: Path) -> str:
    """A store chunking where that saves, from THRESHOLD up (16 MiB by default)."""
    Repository.open(str(path)).set_chunking("changed", THRESHOLD)
    return str(path)


def log(store: str, path: Path, name: str = "model", as_dir: bool = False) -> None:
    with artifacts.init(store=store, entity=ENTITY, project=PROJECT, job_type="train") as run:
        model = artifacts.Artifact(name, "model")
        model.add_dir(str(path)) if as_dir else model.add_file(str(path), name="weights.bin")
        run.log_artifact(model)


def edits(data: bytes) -> dict[str, bytes]:
    """Edits by the same bytes on every run: where an edit's chunks end again depends on
    them (a run of chunks cut at their greatest length ends only at a content-defined cut)."""
    middle, noise = len(data) // 2, random.Random(len(data)).randbytes(THRESHOLD // 4)
    return {
        "middle": data[:middle] + noise + data[middle + THRESHOLD // 4 :],
        "start": noise[:100] + data,
    }


def test_a_new_store_chunks_large_files_only_where_that_saves(tmp_path):
    repo = Repository.open(str(tmp_path / "store"))
    assert repo.chunking() == ("changed", chunked.CHANGED_THRESHOLD)
    repo.writing()
    assert repo.objects.chunk_threshold is None
    assert repo.objects.changed_chunk_threshold == chunked.CHANGED_THRESHOLD


def logged_once(tmp_path: Path, seed: int) -> tuple[str, bytes, Repository]:
    """A store chunking from THRESHOLD up where that saves, and a large file logged."""
    store = changed_store(tmp_path / "store")
    data = random.Random(seed).randbytes(SIZE)
    (tmp_path / "w.bin").write_bytes(data)
    log(store, tmp_path / "w.bin")
    return store, data, Repository.open(store)


def test_a_first_log_stores_a_large_file_whole(tmp_path):
    _, data, repo = logged_once(tmp_path, 1)
    assert repo.storage.exists(keys.content_key(Blob(data).id))
    assert not repo.storage.exists(keys.chunked_key(Blob(data).id))


@pytest.mark.parametrize("edit", ["middle", "start"])
def test_a_file_replacing_a_large_one_costs_only_its_changed_chunks(tmp_path, edit):
    store = changed_store(tmp_path / "store")
    data = random.Random(2).randbytes(SIZE)
    edited = edits(data)[edit]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "w.bin").write_bytes(data)
    (tmp_path / "b" / "w.bin").write_bytes(edited)  # elsewhere: the entry's path counts
    log(store, tmp_path / "a" / "w.bin")
    before = stored_bytes(Repository.open(store))
    log(store, tmp_path / "b" / "w.bin")
    repo = Repository.open(store)
    assert stored_bytes(repo) - before < AROUND_AN_EDIT
    for content in (data, edited):  # the one replaced is kept as chunks now, not whole
        assert not repo.storage.exists(keys.content_key(Blob(content).id))
        assert repo.objects.read_blob(Blob(content).id) == content
    api = artifacts.Api(store=store)
    for version, content in (("v0", data), ("v1", edited)):
        root = api.artifact(f"{ENTITY}/{PROJECT}/model:{version}").download(str(tmp_path / version))
        assert (Path(root) / "weights.bin").read_bytes() == content
    assert fsck(repo).ok


def test_a_changed_file_of_a_directory_costs_only_its_changed_chunks(tmp_path):
    store = changed_store(tmp_path / "store")
    rng = random.Random(3)
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    big = rng.randbytes(SIZE)
    (data / "sub" / "w.bin").write_bytes(big)
    (data / "other.bin").write_bytes(rng.randbytes(SIZE))
    log(store, data, as_dir=True)
    before = stored_bytes(Repository.open(store))
    (data / "sub" / "w.bin").write_bytes(edits(big)["middle"])
    log(store, data, as_dir=True)
    repo = Repository.open(store)
    assert stored_bytes(repo) - before < AROUND_AN_EDIT
    assert repo.storage.exists(keys.content_key(Blob((data / "other.bin").read_bytes()).id))
    assert fsck(repo).ok


def test_a_file_replacing_a_small_one_or_none_stays_whole(tmp_path):
    store = changed_store(tmp_path / "store")
    data = random.Random(4).randbytes(SIZE)
    (tmp_path / "w.bin").write_bytes(data[: THRESHOLD // 2])
    log(store, tmp_path / "w.bin")
    (tmp_path / "w.bin").write_bytes(data)
    log(store, tmp_path / "w.bin")
    log(store, tmp_path / "w.bin", name="another")
    assert Repository.open(store).storage.exists(keys.content_key(Blob(data).id))


def test_a_store_set_never_to_chunk_keeps_a_replaced_file_whole(tmp_path):
    store = str(tmp_path / "store")
    Repository.open(store).set_chunking("never")
    data = random.Random(5).randbytes(2 * chunked.CHANGED_THRESHOLD)
    (tmp_path / "w.bin").write_bytes(data)
    log(store, tmp_path / "w.bin")
    before = stored_bytes(Repository.open(store))
    (tmp_path / "w.bin").write_bytes(edits(data)["middle"])
    log(store, tmp_path / "w.bin")
    assert stored_bytes(Repository.open(store)) - before >= len(data)


def test_a_damaged_whole_copy_is_left_for_fsck_not_converted(tmp_path):
    store, data, repo = logged_once(tmp_path, 6)
    whole = repo.storage.local_path(keys.content_key(Blob(data).id))
    with open(whole, "r+b") as f:
        f.seek(SIZE // 2)
        f.write(b"\xff" * 8)
    (tmp_path / "w.bin").write_bytes(edits(data)["middle"])
    with pytest.warns(UserWarning, match="artifacts fsck"):
        log(store, tmp_path / "w.bin")
    assert os.path.exists(whole)  # kept: the only copy, damaged or not
    assert not repo.storage.exists(keys.chunked_key(Blob(data).id))
    assert not fsck(Repository.open(store)).ok


def test_a_push_to_a_bucket_sends_only_the_chunks_it_lacks(ws, request, monkeypatch):
    url = bucket_url("s3-moto", request, monkeypatch)
    Repository.open(url).set_chunking("changed", THRESHOLD)
    local = changed_store(ws / "store")
    repo = Repository.open(local)
    remotes.add_remote(repo, "origin", url)
    data = random.Random(7).randbytes(SIZE)
    (ws / "w.bin").write_bytes(data)
    log(local, ws / "w.bin")
    first = remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    assert first.bytes_uploaded > SIZE  # the first version: every chunk
    (ws / "w.bin").write_bytes(edits(data)["middle"])
    log(local, ws / "w.bin")
    second = remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    assert second.bytes_uploaded < AROUND_AN_EDIT + 20_000  # and a commit, a run record
    bucket = Repository.open(url)
    assert fsck(bucket).ok
    assert bucket.objects.read_blob(Blob(data).id) == data

    clone = remotes.clone(url, str(ws / "clone"), policy=ARTIFACT_REFS)
    assert clone.objects.read_blob(Blob(data).id) == data
    assert clone.objects.chunk_list(Blob(data).id) is not None  # chunks stay chunks


def test_a_log_straight_into_a_bucket_keeps_large_files_as_chunks(ws, request, monkeypatch):
    """In a bucket the network, not the cutting, sets the pace: a first log there
    stores a large file as chunks, so the next version adds only its changed ones."""
    url = bucket_url("s3-moto", request, monkeypatch)
    Repository.open(url).set_chunking("changed", THRESHOLD)
    data = random.Random(8).randbytes(SIZE)
    (ws / "w.bin").write_bytes(data)
    log(url, ws / "w.bin")
    bucket = Repository.open(url)
    assert bucket.objects.chunk_list(Blob(data).id) is not None
    before = stored_bytes(bucket)
    edited = edits(data)["middle"]
    (ws / "w.bin").write_bytes(edited)
    log(url, ws / "w.bin")
    assert stored_bytes(bucket) - before < AROUND_AN_EDIT + 20_000
    assert fsck(bucket).ok
    assert bucket.objects.read_blob(Blob(edited).id) == edited


READER = """
import sys, time
import blake3
import artifacts
store, names, stop = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
import os
api, reads = artifacts.Api(store=store), 0
while not os.path.exists(stop) or reads < 2 * len(names):
    for name in names:
        version = api.artifact(f"team/proj/{name}:v0")
        path = version.download(root=f"dl/{name}")
        digest = blake3.blake3(open(f"{path}/weights.bin", "rb").read()).hexdigest()
        assert digest == name.split("-")[1], (name, digest)
        os.remove(f"{path}/weights.bin")
        reads += 1
print(reads)
"""


def test_readers_of_a_version_being_converted_to_chunks_read_its_bytes(tmp_path):
    """A reader process downloads v0 of several artifacts again and again while this one
    logs their v1, converting each v0 to chunks under it."""
    from tests.processes import python, wait_ok

    store = changed_store(tmp_path / "store")
    rng = random.Random(8)
    names = []
    for i in range(4):
        data = rng.randbytes(8 * THRESHOLD)
        (tmp_path / "w.bin").write_bytes(data)
        name = f"m{i}-{blake3_hex(data)}"
        log(store, tmp_path / "w.bin", name=name)
        names.append((name, data))
    stop = tmp_path / "stop"
    reader = python("-c", READER, store, ",".join(n for n, _ in names), str(stop), cwd=tmp_path)
    try:
        for name, data in names:
            (tmp_path / "w.bin").write_bytes(edits(data)["middle"])
            log(store, tmp_path / "w.bin", name=name)
    finally:
        stop.touch()
    assert int(wait_ok(reader, timeout=120)) >= 2 * len(names)
    repo = Repository.open(store)
    assert all(repo.objects.chunk_list(Blob(data).id) for _, data in names)
    assert fsck(repo).ok


def blake3_hex(data: bytes) -> str:
    import blake3

    return blake3.blake3(data).hexdigest()


def _log_and_convert(store: str, rounds: int, workdir: str) -> list[list[str]]:
    """Per round, a new artifact's v0 (stored whole) and v1, an edit of it (stored as
    chunks, converting v0); (name:version, blake3 of its file, its blob id) of each."""
    rng, logged = random.Random(9), []
    for r in range(rounds):
        data = rng.randbytes(SIZE)
        for version in ("v0", "v1"):
            path = Path(workdir) / f"{r}-{version}.bin"
            path.write_bytes(data)
            log(store, path, name=f"m{r}")
            logged.append([f"m{r}:{version}", blake3_hex(data), Blob(data).id.hex()])
            at = rng.randrange(SIZE - 1000)
            data = data[:at] + rng.randbytes(1000) + data[at + 1000 :]
    return logged


def _gc_until(store: str, stop: str) -> int:
    from cas.gc import gc

    repo, runs = Repository.open(store), 0
    while not os.path.exists(stop):
        gc(repo, grace_seconds=0)
        runs += 1
        time.sleep(0.01)
    return runs


def _read_until(store: str, stop: str, rounds: int, workdir: str) -> dict[str, Any]:
    """Download every v0 there is, again and again: verified reads, or the errors."""
    reads, errors, api = 0, [], artifacts.Api(store=store)
    while not os.path.exists(stop):
        for r in range(rounds):
            spec = f"{ENTITY}/{PROJECT}/m{r}:v0"
            try:
                if api.artifact_exists(spec):
                    api.artifact(spec).download(str(Path(workdir) / "read"))
                    reads += 1
            except Exception:  # noqa: BLE001 - every failure is reported by the test
                errors.append(traceback.format_exc())
    return {"reads": reads, "errors": errors}


def test_conversions_to_chunks_beside_gc_and_readers_lose_nothing(tmp_path):
    """gc with no grace, in a loop, and a reader beside a writer whose every second log
    converts a file to chunks: every version reads back as logged."""
    from tests.processes import Workers

    store, stop, rounds = changed_store(tmp_path / "store"), str(tmp_path / "stop"), 6
    Repository.open(store).set_lease_seconds(3.0)
    (tmp_path / "w").mkdir()
    calls = [
        (_log_and_convert, (store, rounds, str(tmp_path / "w"))),
        (_gc_until, (store, stop)),
        (_read_until, (store, stop, rounds, str(tmp_path))),
    ]
    workers = Workers(calls, tmp_path / "procs")
    try:
        workers.wait([0], timeout=240)
        Path(stop).touch()
        workers.wait(timeout=120)
        logged, gc_runs, reading = (workers.result(i) for i in range(3))
    finally:
        workers.kill()
    assert gc_runs > 0 and reading["reads"] > 0 and not reading["errors"], reading["errors"][:1]
    print(f"\n{len(logged)} versions, {gc_runs} gc runs, {reading['reads']} reads beside them")
    repo = Repository.open(store)
    assert fsck(repo).ok
    api, converted = artifacts.Api(store=store), 0
    for spec, digest, blob_id in logged:
        root = api.artifact(f"{ENTITY}/{PROJECT}/{spec}").download(str(tmp_path / spec))
        assert blake3_hex((Path(root) / "weights.bin").read_bytes()) == digest, spec
        if spec.endswith("v0"):
            converted += repo.objects.chunk_list(bytes.fromhex(blob_id)) is not None
    # A v0 gc moved to the fossils before its ref was published (no grace here) stays
    # there until a gc two leases on brings it back: then v1 found none to convert.
    assert converted > 0
