"""Ctrl-C while requests to a bucket hang, in a real process against moto: one line,
exit 130 at once, nothing half-written left where the user looks (docs/cli.md, "Errors
and exit status")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import artifacts
from artifacts.hashing import blob_id_of_file
from tests.helpers import write, write_tree
from tests.httpproxy import FaultProxy, Request
from tests.servers import new_s3_spec
from tests.test_cli import cli_env

pytest.importorskip("s3fs")

BIG = 3 << 20  # a loose blob (blobs/…), read by a download's threads
ALIASES = ["best", "prod", "reviewed", "shipped"]  # enough to be read in threads


class Hang:
    """Once ``start()``ed, the proxy's answer to the requests ``matches`` picks is
    ``action`` (the server hangs, or stalls mid-body); ``reached`` is set at the first."""

    def __init__(self, action: str, matches: Any) -> None:
        self.action, self.matches = action, matches
        self.on, self.reached = threading.Event(), threading.Event()

    def __call__(self, request: Request) -> str | None:
        if self.on.is_set() and request.method == "GET" and self.matches(request.path):
            self.reached.set()
            return self.action
        return None


@pytest.fixture
def bucket(moto_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Artifacts a and b, two large files each, in a fresh bucket behind a proxy;
    yields (url, the CLI's environment, the proxy's Hang, a's files' ids as in their keys)."""
    spec = new_s3_spec(moto_server)
    hang = Hang("black-hole", lambda path: False)
    with FaultProxy(moto_server.endpoint_url, hang) as proxy:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("ARTIFACTS_ENTITY", "team")
        monkeypatch.setenv("ARTIFACTS_PROJECT", "proj")
        options = {**spec["options"], "endpoint_url": proxy.endpoint_url}
        for name in ("a", "b"):
            files = {f"{name}{i}.bin": os.urandom(BIG) for i in range(2)}
            data = write_tree(tmp_path / f"data-{name}", files)
            if name == "a":
                # as in their keys: blobs/<2 hex digits>/<the rest>
                ids = [
                    f"{h[:2]}/{h[2:]}"
                    for h in (blob_id_of_file(str(data / p)).hex() for p in files)
                ]
            with artifacts.init(store=spec["url"], store_options=options) as run:
                artifact = artifacts.Artifact(name, "dataset")
                artifact.add_dir(str(data))
                run.log_artifact(artifact, aliases=ALIASES)
        env = {k: v for k, v in cli_env(None).items() if not k.startswith("AWS_")}
        env.update(
            ARTIFACTS_CACHE_DIR=str(tmp_path / "cli-cache"), XDG_CACHE_HOME=str(tmp_path / "xdg")
        )
        env.update(
            AWS_ENDPOINT_URL=proxy.endpoint_url,
            AWS_ACCESS_KEY_ID=moto_server.key,
            AWS_SECRET_ACCESS_KEY=moto_server.secret,
            AWS_DEFAULT_REGION="us-east-1",
            ARTIFACTS_TIMEOUT="60",
        )
        yield spec["url"], env, hang, ids


def interrupt_once_hanging(args: list[str], cwd: Path, env: dict[str, str], hang: Hang) -> str:
    """Run the command, Ctrl-C it once a request of it hangs; its stderr."""
    hang.on.set()
    proc = subprocess.Popen(
        [sys.executable, "-m", "artifacts", *args],
        cwd=cwd, env=env, start_new_session=True, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert hang.reached.wait(30), "no request hung"
        time.sleep(0.5)  # the others queued or in flight too
        assert proc.poll() is None
        interrupted = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - interrupted < 5, err
    assert (proc.returncode, err) == (130, "artifacts: interrupted\n")
    return err


def test_ctrl_c_while_reading_the_aliases_of_a_bucket_stops_at_once(
    bucket: Any, tmp_path: Path
) -> None:
    """versions reads the aliases in a pool of threads, and Ctrl-C waited for every
    read, queued ones too, to give up (ARTIFACTS_TIMEOUT, with retries)."""
    url, env, hang, _ = bucket
    hang.matches = lambda path: "/aliases/" in path
    interrupt_once_hanging(["--store", url, "versions", "a"], tmp_path, env, hang)


@pytest.mark.parametrize("into", ["a directory with files", "a new directory"])
def test_ctrl_c_during_a_download_stops_at_once_leaving_no_partial_file(
    bucket: Any, tmp_path: Path, into: str
) -> None:
    """The download's threads were waited for, each large file read until the server's
    silence timed out; what they had written stayed."""
    url, env, hang, ids = bucket
    hang.action = "stall"  # half of each large file, then silence
    hang.matches = lambda path: any(i in path for i in ids)
    place = tmp_path / "place"
    out = place / "out"
    if into == "a directory with files":  # each file written in place, under a temporary name
        write(out / "mine.txt", "the user's\n")
    else:  # in a directory staged beside it
        place.mkdir()
    interrupt_once_hanging(["--store", url, "download", "a:v0", str(out)], tmp_path, env, hang)
    left = sorted(p.relative_to(place).as_posix() for p in place.rglob("*"))
    assert left == (["out", "out/mine.txt"] if into == "a directory with files" else [])


# The CLI, run as `artifacts` runs it, with an audit hook that holds the first thread
# about to rename a file of the download cache's tmp/ into place and sends the process
# a signal: a Ctrl-C (or a kill) while a download's thread writes into the cache.
_SIGNAL_WHILE_CACHING = """
import os, signal, sys, threading, time
temp = os.path.join(os.environ["ARTIFACTS_CACHE_DIR"], "tmp") + os.sep
def hold(event, args):
    if event == "os.rename" and str(args[0]).startswith(temp):
        if threading.current_thread() is not threading.main_thread():
            os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL"]))
            time.sleep(120)
sys.addaudithook(hold)
from artifacts.__main__ import main
sys.exit(main())
"""


@pytest.mark.parametrize("sent", ["SIGINT", "SIGKILL"])
def test_a_download_stopped_while_a_thread_writes_into_the_cache_leaves_no_temporary_file(
    bucket: Any, tmp_path: Path, sent: str
) -> None:
    """The command exits without waiting for its threads: the cache's temporary file of
    the one caught between writing and renaming stayed in its tmp/ for good. Now a
    Ctrl-C deletes it, and the next download through the cache one a kill left."""
    url, env, _, _ = bucket
    cached = Path(env["ARTIFACTS_CACHE_DIR"])
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_WHILE_CACHING, "--store", url, "download", "a:v0", out],
        cwd=tmp_path, env={**env, "SIGNAL": sent}, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    if sent == "SIGINT":
        assert (proc.returncode, proc.stderr) == (130, "artifacts: interrupted\n")
        assert os.listdir(cached / "tmp") == []
    else:
        assert proc.returncode == -signal.SIGKILL
        assert os.listdir(cached / "tmp") != []  # a process killed cleans nothing up
    assert not out.exists()
    again = subprocess.run(
        [sys.executable, "-m", "artifacts", "--store", url, "download", "a:v0", out],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert os.listdir(cached / "tmp") == []
    assert sorted(os.listdir(out)) == ["a0.bin", "a1.bin"]
