"""Logging one version from Dask workers (docs/scale.md): each task upserts its shard
as a part straight into a bucket (moto), one finisher commits the version.

One ``LocalCluster`` of worker processes serves the module. The tasks get plain data
(the store's URL and options, their shard's directory): a run cannot be pickled
(tests/test_artifacts.py checks that it says so).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import artifacts
from artifacts.ref_names import dist_prefix
from cas import Repository
from tests.helpers import write
from tests.httpproxy import FaultProxy, Request
from tests.servers import new_s3_spec

distributed = pytest.importorskip("distributed")
pytest.importorskip("s3fs")

ENTITY, PROJECT, NAME, DID = "team", "proj", "data", "data-2024"
SHARDS = 4
FLAT = 1500  # past cas.pages.MIN_PAGE: the merged flat directory may be cut into pages
NESTED_DIRS = 4
WAIT = 120  # seconds: every wait on the cluster is bounded


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    import dask

    # A task whose worker dies fails at once (KilledWorker) rather than being run again:
    # the tests retry by hand, to see what a retry does.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        )
        try:
            with distributed.Client(cluster, timeout=WAIT) as client:
                yield client
        finally:
            cluster.close(timeout=WAIT)


def make_shards(root: Path, seed: str) -> tuple[Path, list[Path]]:
    """A tree (a flat directory of FLAT files and NESTED_DIRS small ones) and its SHARDS
    shards: flat files dealt round-robin, nested directories whole; hard links."""
    whole = root / "whole"
    for i in range(FLAT):
        write(whole / "flat" / f"f{i:05d}.txt", f"{seed} {i}\n")
    for j in range(NESTED_DIRS):
        for k in range(5):
            write(whole / "nested" / f"d{j}" / f"x{k}.txt", f"{seed} {j} {k}\n")
    shards = [root / f"shard{s}" for s in range(SHARDS)]
    for path in sorted(p for p in whole.rglob("*") if p.is_file()):
        rel = path.relative_to(whole)
        number = int("".join(c for c in rel.parts[1] if c.isdigit()))
        target = shards[number % SHARDS] / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    return whole, shards


def upsert_shard(spec: dict[str, Any], shard: str, part: str) -> None:
    """A Dask task: the shard's files as one part, in the bucket ``spec`` names."""
    artifact = artifacts.Artifact(NAME, "dataset")
    artifact.add_dir(shard)
    artifacts.upsert_part(
        artifact,
        DID,
        part,
        store=spec["url"],
        store_options=spec["options"],
        project=PROJECT,
        entity=ENTITY,
    )


def upsert_then_wait_to_die(spec: dict[str, Any], shard: str, part: str, pid_file: str) -> None:
    """``upsert_shard``, its worker's pid written first, for the test to kill it."""
    Path(pid_file).write_text(str(os.getpid()))
    upsert_shard(spec, shard, part)


def run_tasks(client: Any, spec: dict[str, Any], shards: list[Path]) -> None:
    futures = [
        client.submit(upsert_shard, spec, str(shard), str(i), pure=False)
        for i, shard in enumerate(shards)
    ]
    client.gather(futures)  # raises the first task's error, if any
    distributed.wait(futures, timeout=WAIT)


def finish(spec: dict[str, Any]) -> Any:
    with artifacts.init(
        store=spec["url"], store_options=spec["options"], project=PROJECT, entity=ENTITY
    ) as run:
        return run.finish_artifact(artifacts.Artifact(NAME, "dataset"), distributed_id=DID)


def log_whole(whole: Path, store: str, options: dict[str, Any] | None = None) -> Any:
    """The version a single process logs of ``whole``."""
    with artifacts.init(store=store, store_options=options, project=PROJECT, entity=ENTITY) as run:
        artifact = artifacts.Artifact(NAME, "dataset")
        artifact.add_dir(str(whole))
        return run.log_artifact(artifact)


def single_process_digest(whole: Path, store: Path) -> str:
    return log_whole(whole, str(store)).digest


