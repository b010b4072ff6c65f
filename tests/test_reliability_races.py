"""Racing writers, racing pushes and a hostile gc, in real processes, on real servers.

Every worker is a separate process started with multiprocessing's "forkserver" context:
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
4. gc with grace 0 in a loop beside writers (drafts with adds and removes), a writer
   that keeps dying before it publishes, a reader, a pusher and gc on the remote:
   afterwards fsck is clean on both stores and every version ever committed downloads
   with the right bytes from both; no read and no push failed meanwhile.
5. gc: unreachable objects older than the grace go, young and reachable ones stay,
   packs holding garbage are rewritten, fsck is clean.
6. The lock itself: a writer keeps gc out, gc keeps writers out, a waiting gc goes
   before writers that come after it; on buckets, lock refs are cleaned up, a lock
   whose blob is gone still counts, a long writer renews its lock and a dead one's
   goes stale.

Timings are printed (``pytest -s``); long variants are marked ``slow``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import artifacts
import cas.gc
import cas.locks
import remotes
from artifacts import Artifact, ArtifactNotFoundError
from artifacts.refpolicy import ARTIFACT_REFS
from artifacts.registry import Registry, dist_prefix, head_ref
from artifacts.run import Run
from cas import Blob, Repository, open_storage
from cas.fsck import fsck
from cas.gc import gc
from cas.store import loose_key
from cas.walk import reachable
from remotes import PushRejectedError

ENTITY, PROJECT = "team", "proj"
# forkserver: every worker is forked from a fresh server process (nothing of the pytest
# process is inherited), which imported the project once: 16 workers start in a second,
# not in half a minute of imports on a loaded 2-core machine.
WORKERS_CONTEXT = multiprocessing.get_context("forkserver")
WORKERS_CONTEXT.set_forkserver_preload(
    ["artifacts", "remotes", "cas.storage.s3", "cas.storage.gcs", __name__]
)
START_TIMEOUT = 120  # spawning and importing on a loaded 2-core machine is slow

Spec = dict[str, Any]


# ---- running workers in processes ---------------------------------------------------


def _child(fn: Callable[..., Any], args: tuple, out: str, env: dict[str, str]) -> None:
    # The forkserver started with the environment of its time: take the test's, now.
    os.environ.clear()
    os.environ.update(env)
    try:
        payload = {"ok": True, "result": fn(*args)}
    except BaseException:  # noqa: BLE001 - the parent reports it
        payload = {"ok": False, "error": traceback.format_exc()}
    Path(out).write_text(json.dumps(payload))


class Workers:
    """Processes running ``fn(*args)``, one per call, started by the forkserver."""

    def __init__(self, calls: list[tuple[Callable[..., Any], tuple]], tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "xdg-cache")}  # pack-index caches
        self.outs = [tmp / f"result-{i}.json" for i in range(len(calls))]
        self.procs = [
            WORKERS_CONTEXT.Process(target=_child, args=(fn, args, str(out), env))
            for (fn, args), out in zip(calls, self.outs, strict=True)
        ]
        for proc in self.procs:
            proc.start()

    def wait(self, which: list[int] | None = None, timeout: float = 300) -> None:
        """Wait for the workers ``which`` (all by default) to end; fail if one fails."""
        which = list(range(len(self.procs))) if which is None else which
        deadline = time.monotonic() + timeout
        for i in which:
            self.procs[i].join(max(0.1, deadline - time.monotonic()))
            if not self.procs[i].is_alive():
                self.result(i)  # fail at once, with its traceback, if it failed
        late = [i for i in which if self.procs[i].is_alive()]
        assert not late, f"workers {late} still running after {timeout} s"

    def result(self, i: int) -> Any:
        out = self.outs[i]
        assert out.exists(), f"worker {i} died with exit code {self.procs[i].exitcode}"
        payload = json.loads(out.read_text())
        assert payload["ok"], f"worker {i} failed:\n{payload['error']}"
        return payload["result"]

    def kill(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join()


def run_processes(
    calls: list[tuple[Callable[..., Any], tuple]], tmp: Path, timeout: float = 300
) -> list[Any]:
    """Run ``fn(*args)`` for each call in a process of its own; their results, in order.

    A worker that raises fails the test with the worker's traceback.
    """
    workers = Workers(calls, tmp)
    try:
        workers.wait(timeout=timeout)
        return [workers.result(i) for i in range(len(calls))]
    finally:
        workers.kill()


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
# on moto (which serves one request at a time): the last two run 4 x 5 by default.
LOGGER_CASES = [
    pytest.param("local", 8, 25, id="local-8x25"),
    pytest.param("gcs", 8, 25, id="gcs-8x25"),
    pytest.param("s3-moto", 4, 5, id="s3-moto-4x5"),
    pytest.param("s3-seaweed", 4, 5, id="s3-seaweed-4x5"),
    pytest.param("s3-moto", 8, 25, id="s3-moto-8x25", marks=pytest.mark.slow),
    pytest.param("s3-seaweed", 8, 25, id="s3-seaweed-8x25", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("backend", "workers", "rounds"), LOGGER_CASES)
def test_racing_loggers_get_consecutive_versions_and_keep_every_content(
    backend: str, workers: int, rounds: int, make_spec: Any, tmp_path: Path
) -> None:
    spec = make_spec(backend)
    total = workers * rounds
    barrier = WORKERS_CONTEXT.Barrier(workers)
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
    barrier = WORKERS_CONTEXT.Barrier(workers)
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
        barrier = WORKERS_CONTEXT.Barrier(2)
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

# (backend, writers, rounds each): every round logs two versions.
# On moto a gc run costs seconds (it reads every commit and tree), and each writer
# waits for a few: the bucket variant is slow.
GC_CASES = [
    pytest.param("local", 3, 20, id="local"),
    pytest.param("s3-moto", 2, 4, id="s3-moto", marks=pytest.mark.slow),
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
    totals = {"runs": 0, "objects_deleted": 0, "packs_rewritten": 0}
    while not os.path.exists(stop):
        report = gc(repo, grace_seconds=0, wait=120)
        totals["runs"] += 1
        totals["objects_deleted"] += report.objects_deleted
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


def _gc_writer(
    spec: Spec, me: int, rounds: int, workdir: str, counter: str, barrier: Any
) -> list[dict]:
    run = init_run(spec)
    # A long-lived process has read the store before: its pack indexes are loaded, and
    # then gc deletes or rewrites packs under it.
    run.registry.objects.refresh_packs()
    src = Path(workdir) / f"w{me}"
    src.mkdir(parents=True)
    barrier.wait(START_TIMEOUT)
    records = []
    for r in range(rounds):
        if r % 4 == 0:  # however the lock favours writers, gc runs between our logs
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
    return records


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
    pushes, errors = 0, []
    while not os.path.exists(stop):
        try:
            remotes.push(repo, "origin", policy=ARTIFACT_REFS)
            pushes += 1
        except Exception:  # noqa: BLE001 - every failure is reported by the test
            errors.append(traceback.format_exc())
        time.sleep(0.05)
    return {"pushes": pushes, "errors": errors}


@pytest.mark.timeout(400)
@pytest.mark.parametrize(("backend", "writers", "rounds"), GC_CASES)
def test_gc_with_grace_zero_beside_writers_and_pushes_loses_nothing(
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
    barrier = WORKERS_CONTEXT.Barrier(n)
    work = str(tmp_path / "work")
    calls: list[tuple[Callable[..., Any], tuple]] = [
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
    records = [rec for result in results[:writers] for rec in result]
    gc_totals, deaths, pushing, reading, remote_gc = results[writers:]
    assert gc_totals["runs"] > 0 and gc_totals["objects_deleted"] > 0, gc_totals
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
        f"\n{backend} gc loop: {len(records)} versions by {writers} writers, "
        f"{gc_totals['runs']} gc runs ({gc_totals['objects_deleted']} objects deleted, "
        f"{gc_totals['packs_rewritten']} packs rewritten), {deaths} dying writes, "
        f"{pushing['pushes']} pushes, {reading['reads']} reads, "
        f"{remote_gc['runs']} gc runs on the remote, in {elapsed:.1f} s"
    )


# ---- 5. gc on buckets: grace, reachability, repacking --------------------------------


@pytest.mark.parametrize("backend", ["local", "s3-moto", "s3-seaweed", "gcs"])
def test_gc_deletes_old_garbage_keeps_young_and_reachable_and_repacks(
    backend: str, make_spec: Any, tmp_path: Path
) -> None:
    spec = make_spec(backend)
    repo = open_spec_repo(spec, str(tmp_path / "cache"))
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

    time.sleep(3.5)  # S3 keeps modification times to the second
    with repo.writing():
        young_loose = store.put(Blob(content("young loose")))
        with store.writer() as writer:
            young_packed = writer.add_blob(content("young packed"))

    started = time.monotonic()
    report = gc(repo, grace_seconds=2.5)
    first = time.monotonic() - started
    assert report.packs_rewritten == 1, report  # the pack of "small.bin" and old garbage
    # Old garbage also holds superseded run records (and, on buckets, lock blobs).
    assert report.objects_deleted >= len(old_packed) + len(old_loose), report
    assert report.kept_for_grace >= 2, report
    fresh = open_spec_repo(spec, str(tmp_path / "cache2"))
    assert not fresh.objects.has_many(old_packed + old_loose)
    assert fresh.objects.has_many([young_loose, young_packed]) == {young_loose, young_packed}
    assert len(fresh.objects.packs() & packs_before) == len(packs_before) - 1
    assert fsck(fresh).ok
    files = version_files(Registry(fresh), version.id, tmp_path / "dl")
    assert files == live

    report = gc(repo, grace_seconds=0)  # now the young garbage goes too
    assert report.objects_deleted >= 2 and report.kept_for_grace == 0, report
    fresh = open_spec_repo(spec, str(tmp_path / "cache3"))
    assert not fresh.objects.has_many([young_loose, young_packed])
    assert fsck(fresh).ok
    assert version_files(Registry(fresh), version.id, tmp_path / "dl") == live
    assert not any(fresh.storage.exists(loose_key(i)) for i in old_loose)
    # Nothing unreachable is left but the lock blob of that gc itself (bucket stores).
    live = {i for i, _ in reachable(fresh.objects, fresh.refs.list("").values())}
    for leftover in set(fresh.objects) - live:
        assert b" locks/gc/" in fresh.objects.read_blob(leftover)
    again = gc(repo, grace_seconds=0)
    assert again.packs_rewritten == 0 and again.objects_deleted <= 1, again
    print(f"\n{backend}: gc with grace 2.5 s in {first:.2f} s; {report.reachable} reachable")


# ---- 6. the lock itself: writers exclude gc, a waiting gc holds new writers back -----


def _hold_lock(spec: Spec, kind: str, flags: str, seconds: float) -> None:
    repo = open_spec_repo(spec)
    lock = repo.exclusive(wait=60) if kind == "gc" else repo.writing()
    with lock:
        Path(flags, f"{kind}-in").write_text(repr(time.time()))
        time.sleep(seconds)
        Path(flags, f"{kind}-out").write_text(repr(time.time()))


def _flag(flags: Path, name: str, timeout: float = START_TIMEOUT) -> float:
    deadline = time.monotonic() + timeout
    while not (flags / name).exists():
        assert time.monotonic() < deadline, f"{name} never came"
        time.sleep(0.01)
    return float((flags / name).read_text())


@pytest.mark.parametrize("backend", ["local", "s3-moto", "gcs"])
def test_writers_exclude_gc_and_a_waiting_gc_goes_before_new_writers(
    backend: str, make_spec: Any, tmp_path: Path
) -> None:
    spec = make_spec(backend)
    repo = open_spec_repo(spec, str(tmp_path / "cache"))
    flags = tmp_path / "flags"
    flags.mkdir()

    # A writer holds the store: gc cannot have it meanwhile, and gets it after.
    holder = Workers([(_hold_lock, (spec, "writer", str(flags), 4.0))], tmp_path / "p1")
    try:
        _flag(flags, "writer-in")
        with pytest.raises(artifacts.UsageError, match="busy"):
            gc(repo, grace_seconds=0, wait=0.5)
        times: dict[str, float] = {}

        def collect() -> None:
            with repo.exclusive(wait=60):
                times["gc-in"] = time.time()
                time.sleep(1.0)
                times["gc-out"] = time.time()

        waiting_gc = threading.Thread(target=collect)
        waiting_gc.start()
        time.sleep(0.5)  # gc is waiting for the writer now; a new writer comes
        newcomer = Workers([(_hold_lock, (spec, "late", str(flags), 0.0))], tmp_path / "p2")
        waiting_gc.join(60)
        newcomer.wait(timeout=60)
        holder.wait(timeout=60)
    finally:
        holder.kill()
    assert times["gc-in"] >= _flag(flags, "writer-out"), "gc ran beside a writer"
    assert _flag(flags, "late-in") >= times["gc-out"], "a new writer went before a waiting gc"

    # gc holds the store: a writer waits for it.
    holder = Workers([(_hold_lock, (spec, "gc", str(flags), 2.0))], tmp_path / "p3")
    try:
        _flag(flags, "gc-in")
        with repo.writing():
            entered = time.time()
        holder.wait(timeout=60)
    finally:
        holder.kill()
    assert entered >= _flag(flags, "gc-out"), "a writer ran beside gc"


@pytest.mark.parametrize("backend", ["s3-moto", "gcs"])
def test_bucket_lock_refs_are_cleaned_and_an_unreadable_one_still_holds_gc_off(
    backend: str, make_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make_spec(backend)
    repo = open_spec_repo(spec, str(tmp_path / "cache"))
    barrier = WORKERS_CONTEXT.Barrier(2)
    run_processes(
        [(_logger, (spec, me, 2, str(tmp_path / "work"), barrier)) for me in range(2)],
        tmp_path / "procs",
    )
    # Every process that took the lock left its lock ref behind, as a tombstone.
    assert len(list(repo.refs.names("locks/writers/"))) >= 2
    assert not repo.refs.list("locks/")
    time.sleep(1.1)  # bucket modification times have a resolution of a second
    monkeypatch.setattr(cas.gc, "TMP_MIN_AGE", 1.0)  # instead of an hour
    report = gc(repo, grace_seconds=0)
    assert report.lock_refs_deleted >= 2
    assert len(list(repo.refs.names("locks/"))) <= 1  # that gc's own, as a tombstone
    assert fsck(repo).ok

    # A lock whose blob cannot be read (gc of a crashed run removed it, or it was never
    # written) is counted from its ref's write time: live, it keeps gc away.
    repo.refs.set_if_equals("locks/writers/orphan", None, bytes(32))
    assert fsck(repo).ok  # a lock ref carries no data: nothing is missing
    with pytest.raises(artifacts.UsageError, match="busy"):
        gc(repo, grace_seconds=0, wait=0.5)


def _hold_long(spec: Spec, flags: str, seconds: float, stale: float, beat: float) -> None:
    cas.locks.STALE_SECONDS, cas.locks.HEARTBEAT_SECONDS = stale, beat  # an hour is long
    _hold_lock(spec, "long", flags, seconds)


def test_a_long_writer_on_a_bucket_renews_its_lock_and_a_dead_one_goes_stale(
    make_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make_spec("s3-moto")
    repo = open_spec_repo(spec, str(tmp_path / "cache"))
    flags = tmp_path / "flags"
    flags.mkdir()
    stale = 2.0
    monkeypatch.setattr(cas.locks, "STALE_SECONDS", stale)
    holder = Workers([(_hold_long, (spec, str(flags), 3 * stale, stale, 0.3))], tmp_path / "p")
    try:
        taken = _flag(flags, "long-in")
        while time.time() < taken + 1.5 * stale:  # its first blob is stale by now
            with pytest.raises(artifacts.UsageError, match="busy"):
                gc(repo, grace_seconds=0, wait=0.3)
        holder.wait(timeout=60)
    finally:
        holder.kill()
    gc(repo, grace_seconds=0, wait=5)

    # A writer that died holding the lock stops blocking gc once its lock is stale, by
    # the bucket's time of its ref: the time written in its blob does not count, nor
    # does a blob that is gone.
    blob = repo.objects.put(Blob(f"{time.time() - 2 * stale!r} locks/writers/dead 1".encode()))
    repo.refs.set_if_equals("locks/writers/dead", None, blob)
    repo.refs.set_if_equals("locks/writers/ghost", None, bytes(32))
    with pytest.raises(artifacts.UsageError, match="busy"):
        gc(repo, grace_seconds=0, wait=0.3)
    time.sleep(stale + 1.1)  # bucket modification times have a resolution of a second
    gc(repo, grace_seconds=0, wait=5)


# ---- 7. lock refs judged by the bucket's clock -----------------------------------------


def _enter_writing(repo: Repository, timeout: float) -> float | None:
    """Seconds a writer took to get into ``writing()``; None if it never did in time."""
    entered: list[float] = []
    started = time.monotonic()

    def enter() -> None:
        with repo.writing():
            entered.append(time.monotonic() - started)

    threading.Thread(target=enter, daemon=True).start()  # abandoned if it never gets in
    deadline = started + timeout
    while not entered and time.monotonic() < deadline:
        time.sleep(0.05)
    return entered[0] if entered else None


def test_garbage_and_future_dated_lock_refs_block_no_writer_for_long(
    make_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone who may write ``refs/locks/`` may write nonsense there. A lock's age is the
    bucket's modification time of its ref, never a time a client wrote into it, and a
    gc lock not renewed for GC_STALE_SECONDS no longer counts."""
    monkeypatch.setattr(cas.locks, "GC_STALE_SECONDS", 2.0)
    spec = make_spec("s3-moto")
    repo = open_spec_repo(spec, str(tmp_path / "cache"))
    future = repo.objects.put(Blob(f"{time.time() + 10 * 365 * 86400!r} locks/gc/x 1".encode()))
    repo.refs.set_if_equals("locks/gc/future", None, future)
    repo.storage.put("refs/locks/gc/garbage", b"\xff not a ref")
    repo.storage.put("refs/locks/writers/garbage", b"\xff not a ref")
    waited = _enter_writing(repo, timeout=30)
    assert waited is not None and waited < 15, "a writer waited on nonsense lock refs"
    monkeypatch.setattr(cas.gc, "TMP_MIN_AGE", 1.0)
    time.sleep(2.2)  # past GC_STALE_SECONDS + TMP_MIN_AGE, at a second's resolution
    report = gc(repo, grace_seconds=0, wait=30)  # and gc neither fails nor waits on them
    assert report.lock_refs_deleted >= 3, report
    assert fsck(repo).ok


def _hold_gc_until_killed(spec: Spec, flags: str) -> None:
    _hold_lock(spec, "gc", flags, 3600)


def test_a_killed_gc_holds_writers_back_only_until_its_lock_goes_stale(
    make_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cas.locks, "GC_STALE_SECONDS", 3.0)  # the writer's judgement
    spec = make_spec("s3-moto")
    repo = open_spec_repo(spec, str(tmp_path / "cache"))
    flags = tmp_path / "flags"
    flags.mkdir()
    holder = Workers([(_hold_gc_until_killed, (spec, str(flags)))], tmp_path / "p")
    try:
        _flag(flags, "gc-in")
        holder.kill()  # SIGKILL: its lock ref stays, and nothing renews it
    finally:
        holder.kill()
    waited = _enter_writing(repo, timeout=cas.locks.GC_STALE_SECONDS + 30)
    assert waited is not None, "a dead gc held a writer back"
    assert waited <= cas.locks.GC_STALE_SECONDS + 10
    print(f"\nmoto: a writer got in {waited:.1f} s after gc was killed")
