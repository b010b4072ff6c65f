"""Racing writers, racing pushes and a hostile gc, in real processes, on real servers.

Every worker is a separate process started by tests/processes.py (``run_processes``):
forked from a fresh interpreter that imported the project once, it inherits nothing of
the test process but its arguments and environment. The workers of one test wait at a
barrier, so that their writes really overlap. Stores are local directories or buckets
on the servers of tests/servers.py (moto, SeaweedFS, fake-gcs-server); a bucket store
reaches a worker as a spec, opened with ``artifacts.init(store=url, store_options=...)``.

1. Racing loggers: W processes log R different contents each to one artifact. The
   versions are exactly v0..v(W*R-1), each content in exactly one of them, byte for
   byte, and ``latest`` is the last one.
2. 16 processes upsert parts of one distributed version into a bucket, then one
   finishes: every file is there.
3. Two clones push different new versions to one remote at the same moment: exactly
   one wins, the other gets PushRejectedError; it pulls, rebases and pushes, and both
   versions are on the remote.
4. gc with grace 0 and a 1 s lease in a loop beside writers (drafts with adds and
   removes) slowed past the lease, a writer that keeps dying before it publishes, a
   reader, a pusher and gc on the remote: afterwards fsck is clean on both stores and
   every version ever committed downloads with the right bytes from both; no read and
   no push failed meanwhile.
5. gc: unreachable objects older than the grace go to the fossils and are deleted two
   leases later, young and reachable ones stay, packs holding garbage are rewritten.
6. No lock: nonsense refs block no writer and no gc; a gc killed at random moments
   leaves nothing that slows the next writer.

Timings are printed (``pytest -s``); long variants are marked ``slow``.
"""

from __future__ import annotations

import os
import random
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

import artifacts
import remotes
from artifacts import Artifact, ArtifactNotFoundError
from artifacts.ref_names import dist_prefix, head_ref
from artifacts.refpolicy import ARTIFACT_REFS
from artifacts.registry import Registry
from artifacts.runs import Run
from cas import Blob, ObjectNotFoundError, Repository, open_storage
from cas.errors import CollectedError
from cas.fsck import fsck
from cas.gc import BUCKET_CLOCK_RESOLUTION, gc
from cas.lease import Leases
from cas.walk import reachable
from remotes import PushRejectedError
from tests.processes import START_TIMEOUT, Call, Workers, preload, run_processes, start_barrier

ENTITY, PROJECT = "team", "proj"
preload(__name__)
# Under pytest-xdist (make test), one worker runs them all, one after another: two of
# these crowds of processes at once on two cores outlast the 1 s leases of the gc tests.
# The largest groups are sent first, so this one starts at once.
pytestmark = pytest.mark.xdist_group("reliability-races")

Spec = dict[str, Any]


def open_spec_repo(spec: Spec, cache: str | None = None) -> Repository:
    storage = open_storage(spec["url"], **spec.get("options", {}))
    return Repository(storage, cache_dir=cache)


def init_run(spec: Spec) -> artifacts.Run:
    return artifacts.init(
        project=PROJECT, entity=ENTITY, store=spec["url"], store_options=spec.get("options")
    )


def local_spec(path: Path) -> Spec:
    return {"url": str(path), "options": {}}


def content(*key: object, size: int = 200) -> bytes:
    """Reproducible bytes, different for every key."""
    seed = "/".join(map(str, key))
    return seed.encode() + b"\n" + random.Random(seed).randbytes(size)


def version_files(registry: Registry, commit_hex: str, root: Path) -> dict[str, bytes]:
    """Download the version ``commit_hex`` (verifying every byte) and read it back."""
    commit_id = bytes.fromhex(commit_hex)
    meta = registry.commit(commit_id).meta
    version = registry.version(meta["entity"], meta["project"], commit_id)
    if root.exists():
        shutil.rmtree(root)
    Artifact._from_version(registry, version).download(str(root))
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---- 1. racing loggers ---------------------------------------------------------------


def _logger(spec: Spec, me: int, rounds: int, workdir: str, barrier: Any) -> list[list[str]]:
    run = init_run(spec)
    src = Path(workdir) / f"src-{me}"
    src.mkdir(parents=True)
    barrier.wait(START_TIMEOUT)
    logged = []
    for r in range(rounds):
        path = src / f"{r}.bin"
        path.write_bytes(content("logger", me, r))
        draft = Artifact("shared", "dataset")
        draft.add_file(str(path), name="data.bin")
        version = run.log_artifact(draft)
        logged.append([version.version, version.id, f"{me}/{r}"])
    run.finish()
    return logged