def parts_left(spec: dict[str, Any]) -> dict[str, Any]:
    repo = Repository.open(spec["url"], **spec["options"])
    return repo.refs.list(dist_prefix(ENTITY, PROJECT, NAME, DID))


def test_four_tasks_log_one_version_equal_to_a_single_process_log(
    client: Any, moto_server: Any, tmp_path: Path
) -> None:
    whole, shards = make_shards(tmp_path, "a")
    spec = new_s3_spec(moto_server)
    run_tasks(client, spec, shards)
    assert len(parts_left(spec)) == SHARDS
    version = finish(spec)
    assert version.version == "v0"
    assert version.digest == single_process_digest(whole, tmp_path / "single")
    assert parts_left(spec) == {}
    assert len(version.manifest.entries) == FLAT + NESTED_DIRS * 5


def test_a_task_run_twice_leaves_the_same_version(
    client: Any, moto_server: Any, tmp_path: Path
) -> None:
    whole, shards = make_shards(tmp_path, "b")
    spec = new_s3_spec(moto_server)
    run_tasks(client, spec, shards)
    # Dask runs a task again when it thinks its worker lost: the same shard, again.
    client.submit(upsert_shard, spec, str(shards[2]), "2", pure=False).result(timeout=WAIT)
    assert len(parts_left(spec)) == SHARDS  # the retry rewrote its part, added none
    version = finish(spec)
    assert version.digest == single_process_digest(whole, tmp_path / "single")
    # A run of the task after the finish (a worker Dask had given up for lost) leaves the
    # version as it is: its part waits for the next finish of this id (docs/scale.md).
    client.submit(upsert_shard, spec, str(shards[2]), "2", pure=False).result(timeout=WAIT)
    latest = artifacts.Api(store=spec["url"], store_options=spec["options"]).artifact(
        f"{ENTITY}/{PROJECT}/{NAME}:latest"
    )
    assert (latest.version, latest.digest) == ("v0", version.digest)
    assert list(parts_left(spec)) == [dist_prefix(ENTITY, PROJECT, NAME, DID) + f"{DID}-2"]


def test_a_worker_killed_mid_upsert_leaves_earlier_versions_intact(
    client: Any, moto_server: Any, tmp_path: Path
) -> None:
    spec = new_s3_spec(moto_server)
    old, _ = make_shards(tmp_path / "old", "old")
    v0 = log_whole(old, spec["url"], spec["options"])
    new, shards = make_shards(tmp_path / "new", "new")
    # The dying task's bucket is behind a proxy that holds its part's compare-and-swap
    # (everything else of the upsert is stored by then) until its worker is killed.
    reached, killed = threading.Event(), threading.Event()

    def hold_the_part_ref(request: Request) -> str | None:
        if request.method == "PUT" and request.conditional() and "/dist/" in request.path:
            reached.set()
            killed.wait(WAIT)
            return "refuse"
        return None

    pid_file = tmp_path / "pid"
    with FaultProxy(moto_server.endpoint_url, hold_the_part_ref) as proxy:
        proxied = {**spec, "options": {**spec["options"], "endpoint_url": proxy.endpoint_url}}
        dying = client.submit(
            upsert_then_wait_to_die, proxied, str(shards[0]), "0", str(pid_file), pure=False
        )
        try:
            assert reached.wait(WAIT), "the task never reached its part's compare-and-swap"
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        finally:
            killed.set()
        with pytest.raises(distributed.KilledWorker):
            dying.result(timeout=WAIT)
    client.wait_for_workers(2, timeout=WAIT)

    latest = artifacts.Api(store=spec["url"], store_options=spec["options"]).artifact(
        f"{ENTITY}/{PROJECT}/{NAME}:latest"
    )
    assert (latest.version, latest.digest) == ("v0", v0.digest)
    assert parts_left(spec) == {}
    got = latest.get_entry("nested/d1/x1.txt").download(str(tmp_path / "got"))
    assert Path(got).read_text() == "old 1 1\n"
    # Dask's retry of every task, then the finish: the new version, whole.
    run_tasks(client, spec, shards)
    version = finish(spec)
    assert version.version == "v1"
    assert version.digest == single_process_digest(new, tmp_path / "single")
