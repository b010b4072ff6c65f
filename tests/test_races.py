"""Real processes racing on one ref: compare-and-swap must never lose an update.

Each worker is a separate ``python -c`` process that opens the store from a
*spec* (plain data), then increments a counter ref again and again through
``Repository.update_ref``: read the ref, read the blob it points to (a decimal
number), put the blob of the next number, compare-and-swap the ref, retry on
conflict. With W workers of R rounds the counter must end at exactly W * R, and
the values the workers report having written must be 1 .. W * R, each once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest

from cas import Repository

ROOT = Path(__file__).resolve().parent.parent
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

WORKER = r"""
import json, sys, time
from pathlib import Path

spec, rounds = json.loads(sys.argv[1]), int(sys.argv[2])
sync_dir, me = Path(sys.argv[3]), sys.argv[4]

from cas import Blob, Repository, open_storage

url = spec["url"]
if "://" not in url or url.startswith("file://"):
    storage = open_storage(url)
else:
    from tests.servers import open_storage_from_spec
    storage = open_storage_from_spec(spec)
repo = Repository(storage)

# Everyone starts at once, so that the writes really overlap.
(sync_dir / f"ready-{me}").touch()
deadline = time.monotonic() + 60
while not (sync_dir / "go").exists():
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.002)

attempts = 0

def compute(old):
    global attempts
    attempts += 1
    value = 0 if old is None else int(repo.objects.read_blob(old))
    return repo.objects.put(Blob(str(value + 1).encode()))

written = []
for _ in range(rounds):
    new = repo.update_ref("counter", compute)
    written.append(int(repo.objects.read_blob(new)))
storage.close()
print(json.dumps({"written": written, "attempts": attempts}))
"""


def run_workers(spec: dict[str, Any], workers: int, rounds: int, sync_dir: Path) -> list[dict]:
    sync_dir.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "XDG_CACHE_HOME": str(sync_dir / "cache"),  # remote pack-index caches stay here
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(spec), str(rounds), str(sync_dir), str(i)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(workers)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(sync_dir.glob("ready-*"))) < workers:
            failed = [p for p in procs if p.poll() not in (None, 0)]
            assert not failed, failed[0].communicate()[1].decode()
            assert time.monotonic() < deadline, "workers did not start within 60 s"
            time.sleep(0.01)
        (sync_dir / "go").touch()
        results = []
        deadline = time.monotonic() + WORKER_TIMEOUT
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert proc.returncode == 0, err.decode()
            results.append(json.loads(out))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize(("backend", "rounds"), RACE_BACKENDS)
def test_processes_racing_on_one_ref_lose_no_update(
    backend: str, rounds: int, make_spec: Any, open_store: Any, tmp_path: Path
) -> None:
    spec = make_spec(backend)
    started = time.monotonic()
    results = run_workers(spec, WORKERS, rounds, tmp_path / "sync")
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
