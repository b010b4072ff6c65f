"""Real processes racing on one ref: compare-and-swap must never lose an update.

Each worker is a separate process (tests/processes.py) that opens the store from
a *spec* (plain data), then increments a counter ref again and again through
``Repository.update_ref``: read the ref, read the blob it points to (a decimal
number), put the blob of the next number, compare-and-swap the ref, retry on
conflict. With W workers of R rounds the counter must end at exactly W * R, and
the values the workers report having written must be 1 .. W * R, each once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgpack
import pytest

from cas import Blob, ObjectId, Repository
from tests.processes import START_TIMEOUT, preload, run_processes, start_barrier
from tests.servers import open_storage_from_spec

preload(__name__)
WORKERS = 8
WORKER_TIMEOUT = 300  # for all the workers together

# (backend, rounds per worker). Remote servers take a few ms a request, so they
# run fewer rounds, and only with `make test-slow`.
RACE_BACKENDS = [
    pytest.param("local", 50, id="local"),
    pytest.param("s3-moto", 10, id="s3-moto", marks=pytest.mark.slow),
    pytest.param("s3-seaweed", 20, id="s3-seaweed", marks=pytest.mark.slow),
    pytest.param("gcs", 20, id="gcs", marks=pytest.mark.slow),
]


def _increment(spec: dict[str, Any], rounds: int, barrier: Any) -> dict[str, Any]:
    """Add 1 to the counter ``rounds`` times: the values written, and the attempts."""
    storage = open_storage_from_spec(spec)
    repo = Repository(storage)
    barrier.wait(START_TIMEOUT)  # everyone starts at once, so the writes really overlap
    attempts = 0

    def compute(old: ObjectId | None) -> ObjectId:
        nonlocal attempts
        attempts += 1
        value = 0 if old is None else int(repo.objects.read_blob(old))
        return repo.objects.put(Blob(str(value + 1).encode()))

    written = []
    for _ in range(rounds):
        new = repo.update_ref("counter", compute)
        written.append(int(repo.objects.read_blob(new)))
    storage.close()
    return {"written": written, "attempts": attempts}


@pytest.mark.parametrize(("backend", "rounds"), RACE_BACKENDS)
def test_processes_racing_on_one_ref_lose_no_update(
    backend: str, rounds: int, make_spec: Any, open_store: Any, tmp_path: Path
) -> None:
    spec = make_spec(backend)
    started = time.monotonic()
    barrier = start_barrier(WORKERS)
    calls = [(_increment, (spec, rounds, barrier))] * WORKERS
    results = run_processes(calls, tmp_path / "procs", timeout=WORKER_TIMEOUT)
    elapsed = time.monotonic() - started

    total = WORKERS * rounds
    written = sorted(v for r in results for v in r["written"])
    attempts = sum(r["attempts"] for r in results)
    # Every increment landed exactly once: no lost update, no value written twice.
    assert written == list(range(1, total + 1)), f"lost or repeated updates in {backend}"

    storage = open_store(spec)
    try:
        repo = Repository(storage, cache_dir=str(tmp_path / "cache"))
        final = repo.refs.get("counter")
        assert repo.objects.read_blob(final) == str(total).encode()
        raw = msgpack.unpackb(storage.get("refs/counter"), raw=False)
        assert raw == {"id": final, "seq": total}  # one write per increment, no more
    finally:
        storage.close()
    print(f"{backend}: {total} increments, {attempts - total} retries, {elapsed:.1f} s")