# 8 x 25 takes ~5 s locally, ~15 s on fake-gcs-server, ~70 s on SeaweedFS and ~160 s
# on moto (which serves one request at a time): by default the buckets run fewer rounds
# (8 x 5 races as many writers on fake-gcs-server, in a third of the time), and
# `make test-slow` the full 8 x 25 on each.
LOGGER_CASES = [
    pytest.param("local", 8, 25, id="local-8x25"),
    pytest.param("gcs", 8, 5, id="gcs-8x5"),
    pytest.param("s3-moto", 4, 5, id="s3-moto-4x5"),
    pytest.param("s3-seaweed", 4, 5, id="s3-seaweed-4x5"),
    pytest.param("gcs", 8, 25, id="gcs-8x25", marks=pytest.mark.slow),
    pytest.param("s3-moto", 8, 25, id="s3-moto-8x25", marks=pytest.mark.slow),
    pytest.param("s3-seaweed", 8, 25, id="s3-seaweed-8x25", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("backend", "workers", "rounds"), LOGGER_CASES)
def test_racing_loggers_get_consecutive_versions_and_keep_every_content(
    backend: str, workers: int, rounds: int, make_spec: Any, tmp_path: Path
) -> None:
    spec = make_spec(backend)
    total = workers * rounds
    barrier = start_barrier(workers)
    started = time.monotonic()
    results = run_processes(
        [(_logger, (spec, me, rounds, str(tmp_path / "work"), barrier)) for me in range(workers)],
        tmp_path / "procs",
    )
    elapsed = time.monotonic() - started

    logged = [entry for result in results for entry in result]
    numbers = sorted(int(v[1:]) for v, _, _ in logged)
    assert numbers == list(range(total)), "versions with a gap or a duplicate"
    for result in results:  # each process saw its own versions in increasing order
        mine = [int(v[1:]) for v, _, _ in result]
        assert mine == sorted(mine)
    by_number = {int(v[1:]): (commit, key) for v, commit, key in logged}
    assert sorted(key for _, key in by_number.values()) == sorted(
        f"{me}/{r}" for me in range(workers) for r in range(rounds)
    ), "a content is missing or logged twice"

    repo = open_spec_repo(spec, str(tmp_path / "cache"))
    registry = Registry(repo)
    head = registry.head(ENTITY, PROJECT, "shared")
    assert head is not None and head.number == total - 1
    assert head.commit_id.hex() == by_number[total - 1][0]
    assert registry.aliases(head) == ["latest"]
    history = list(registry.history(head))
    assert [v.number for v in history] == list(range(total - 1, -1, -1))
    for version in history:
        commit_hex, key = by_number[version.number]
        assert version.commit_id.hex() == commit_hex
        me, r = key.split("/")
        files = version_files(registry, commit_hex, tmp_path / "dl")
        assert files == {"data.bin": content("logger", int(me), int(r))}
    assert fsck(repo).ok
    repo.close()
    print(f"\n{backend}: {workers}x{rounds} = {total} versions in {elapsed:.1f} s")


# ---- 2. distributed parts into a bucket ----------------------------------------------


def _upserter(spec: Spec, me: int, workdir: str, barrier: Any) -> list:
    run = init_run(spec)
    path = Path(workdir) / f"part-{me:02d}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content("part", me))
    part = Artifact("sharded", "dataset")
    part.add_file(str(path), name=f"shards/part-{me:02d}.bin")
    barrier.wait(START_TIMEOUT)
    started = time.monotonic()
    run.upsert_artifact(part, distributed_id="shards")
    run.finish()
    return [run.id, time.monotonic() - started]


def test_sixteen_processes_upsert_into_a_bucket_then_one_finishes(
    make_spec: Any, tmp_path: Path
) -> None:
    spec = make_spec("s3-moto")
    workers = 16
    barrier = start_barrier(workers)
    started = time.monotonic()
    results = run_processes(
        [(_upserter, (spec, me, str(tmp_path / "work"), barrier)) for me in range(workers)],
        tmp_path / "procs",
    )
    elapsed = time.monotonic() - started
    run_ids = [run_id for run_id, _ in results]
    racing = max(seconds for _, seconds in results)
    assert len(set(run_ids)) == workers

    with init_run(spec) as run:
        final = run.finish_artifact(Artifact("sharded", "dataset"), distributed_id="shards")
        assert final.version == "v0"
        assert set(final.logged_by().logged) == {final.id}
        registry = run.registry
        files = version_files(registry, final.id, tmp_path / "dl")
        assert files == {f"shards/part-{i:02d}.bin": content("part", i) for i in range(workers)}
        parts = registry.commit(bytes.fromhex(final.id)).meta["parts"]
        assert sorted(parts) == sorted(run_ids)
        assert not registry.refs.list(dist_prefix(ENTITY, PROJECT, "sharded", "shards"))
        assert fsck(registry.repo).ok
    print(f"\ns3-moto: {workers} parts upserted in {racing:.1f} s ({elapsed:.1f} s with start-up)")


# ---- 3. two pushes racing to one remote -----------------------------------------------


def _push_once(store: str, barrier: Any) -> dict[str, Any]:
    repo = Repository.open(store)
    barrier.wait(START_TIMEOUT)
    try:
        result = remotes.push(repo, "origin", policy=ARTIFACT_REFS)
    except PushRejectedError as exc:
        return {"pushed": False, "rejected": exc.names}
    return {"pushed": True, "updated": result.refs_updated}


def _log_files(store: str, name: str, files: dict[str, bytes], workdir: Path) -> str:
    """Log ``files`` as the next version of ``name`` in the local store ``store``."""
    workdir.mkdir(parents=True, exist_ok=True)
    with artifacts.init(project=PROJECT, entity=ENTITY, store=store) as run:
        draft = Artifact(name, "model")
        for path, data in files.items():
            (workdir / path).write_bytes(data)
            draft.add_file(str(workdir / path), name=path)
        return run.log_artifact(draft).id


@pytest.mark.parametrize("kind", ["local", "s3-moto"])
def test_two_pushes_race_one_wins_the_other_rebases_and_nothing_is_lost(
    kind: str, make_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kind == "local":
        url = str(tmp_path / "remote")
    else:
        spec = make_spec(kind)
        url = spec["url"]
        # remotes open a URL alone: S3 settings come from the environment (spawned
        # workers inherit it).
        options = spec["options"]
        monkeypatch.setenv("AWS_ENDPOINT_URL", options["endpoint_url"])
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", options["key"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", options["secret"])
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    seed = tmp_path / "seed" / ".artifacts"
    _log_files(str(seed), "model", {"weights.bin": content("seed")}, tmp_path / "seed-src")
    remotes.add_remote(Repository.open(str(seed)), "origin", url)
    remotes.push(Repository.open(str(seed)), "origin", policy=ARTIFACT_REFS)
    clones = {
        side: remotes.clone(url, str(tmp_path / side), policy=ARTIFACT_REFS) for side in ("a", "b")
    }
    expected = {0: {"weights.bin": content("seed")}}
    rounds = 3 if kind == "local" else 2
    started = time.monotonic()
    for r in range(rounds):
        for side, repo in clones.items():
            # both start from the remote's latest
            remotes.pull(repo, "origin", policy=ARTIFACT_REFS)
            files = {"weights.bin": content("round", r, side)}
            _log_files(repo.url, "model", files, tmp_path / f"src-{side}-{r}")
        barrier = start_barrier(2)
        results = run_processes(
            [(_push_once, (repo.url, barrier)) for repo in clones.values()],
            tmp_path / f"procs-{r}",
        )
        pushed = [side for side, res in zip(clones, results, strict=True) if res["pushed"]]
        assert len(pushed) == 1, f"round {r}: exactly one push must win, got {results}"
        winner = pushed[0]
        loser = "b" if winner == "a" else "a"
        head = head_ref(ENTITY, PROJECT, "model")
        assert results[list(clones).index(loser)]["rejected"] == [head]

        lost = clones[loser]
        assert remotes.pull(lost, "origin", policy=ARTIFACT_REFS).diverged == [head]
        assert remotes.rebase(lost, "origin", policy=ARTIFACT_REFS) == [head]
        remotes.push(lost, "origin", policy=ARTIFACT_REFS)
        base = 1 + 2 * r
        expected[base] = {"weights.bin": content("round", r, winner)}
        expected[base + 1] = {"weights.bin": content("round", r, loser)}
    elapsed = time.monotonic() - started

    remote = Repository.open(url)
    registry = Registry(remote)
    head_version = registry.head(ENTITY, PROJECT, "model")
    assert head_version is not None and head_version.number == 2 * rounds
    for version in registry.history(head_version):
        files = version_files(registry, version.commit_id.hex(), tmp_path / "dl")
        assert files == expected[version.number], f"v{version.number}"
    assert fsck(remote).ok
    print(f"\n{kind}: {rounds} push races, each rebased and re-pushed, in {elapsed:.1f} s")


# ---- 4. gc in a loop beside writers and a pusher -------------------------------------

# (backend, writers, rounds each): every round logs two versions. The store's lease is
# LEASE seconds, so gc deletes a fossil 2 LEASE after moving it, and every fifth tree or
# commit a writer stores is slowed past the lease, after the blobs below it: gc moves
# those blobs aside meanwhile, and the writer's re-check brings them back.
LEASE = 1.0
GC_CASES = [
    pytest.param("local", 3, 8, id="local"),
    pytest.param("s3-moto", 2, 3, id="s3-moto"),
    pytest.param("s3-seaweed", 2, 3, id="s3-seaweed"),
    pytest.param("gcs", 2, 3, id="gcs"),
    pytest.param("s3-moto", 3, 10, id="s3-moto-long", marks=pytest.mark.slow),
]


def _future_contents(writers: int, rounds: int) -> list[bytes]:
    """What the writers of the gc test will log: a dying writer stores them first."""
    return [
        content(kind, me, r)
        for kind in ("shared", "solo")
        for me in range(writers)
        for r in range(rounds)
    ]


def _gc_loop(spec: Spec, stop: str, counter: str, barrier: Any) -> dict[str, int]:
    repo = open_spec_repo(spec)
    barrier.wait(START_TIMEOUT)
    totals = dict.fromkeys(
        ("runs", "objects_deleted", "objects_fossilized", "objects_restored", "packs_rewritten"),
        0,
    )
    while not os.path.exists(stop):
        report = gc(repo, grace_seconds=0)
        totals["runs"] += 1
        totals["objects_deleted"] += report.objects_deleted
        totals["objects_fossilized"] += report.objects_fossilized
        totals["objects_restored"] += report.objects_restored
        totals["packs_rewritten"] += report.packs_rewritten
        Path(f"{counter}.tmp").write_text(str(totals["runs"]))
        os.replace(f"{counter}.tmp", counter)
        time.sleep(0.01)  # hostile still, without taking a whole core of two
    return totals


def _gc_runs(counter: str) -> int:
    try:
        return int(Path(counter).read_text())
    except FileNotFoundError:
        return 0


def _wait_for_gc(counter: str, runs: int) -> None:
    """Wait until gc has run ``runs`` times: the writers' loaded pack indexes go stale."""
    deadline = time.monotonic() + 60
    while _gc_runs(counter) < runs:
        assert time.monotonic() < deadline, "gc did not run"
        time.sleep(0.01)


def _dying_writer(spec: Spec, stop: str, writers: int, rounds: int, barrier: Any) -> int:
    """Store future contents, in a pack and loose, then "die" before publishing."""
    repo = open_spec_repo(spec)
    future = _future_contents(writers, rounds)
    rng = random.Random(7)
    barrier.wait(START_TIMEOUT)
    deaths = 0
    while not os.path.exists(stop):
        with repo.writing():
            with repo.objects.writer() as writer:
                for data in rng.sample(future, 6):
                    writer.add_blob(data)
            repo.objects.put(Blob(rng.choice(future)))
        deaths += 1
        time.sleep(0.05)
    return deaths


def _slow_down(slowed: list[int]) -> None:
    """Make every fifth tree or commit this process stores wait 1.5 leases first (and count them):
    its blobs are stored, unreachable, and gc runs with grace 0."""
    storing = Leases.storing
    calls = [0]

    def slow(self: Leases, data: bytes, pending: Any = ()) -> None:
        calls[0] += 1
        if calls[0] % 5 == 1:
            time.sleep(1.5 * LEASE)
            slowed[0] += 1
        storing(self, data, pending)

    Leases.storing = slow  # type: ignore[method-assign]


def _gc_writer(
    spec: Spec, me: int, rounds: int, workdir: str, counter: str, barrier: Any
) -> dict[str, Any]:
    slowed = [0]
    _slow_down(slowed)
    run = init_run(spec)
    # A long-lived process has read the store before: its pack indexes are loaded, and
    # then gc deletes or rewrites packs under it.
    run.registry.objects.refresh_packs()
    src = Path(workdir) / f"w{me}"
    src.mkdir(parents=True)
    barrier.wait(START_TIMEOUT)
    records = []
    for r in range(rounds):
        if r % 4 == 0:  # gc runs between our logs, whatever the timing
            _wait_for_gc(counter, _gc_runs(counter) + 1)
        base = run.use_artifact("shared:latest")
        draft = base.new_draft()
        path = src / f"shared-{r}.bin"
        path.write_bytes(content("shared", me, r))
        draft.add_file(str(path), name=f"w{me}/{r}.bin")
        removed = []
        if r % 3 == 2:
            try:
                draft.remove(f"w{me}/{r - 1}.bin")
                removed.append(f"w{me}/{r - 1}.bin")
            except ArtifactNotFoundError:
                pass  # a racing draft made from an older version dropped it
        logged = run.log_artifact(draft)
        records.append(
            {
                "commit": logged.id,
                "base": base.id,
                "add": {f"w{me}/{r}.bin": ["shared", me, r]},
                "remove": removed,
            }
        )
        solo_path = src / f"solo-{r}.bin"
        solo_path.write_bytes(content("solo", me, r))
        solo = Artifact(f"solo-{me}", "dataset")
        solo.add_file(str(solo_path), name="data.bin")
        logged = run.log_artifact(solo)
        records.append({"commit": logged.id, "files": {"data.bin": ["solo", me, r]}})
    run.finish()
    return {"records": records, "slowed": slowed[0]}


def _reader(spec: Spec, stop: str, workdir: str, barrier: Any) -> dict[str, Any]:
    """Download the latest version again and again, taking no lock (readers never do)."""
    registry = Registry(open_spec_repo(spec))
    barrier.wait(START_TIMEOUT)
    reads, errors = 0, []
    while not os.path.exists(stop):
        try:
            head = registry.head(ENTITY, PROJECT, "shared")
            assert head is not None
            Artifact._from_version(registry, head).download(str(Path(workdir) / "read"))
            reads += 1
        except Exception:  # noqa: BLE001 - every failure is reported by the test
            errors.append(traceback.format_exc())
        time.sleep(0.02)
    return {"reads": reads, "errors": errors}


def _pusher(spec: Spec, stop: str, barrier: Any) -> dict[str, Any]:
    repo = open_spec_repo(spec)
    barrier.wait(START_TIMEOUT)
    pushes, collected, errors = 0, 0, []
    while not os.path.exists(stop):
        try:
            remotes.push(repo, "origin", policy=ARTIFACT_REFS)
            pushes += 1
        except CollectedError:
            # A push that outlived the remote's lease (1 s here, hours in use) published
            # nothing and says to run it again: the next round does.
            collected += 1
        except Exception:  # noqa: BLE001 - every failure is reported by the test
            errors.append(traceback.format_exc())
        time.sleep(0.05)
    return {"pushes": pushes, "collected": collected, "errors": errors}


@pytest.mark.alone  # pushes and writes must end within two 1 s leases
@pytest.mark.timeout(400)
@pytest.mark.parametrize(("backend", "writers", "rounds"), GC_CASES)
def test_gc_with_grace_zero_beside_slow_writers_and_pushes_loses_nothing(
    backend: str,
    writers: int,
    rounds: int,
    make_spec: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    spec = make_spec(backend)
    remote = str(tmp_path / "remote")
    remote_spec = local_spec(Path(remote))
    for where in (spec, remote_spec):
        Path(remote).mkdir(exist_ok=True)
        open_spec_repo(where).set_lease_seconds(LEASE)
    seed_files = {"seed/a.bin": content("seed", "a"), "seed/b.bin": content("seed", "b")}
    seed_dir = tmp_path / "seed-src"
    seed_dir.mkdir()
    with init_run(spec) as run:
        draft = Artifact("shared", "dataset")
        for path, data in seed_files.items():
            (seed_dir / path.replace("/", "-")).write_bytes(data)
            draft.add_file(str(seed_dir / path.replace("/", "-")), name=path)
        seed_id = run.log_artifact(draft).id
    repo = open_spec_repo(spec)
    remotes.add_remote(repo, "origin", remote)
    # A writer that died before publishing left every future content behind, packed.
    with repo.writing(), repo.objects.writer() as writer:
        for data in _future_contents(writers, rounds):
            writer.add_blob(data)

    stop, counter = str(tmp_path / "stop"), str(tmp_path / "gc-runs")
    n = writers + 5
    barrier = start_barrier(n)
    work = str(tmp_path / "work")
    calls: list[Call] = [
        (_gc_writer, (spec, me, rounds, work, counter, barrier)) for me in range(writers)
    ]
    calls += [
        (_gc_loop, (spec, stop, counter, barrier)),
        (_dying_writer, (spec, stop, writers, rounds, barrier)),
        (_pusher, (spec, stop, barrier)),
        (_reader, (spec, stop, work, barrier)),
        (_gc_loop, (remote_spec, stop, f"{counter}-remote", barrier)),  # the remote's gc
    ]
    started = time.monotonic()
    workers = Workers(calls, tmp_path / "procs")
    try:
        workers.wait(list(range(writers)), timeout=300)  # the writers end on their own
        Path(stop).touch()  # the others loop until told to stop
        workers.wait(timeout=120)
        results = [workers.result(i) for i in range(n)]
    finally:
        workers.kill()
    elapsed = time.monotonic() - started
    records = [rec for result in results[:writers] for rec in result["records"]]
    slowed = sum(result["slowed"] for result in results[:writers])
    gc_totals, deaths, pushing, reading, remote_gc = results[writers:]
    assert gc_totals["runs"] > 0 and gc_totals["objects_fossilized"] > 0, gc_totals
    assert slowed > 0
    assert deaths > 0 and remote_gc["runs"] > 0

    # What every version must hold: a shared version is its base with its edits applied.
    expected: dict[str, dict[str, bytes]] = {seed_id: seed_files}
    shared = [rec for rec in records if "base" in rec]
    pending = list(shared)
    while pending:
        ready = [rec for rec in pending if rec["base"] in expected]
        assert ready, "a version was built on a base no writer logged"
        for rec in ready:
            files = dict(expected[rec["base"]])
            for path in rec["remove"]:
                files.pop(path)
            files.update({p: content(*key) for p, key in rec["add"].items()})
            expected[rec["commit"]] = files
            pending.remove(rec)
    for rec in records:
        if "files" in rec:
            expected[rec["commit"]] = {p: content(*key) for p, key in rec["files"].items()}

    for where in (spec, remote_spec):
        if where is remote_spec:  # the store is sound: now the reads and pushes made beside gc
            assert not reading["errors"], "a read failed beside gc:\n" + reading["errors"][0]
            errors = pushing["errors"]
            assert not errors, "a push failed beside gc:\n" + "\n".join(errors)
            assert pushing["pushes"] > 0, pushing  # not every push may be run again
            remotes.push(repo, "origin", policy=ARTIFACT_REFS)
        checked = open_spec_repo(where, str(tmp_path / "cache"))
        report = fsck(checked)
        assert report.ok, f"{where['url']}: {report.problems[:5]}"
        registry = Registry(checked)
        head = registry.head(ENTITY, PROJECT, "shared")
        assert head is not None and head.number == len(shared)
        chain = {v.commit_id.hex() for v in registry.history(head)}
        assert chain == {seed_id} | {rec["commit"] for rec in shared}
        for commit_hex, files in expected.items():
            got = version_files(registry, commit_hex, tmp_path / "dl")
            assert got == files, f"{where['url']}: version {commit_hex[:12]} differs"
    print(
        f"\n{backend} gc loop: {len(records)} versions by {writers} writers ({slowed} writes "
        f"slowed past the lease), {gc_totals['runs']} gc runs ({gc_totals['objects_fossilized']}"
        f" objects moved to fossils, {gc_totals['objects_restored']} restored, "
        f"{gc_totals['objects_deleted']} deleted, "
        f"{gc_totals['packs_rewritten']} packs rewritten), {deaths} dying writes, "
        f"{pushing['pushes']} pushes ({pushing['collected']} run again), {reading['reads']} reads, "
        f"{remote_gc['runs']} gc runs on the remote, in {elapsed:.1f} s"
    )


# ---- 5. gc on buckets: grace, reachability, repacking --------------------------------


@pytest.mark.alone  # its checks between two gcs must take less than two 1 s leases
@pytest.mark.parametrize("backend", ["local", "s3-moto", "s3-seaweed", "gcs"])
def test_gc_deletes_old_garbage_keeps_young_and_reachable_and_repacks(
    backend: str, make_spec: Any, tmp_path: Path
) -> None:
    spec = make_spec(backend)
    repo = open_spec_repo(spec, str(tmp_path / "cache"))
    repo.set_lease_seconds(LEASE)
    store = repo.objects
    src = tmp_path / "src"
    src.mkdir()
    big = content("big", size=(1 << 20) + 10)  # stored loose
    live = {"small.bin": content("live small"), "big.bin": big}
    # A pack holding a live object and garbage: the live one is reused by the version.
    with repo.writing(), store.writer() as writer:
        writer.add_blob(live["small.bin"])
        old_packed = [writer.add_blob(content("old packed", i)) for i in range(3)]
    with repo.writing():
        old_loose = [store.put(Blob(content("old loose", i))) for i in range(3)]
    registry = Registry(repo)
    with Run(registry, ENTITY, PROJECT) as run:
        draft = Artifact("kept", "dataset")
        for name, data in live.items():
            (src / name).write_bytes(data)
            draft.add_file(str(src / name), name=name)
        version = run.log_artifact(draft)
    packs_before = store.packs()

    # Buckets keep modification times to the second, and gc allows a second more there;
    # a local store's times are exact and gc allows nothing.
    resolution = 0.0 if backend == "local" else BUCKET_CLOCK_RESOLUTION
    grace = 2.5
    time.sleep(grace + 2 * resolution + 0.1)  # the old garbage is past the grace
    with repo.writing():
        young_loose = store.put(Blob(content("young loose")))
        with store.writer() as writer:
            young_packed = writer.add_blob(content("young packed"))

    started = time.monotonic()
    report = gc(repo, grace_seconds=grace)
    first = time.monotonic() - started
    assert report.packs_rewritten == 1, report  # the pack of "small.bin" and old garbage
    # Old garbage also holds superseded run records.
    assert report.objects_fossilized >= len(old_packed) + len(old_loose), report
    assert report.objects_deleted == 0 and report.kept_for_grace >= 2, report
    fresh = open_spec_repo(spec, str(tmp_path / "cache2"))
    assert not fresh.objects.has_many(old_packed + old_loose)  # no writer counts on them
    assert fresh.objects.read_blob(old_loose[0]) == content("old loose", 0)  # readers may
    assert fresh.objects.has_many([young_loose, young_packed]) == {young_loose, young_packed}
    assert len(fresh.objects.packs() & packs_before) == len(packs_before) - 1
    assert fsck(fresh).ok
    files = version_files(Registry(fresh), version.id, tmp_path / "dl")
    assert files == live

    time.sleep(resolution + 0.1)
    report = gc(repo, grace_seconds=0)  # the young garbage goes aside too
    assert report.objects_fossilized >= 2 and report.kept_for_grace == 0, report
    assert report.objects_deleted == 0 and report.fossils_waiting > 0, report
    time.sleep(2 * LEASE + resolution + 0.1)  # fossils are deleted two leases after they moved
    report = gc(repo, grace_seconds=0)
    assert report.objects_deleted >= len(old_packed) + len(old_loose) + 2, report
    assert report.fossils_waiting == 0 and report.objects_restored == 0, report
    fresh = open_spec_repo(spec, str(tmp_path / "cache3"))
    assert not fresh.objects.has_many([young_loose, young_packed])
    assert fsck(fresh).ok
    assert version_files(Registry(fresh), version.id, tmp_path / "dl") == live
    gone = old_loose + old_packed + [young_loose, young_packed]
    for object_id in gone:
        with pytest.raises(ObjectNotFoundError):
            fresh.objects.get_raw(object_id)
    # Nothing unreachable is left anywhere.
    live_ids = {i for i, _ in reachable(fresh.objects, fresh.refs.list("").values())}
    assert set(fresh.objects) == live_ids
    assert not set(fresh.objects.fossils)
    again = gc(repo, grace_seconds=0)
    assert again.packs_rewritten == 0 and again.objects_fossilized == 0, again
    print(f"\n{backend}: gc with grace {grace} s in {first:.2f} s; {report.reachable} reachable")


# ---- 6. nothing under refs/ blocks anyone; a killed gc blocks nobody -------------------


def _timed_log(spec: Spec, workdir: str, name: str) -> float:
    """Seconds one log of a small version takes."""
    src = Path(workdir) / name
    src.mkdir(parents=True, exist_ok=True)
    (src / "data.bin").write_bytes(content("timed", name))
    started = time.monotonic()
    with init_run(spec) as run:
        draft = Artifact(name, "dataset")
        draft.add_file(str(src / "data.bin"), name="data.bin")
        run.log_artifact(draft)
    return time.monotonic() - started


@pytest.mark.parametrize("backend", ["local", "s3-moto"])
def test_garbage_and_future_dated_refs_block_no_writer_and_no_gc(
    backend: str, make_spec: Any, tmp_path: Path
) -> None:
    """Anyone who may write ``refs/locks/`` (or a team its own refs) may write nonsense
    there: no writer waits and gc neither fails nor waits; it deletes the old lock area
    and names the refs it could not read."""
    spec = make_spec(backend)
    repo = open_spec_repo(spec, str(tmp_path / "cache"))
    alone = _timed_log(spec, str(tmp_path), "before")
    future = repo.objects.put(Blob(f"{time.time() + 10 * 365 * 86400!r} locks/gc/x 1".encode()))
    repo.refs.set_if_equals("locks/gc/future", None, future)
    repo.storage.put("refs/locks/gc/garbage", b"\xff not a ref")
    repo.storage.put("refs/locks/writers/garbage", b"\xff not a ref")
    repo.storage.put("refs/team/garbage", b"\xff not a ref")
    beside = _timed_log(spec, str(tmp_path), "after")
    assert beside < alone + 5, f"a writer took {beside:.1f} s beside nonsense refs"
    with pytest.warns(UserWarning, match="unreadable ref"):
        report = gc(repo, grace_seconds=0)
    assert report.lock_refs_deleted == 3 and report.unreadable_refs == ["team/garbage"], report
    assert not list(repo.refs.names("locks/"))
    assert fsck(repo).problems[0].object_id == "team/garbage"  # fsck names it too


def _gc_forever(spec: Spec, flags: str) -> None:
    repo = open_spec_repo(spec)
    Path(flags, "gc-in").write_text("")
    while True:
        gc(repo, grace_seconds=0)


def _sigkilled_gc_trials(spec: Spec, tmp_path: Path, trials: int) -> list[float]:
    """Log, kill a gc running in a loop at a random moment, log again: the seconds each
    log after a kill took."""
    repo = open_spec_repo(spec, str(tmp_path / "cache"))
    repo.set_lease_seconds(LEASE)
    rng = random.Random(17)
    took = []
    for trial in range(trials):
        _timed_log(spec, str(tmp_path / "src"), f"garbage-{trial}")  # something to move
        flags = tmp_path / f"flags-{trial}"
        flags.mkdir()
        gc_worker = Workers([(_gc_forever, (spec, str(flags)))], tmp_path / f"p{trial}")
        try:
            _flag(flags, "gc-in")
            time.sleep(rng.uniform(0.0, 1.5))
            gc_worker.kill()  # SIGKILL, wherever it is
        finally:
            gc_worker.kill()
        took.append(_timed_log(spec, str(tmp_path / "src"), f"after-{trial}"))
    assert fsck(repo).ok
    gc(repo, grace_seconds=0)  # the next gc finishes the killed ones' work
    report = fsck(open_spec_repo(spec, str(tmp_path / "cache2")))
    assert report.ok, report.problems[:3]
    return took


def _flag(flags: Path, name: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not (flags / name).exists():
        assert time.monotonic() < deadline, f"{name} never came"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "trials", [pytest.param(4, id="4"), pytest.param(20, id="20", marks=pytest.mark.slow)]
)
def test_a_gc_killed_at_random_moments_blocks_no_writer(
    trials: int, make_spec: Any, tmp_path: Path
) -> None:
    spec = make_spec("s3-moto")
    alone = [_timed_log(spec, str(tmp_path / "src"), f"alone-{i}") for i in range(3)]
    normal = sorted(alone)[1]
    took = _sigkilled_gc_trials(spec, tmp_path, trials)
    assert max(took) < 3 * normal + 2, f"a log after a killed gc took {max(took):.1f} s"
    print(
        f"\nmoto: {trials} gcs killed; logs after them {min(took):.2f}-{max(took):.2f} s, "
        f"alone {normal:.2f} s"
    )
