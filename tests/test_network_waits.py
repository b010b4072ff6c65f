"""Waits on a remote that the request timeouts alone did not bound, or did not say,
and answers that were taken for what they were not: a host name that does not
resolve, or whose resolver never answers (S3, GCS, http stores); retries waited for
with no terminal to say so; a slow uplink cut as stalled; a range answered with the
whole object; a listing that goes round (docs/remotes.md, "Timeouts and retries").
Credentials: tests/test_remote_credentials.py.

The commands run as a user runs them, in processes of their own, against moto and
fake-gcs-server; a slow or hung DNS resolver is simulated in the command's process
by a ``sitecustomize`` that delays ``socket.getaddrinfo`` for names under ``.test``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from artifacts.cli import WAIT_SAID
from cas.errors import StorageError
from tests.faultproxy import FaultProxy
from tests.httpproxy import Action, Request
from tests.httpproxy import FaultProxy as HTTPFaultProxy
from tests.servers import Spec, open_storage_from_spec
from tests.test_cli import ROOT
from tests.test_network_faults import STARTUP, TIMEOUT, Bench

# Names under .test resolve to 127.0.0.1 after the delay their first label gives:
# "hang" never answers, "slow" answers after 0.3 s.
_RESOLVER = """
import socket, time
_real = socket.getaddrinfo

def getaddrinfo(host, *args, **kwargs):
    if isinstance(host, str) and host.endswith(".test"):
        time.sleep(3600 if host.startswith("hang.") else 0.3)
        host = "127.0.0.1"
    return _real(host, *args, **kwargs)

