"""A log inside a process full of threads (a training script) never forks among them.

A forked child inherits every lock another thread held at that instant, held by no
one: one it needs, it waits for forever. Real processes: a script logs a directory
while a thread of its own runs, as a data loader or a progress bar does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from artifacts import Artifact
from cas import ingest
from cas.store import LOOSE_THRESHOLD
from tests.helpers import write
from tests.processes import ROOT, python, wait_ok

pytestmark = pytest.mark.skipif(
    ingest.CORES < 2 or not os.path.isdir("/proc/self/task"), reason="two cores, and /proc"
)

# A thread waiting for commands on stdin ("q" to stop) blocks inside the read, holding
# stdin's lock. A worker forked then closes stdin as it starts (multiprocessing does),
# and waits for that lock forever.
HELD_STDIN = """
import os, sys, threading, time
import artifacts

reading = threading.Event()

def commands():
    reading.set()
    sys.stdin.readline()

threading.Thread(target=commands, daemon=True).start()
reading.wait()
time.sleep(0.2)  # blocked in the read by now: nothing is ever written to stdin
with artifacts.init() as run:
    artifact = artifacts.Artifact("data", "dataset")
    artifact.add_dir("data")
    run.log_artifact(artifact)
os.write(2, artifact.digest.encode())
os._exit(0)  # not through Python's exit: it would wait for the reading thread
"""

# Every fork's count of the process's threads (Python's and C libraries'), and the root.
FORKS_COUNTED = """
import json, os, sys, threading
forks = []
os.register_at_fork(before=lambda: forks.append(len(os.listdir("/proc/self/task"))))
import artifacts
from artifacts import scan
from cas import ingest
from cas.store import LOOSE_THRESHOLD

scan.SPLIT_MIN_FILES = scan.SPLIT_DIR_MIN_FILES = 100  # every fork a log may do, early
ingest.PARALLEL_MIN_FILES = 100
finished = threading.Event()
for _ in range(int(sys.argv[1])):  # a data loader, a metrics uploader...
    threading.Thread(target=finished.wait).start()
with artifacts.init() as run:
    artifact = artifacts.Artifact("data", "dataset")
    artifact.add_dir("data")
    run.log_artifact(artifact)
finished.set()
print(json.dumps({"forks": forks, "digest": artifact.digest}))
"""


def write_data(root: Path, files: int) -> str:
    """Small files, a flat directory and nested ones, and two large files (hashed by
    threads, joined just before the small files are stored): the digest the log must give."""
    for i in range(files):
        where = "flat" if i % 2 else f"d{i % 5}/e{i % 3}"
        write(root / "data" / where / f"f{i}.txt", f"file {i}\n")
    for name in ("big1.bin", "big2.bin"):
        write(root / "data" / name, os.urandom(LOOSE_THRESHOLD + 1))
    draft = Artifact("data", "dataset")
    draft.add_dir(str(root / "data"))
    return draft.digest


def test_a_log_finishes_while_another_thread_holds_a_lock_its_workers_need(ws: Path) -> None:
    digest = write_data(ws, ingest.PARALLEL_MIN_FILES + 100)  # stored by worker processes
    stdin, silent = os.pipe()  # nothing is written to it, and it stays open
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", HELD_STDIN],
            cwd=ws, env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    finally:
        os.close(stdin)
    try:
        _, err = proc.communicate(timeout=30)  # a hung log: killed below, and failed
    finally:
        proc.kill()
        proc.wait()
        os.close(silent)
    assert proc.returncode == 0 and err == digest, err


@pytest.mark.parametrize("threads", [0, 1])
def test_a_log_forks_only_while_no_other_thread_runs(ws: Path, threads: int) -> None:
    """Without other threads it still forks (fast); with one, never: and the same root."""
    digest = write_data(ws, 500)
    done = json.loads(wait_ok(python("-c", FORKS_COUNTED, str(threads), cwd=ws)))
    assert done["digest"] == digest
    assert all(count == 1 for count in done["forks"]), done["forks"]
    if threads == 0:  # the scan's helpers, and a worker per core
        assert len(done["forks"]) >= 3


JOINED = """
from concurrent.futures import ThreadPoolExecutor
from cas import forking

for _ in range(50):
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(abs, range(100)))
    assert forking.alone()  # the pool's threads, joined, are gone (if not yet from /proc)
"""


def test_threads_joined_leave_a_process_alone(tmp_path: Path) -> None:
    wait_ok(python("-c", JOINED, cwd=tmp_path))


# A file staged, then gone before the log reads it: the error a lone process raises.
GONE = """
import os, sys, threading
for _ in range(int(sys.argv[1])):
    threading.Thread(target=threading.Event().wait, daemon=True).start()
import artifacts

artifact = artifacts.Artifact("data", "dataset")
artifact.add_dir("data")
os.remove("data/flat/f1.txt")
try:
    with artifacts.init(store=sys.argv[2]) as run:  # a store each: all stored by workers
        run.log_artifact(artifact)
except OSError as error:
    print(type(error).__name__, error)
"""


def test_a_workers_error_is_raised_as_a_lone_process_raises_it(ws: Path) -> None:
    write_data(ws, ingest.PARALLEL_MIN_FILES + 100)
    said = []
    for threads in (0, 1):
        said.append(wait_ok(python("-c", GONE, str(threads), f"store{threads}", cwd=ws)))
        write(ws / "data" / "flat" / "f1.txt", "back")
    assert said[0] == said[1] and said[0].startswith("FileNotFoundError"), said