socket.getaddrinfo = getaddrinfo
"""


@contextlib.contextmanager
def _proxied(spec: Spec, fault: Callable[[Request], Action]) -> Iterator[Any]:
    """The store of ``spec``, reached through an HTTP proxy injecting ``fault``."""
    with HTTPFaultProxy(spec["options"]["endpoint_url"], fault) as proxy:
        with open_storage_from_spec(
            {**spec, "options": {**spec["options"], "endpoint_url": proxy.endpoint_url}}
        ) as store:
            yield store


def _server(request: pytest.FixtureRequest, kind: str) -> Any:
    return request.getfixturevalue("moto_server" if kind == "s3-moto" else "gcs_server")


@pytest.fixture(params=["s3-moto", "gcs"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def _bench(request: pytest.FixtureRequest, kind: str, tmp_path: Path, host: str) -> Bench:
    """A bench whose store's endpoint is the server's, by the host name ``host``."""
    server = _server(request, kind)
    port = urlsplit(server.endpoint_url).port
    bench = Bench(kind, server, tmp_path, f"http://{host}:{port}")
    resolver = tmp_path / "resolver"
    resolver.mkdir()
    (resolver / "sitecustomize.py").write_text(_RESOLVER)
    bench.env["PYTHONPATH"] = f"{resolver}:{ROOT}"
    bench.ok("init")
    bench.log_version()
    bench.ok("remote", "add", "origin", bench.url)
    return bench


@pytest.fixture
def unresolvable(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Iterator[Bench]:
    yield _bench(request, kind, tmp_path, "nonexistent.invalid")


def test_a_host_name_that_does_not_resolve_fails_at_once_saying_so(unresolvable: Bench) -> None:
    """No DNS name: nothing to wait for. Each command fails at once (not after the
    timeout's retries), in one line naming the endpoint and what to check."""
    bench = unresolvable
    bench.env["ARTIFACTS_TIMEOUT"] = "30"
    for args in (("push", "origin"), ("pull", "origin"), ("--store", bench.url, "ls")):
        rc, out, elapsed = bench.cli(*args)
        assert rc == 1, out
        assert out.count("\n") == 1 and out.startswith("artifacts: error: "), out
        assert "nonexistent.invalid" in out and "does not resolve" in out, out
        assert elapsed < STARTUP, (elapsed, out)


def test_a_resolver_that_never_answers_is_given_up_within_the_timeout(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path
) -> None:
    bench = _bench(request, kind, tmp_path, "hang.test")
    for args in (("push", "origin"), ("--store", bench.url, "ls")):
        out = bench.fails_within_bound(*args)
        assert "hang.test" in out and "resolve" in out, out


def test_a_slow_resolver_within_the_timeout_is_waited_for(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path
) -> None:
    # moto reads a bucket name from the host's first label, unless it is "localhost".
    bench = _bench(request, kind, tmp_path, "localhost.slow.test")
    bench.env["ARTIFACTS_TIMEOUT"] = "10"
    start = time.monotonic()
    bench.ok("push", "origin")
    assert time.monotonic() - start < 10 + STARTUP
    clone = bench.tmp / "clone"
    bench.ok("clone", bench.url, str(clone))
    bench.assert_clean(clone)


def _throttled_for(seconds: float, armed: list[bool]) -> Callable[[Request], Action]:
    """Once ``armed``: 503 SlowDown to every request for ``seconds`` from the first."""
    until: list[float] = []

    def fault(request: Request) -> Action:
        if not armed:
            return None
        if not until:
            until.append(time.monotonic() + seconds)
        return "throttle" if time.monotonic() < until[0] else None

    return fault


@pytest.mark.parametrize("seconds", [9.0, 0.5])
def test_a_long_retry_says_what_it_waits_for_off_a_terminal(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path, seconds: float
) -> None:
    """Standard error a pipe (CI, nohup): a push whose bucket answers 503 for 9 s says,
    now and then, what it waits for; one answered 503 for half a second says nothing
    but its result."""
    server = _server(request, kind)
    armed: list[bool] = []
    with HTTPFaultProxy(server.endpoint_url, _throttled_for(seconds, armed)) as proxy:
        bench = Bench(kind, server, tmp_path, proxy.endpoint_url)
        bench.env["ARTIFACTS_TIMEOUT"] = "30"
        bench.ok("init")
        bench.log_version()
        bench.ok("remote", "add", "origin", bench.url)
        armed.append(True)
        rc, out, _ = bench.cli("push", "origin")
    assert rc == 0, out
    assert len(proxy.faults()) >= 3
    said = [line for line in out.splitlines() if line.startswith("artifacts: retrying")]
    if seconds < WAIT_SAID:
        assert said == [], out
    else:
        assert 1 <= len(said) <= seconds // WAIT_SAID + 1, out
        assert all(bench.url in line and "503" in line for line in said), out


@pytest.mark.parametrize("kind", ["s3-moto", "gcs"])
def test_a_slow_uplink_that_keeps_moving_is_not_cut_as_stalled(
    kind: str, make_spec: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An upload through a 40 KB/s uplink takes 5 s, far longer than the read timeout
    (2 s), and moves all along: it must land at the first attempt. (The kernel took the
    whole body at once and aiohttp's read timeout ran out while it was still being sent;
    a body read 64 KiB at a time looked stalled between reads.)"""
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "8")
    spec = make_spec(kind)
    data = os.urandom(200_000)
    with FaultProxy(spec["options"]["endpoint_url"], upload_rate=40_000) as proxy:
        options = {**spec["options"], "endpoint_url": proxy.url}
        with open_storage_from_spec({**spec, "options": options}) as store:
            with caplog.at_level(logging.INFO, logger="cas.storage"):
                store.put("blobs/slow", data)
    assert [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()] == []
    with open_storage_from_spec(spec) as store:
        assert store.get("blobs/slow") == data


@pytest.mark.parametrize("kind", ["s3-moto", "gcs"])
def test_a_range_answered_with_the_whole_object_hands_out_the_range(
    kind: str, make_spec: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A server or cache that ignores Range answers 200 with the whole object: the
    bytes asked for come back, not the whole object in their place; the whole object
    cut short on the way is read again, never handed out."""
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "10")
    spec = make_spec(kind)
    data = os.urandom(1 << 20)
    with open_storage_from_spec(spec) as store:
        store.put("blobs/ab/cd", data)
    ranges = [(500_000, None), (100, 900_000), (0, 10), ((1 << 20) - 5, 1 << 20)]
    for action in ("ignore-range", "ignore-range-cut"):
        first = [True]

        def fault(request: Request, action: Action = action, first: list[bool] = first) -> Action:
            if request.method != "GET" or "cd" not in request.path:
                return None
            if action == "ignore-range":
                return action
            cut, first[0] = first[0], False
            return action if cut else "ignore-range"

        caplog.clear()
        with _proxied(spec, fault) as store, caplog.at_level(logging.INFO, "cas.storage"):
            for start, end in ranges:
                assert store.get("blobs/ab/cd", start, end) == data[start:end], (action, start)
        retries = [r for r in caplog.records if "retrying" in r.getMessage()]
        assert len(retries) == (action == "ignore-range-cut"), retries


@pytest.mark.parametrize("kind", ["s3-moto", "gcs"])
def test_a_listing_that_goes_round_is_given_up_saying_so(
    kind: str, make_spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that answers a page token with the first page again (so with the same
    token) listed for ever, every request answered: the listing fails at once, in one
    line naming the store."""
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "10")
    spec = make_spec(kind)
    with open_storage_from_spec(spec) as store:
        for i in range(12):
            store.put(f"objects/{i:02x}", b"x")

    def fault(request: Request) -> Action:
        return "first-page" if request.method == "GET" else None

    outcome: list[BaseException | None] = []
    with _proxied(spec, fault) as store:
        store.list_page_size = 5

        def listing() -> None:
            try:
                list(store.list_stats("objects/"))
                outcome.append(None)
            except Exception as exc:
                outcome.append(exc)

        worker = threading.Thread(target=listing, daemon=True)
        worker.start()
        worker.join(20)
        assert outcome, "still listing after 20 s"
    error = outcome[0]
    assert isinstance(error, StorageError), error
    assert "\n" not in str(error) and spec["url"] in str(error) and "again" in str(error), error


def test_an_http_store_whose_resolver_never_answers_is_given_up_within_the_timeout(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """An http(s):// store's host name is looked up within its timeouts too: a resolver
    that never answers fails the command within the bound, in one line naming the store
    and the name; one that does not know the name says so at once."""
    bench = _bench(request, "s3-moto", tmp_path, "nonexistent.invalid")  # only its CLI
    for host, said in (("hang.test", "did not resolve"), ("nonexistent.invalid", "does not")):
        url = f"http://{host}:1/store"
        rc, out, elapsed = bench.cli("--store", url, "ls")
        assert rc == 1, out
        assert out.count("\n") == 1 and out.startswith("artifacts: error: "), out
        assert url in out and said in out, out
        assert elapsed < TIMEOUT + STARTUP, (elapsed, out)
