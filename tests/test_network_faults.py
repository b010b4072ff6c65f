"""Network faults during whole commands (push, pull, clone, artifacts:// reads) on
S3 (moto) and GCS (fake-gcs-server): each ends within its bound with one line
saying what it waited for, and after it both stores fsck clean, earlier versions
are intact and a retry completes (docs/remotes.md, "Timeouts and retries").

tests/test_network.py covers single requests; this covers what a command does
around them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import fsspec
import pytest

from cas.errors import (
    KeyNotFoundError,
    PreconditionFailedError,
    StorageError,
    StorageUnavailableError,
)
from cas.refs import RefStore, encode_ref
from tests.faultproxy import FaultProxy
from tests.httpproxy import Action, Request
from tests.httpproxy import FaultProxy as HTTPFaultProxy
from tests.servers import Spec, new_gcs_spec, new_s3_spec, open_storage_from_spec
from tests.test_cli import cli_env, run

TIMEOUT = 2.0
STARTUP = 5.0  # starting Python and importing the libraries, on a busy machine


def _env(kind: str, server: Any, endpoint: str, **extra: str) -> dict[str, str]:
    env = cli_env(None, ARTIFACTS_TIMEOUT=str(TIMEOUT), **extra)
    for name in list(env):
        if name.startswith(("AWS_", "STORAGE_EMULATOR", "GOOGLE_")):
            del env[name]
    if kind == "s3-moto":
        env.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID=server.key,
            AWS_SECRET_ACCESS_KEY=server.secret,
            AWS_DEFAULT_REGION="us-east-1",
        )
    else:
        env.update(STORAGE_EMULATOR_HOST=endpoint)
    return env


class Bench:
    """A local store pushed to a bucket, through a proxy, driven by the CLI."""

    def __init__(self, kind: str, server: Any, tmp_path: Path, endpoint: str) -> None:
        self.kind = kind
        self.url = (new_s3_spec if kind == "s3-moto" else new_gcs_spec)(server)["url"]
        self.env = _env(kind, server, endpoint)
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.versions = 0

    def cli(self, *args: str, cwd: Path | None = None) -> tuple[int, str, float]:
        start = time.monotonic()
        result = run(tuple(str(a) for a in args), cwd or self.home, self.env)
        return result.rc, result.out + result.err, time.monotonic() - start

    def ok(self, *args: str, cwd: Path | None = None) -> str:
        rc, out, _ = self.cli(*args, cwd=cwd)
        assert rc == 0, out
        return out

    def start(self) -> None:
        self.ok("init")
        self.log_version()
        self.ok("remote", "add", "origin", self.url)
        self.ok("push", "origin")

    def log_version(self) -> None:
        data = self.tmp / f"data{self.versions}"
        data.mkdir()
        (data / "f.txt").write_text(f"version {self.versions}")
        self.ok("log", str(data), "--name", "d", "--type", "dataset")
        self.versions += 1

    def fails_in_one_line(self, *args: str, cwd: Path | None = None) -> str:
        rc, out, elapsed = self.cli(*args, cwd=cwd)
        assert rc == 1, out
        assert out.count("\n") == 1 and out.startswith("artifacts: error: "), out
        assert self.url in out, out
        assert elapsed < TIMEOUT + STARTUP, (elapsed, out)
        return out

    def fails_within_bound(self, *args: str, cwd: Path | None = None) -> str:
        out = self.fails_in_one_line(*args, cwd=cwd)
        assert "ARTIFACTS_TIMEOUT" in out, out
        return out

    def assert_clean(self, cwd: Path, versions: int | None = None) -> None:
        """fsck clean here and on the remote; every version downloads as logged."""
        self.ok("fsck", cwd=cwd)
        self.ok("--store", self.url, "fsck", cwd=cwd)
        for n in range(self.versions if versions is None else versions):
            root = self.tmp / f"check-{cwd.name}-{n}"
            self.ok("download", f"d:v{n}", "--root", str(root), cwd=cwd)
            assert (root / "f.txt").read_text() == f"version {n}"


def _server(request: pytest.FixtureRequest, kind: str) -> Any:
    return request.getfixturevalue("moto_server" if kind == "s3-moto" else "gcs_server")


@pytest.fixture(params=["s3-moto", "gcs"])
def blackholed(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Bench, FaultProxy]]:
    """A bench behind a proxy whose connections can be black-holed."""
    server = _server(request, request.param)
    with FaultProxy(server.endpoint_url) as proxy:
        b = Bench(request.param, server, tmp_path, proxy.url)
        b.start()
        yield b, proxy


def test_black_hole_during_push_pull_and_clone(blackholed: tuple[Bench, FaultProxy]) -> None:
    bench, proxy = blackholed
    bench.log_version()
    clone = bench.tmp / "clone"
    proxy.mode = "black-hole"
    bench.fails_within_bound("push", "origin")
    bench.fails_within_bound("pull", "origin")
    bench.fails_within_bound("clone", bench.url, str(clone))
    proxy.mode = "pass"
    assert not (clone / ".artifacts").exists()
    bench.ok("push", "origin")
    bench.ok("clone", bench.url, str(clone))
    bench.assert_clean(bench.home)
    bench.assert_clean(clone)


def test_black_hole_during_artifacts_reads(
    blackholed: tuple[Bench, FaultProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a version through ``artifacts://`` from a bucket that stops answering
    (before the read, and between opening a file and reading it) fails within the
    bound, in one line naming the store; once it answers again the bytes are right."""
    bench, proxy = blackholed
    for name, value in bench.env.items():
        if name.startswith(("AWS_", "STORAGE_EMULATOR", "ARTIFACTS_TIMEOUT")):
            monkeypatch.setenv(name, value)
    path = "artifacts://team/proj/d:v0/f.txt"

    def read() -> bytes:
        with fsspec.open(path, "rb", store=bench.url, skip_instance_cache=True) as f:
            return f.read()

    assert read() == b"version 0"
    fs = fsspec.filesystem("artifacts", store=bench.url, skip_instance_cache=True)
    opened = fs.open("team/proj/d:v0/f.txt", "rb")
    proxy.mode = "black-hole"
    for call in (read, opened.read, lambda: fs.ls("team/proj/d:v0")):
        start = time.monotonic()
        with pytest.raises(StorageUnavailableError) as info:
            call()
        assert time.monotonic() - start <= TIMEOUT + 0.5
        message = str(info.value)
        assert "\n" not in message and bench.url in message and "ARTIFACTS_TIMEOUT" in message
    proxy.mode = "pass"
    assert read() == b"version 0"


@pytest.fixture(params=["s3-moto", "gcs"])
def faulty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Bench, Faults]]:
    """A bench behind an HTTP proxy that injects the faults set in ``Faults.fault``."""
    server = _server(request, request.param)
    faults = Faults()
    with HTTPFaultProxy(server.endpoint_url, faults) as proxy:
        b = Bench(request.param, server, tmp_path, proxy.endpoint_url)
        b.start()
        faults.proxy = proxy
        yield b, faults


class Faults:
    """The proxy's fault function, changed by the test as it goes."""

    def __init__(self) -> None:
        self.fault: Callable[[Request], Action] = lambda request: None
        self.proxy: HTTPFaultProxy | None = None

    def __call__(self, request: Request) -> Action:
        return self.fault(request)


def _every(n: int, action: Action) -> Callable[[Request], Action]:
    count = [0]

    def fault(request: Request) -> Action:
        count[0] += 1
        return action if count[0] % n == 0 else None

    return fault


def test_a_proxy_that_resets_every_third_request(faulty: tuple[Bench, Faults]) -> None:
    """Every third request is forwarded, then its connection dropped with no answer:
    push, clone and pull each complete, nothing lost, nothing doubled."""
    bench, faults = faulty
    bench.env["ARTIFACTS_TIMEOUT"] = "20"
    for _ in range(2):
        bench.log_version()
    faults.fault = _every(3, "reset")
    bench.ok("push", "origin")
    clone = bench.tmp / "clone"
    bench.ok("clone", bench.url, str(clone))
    assert faults.proxy is not None and len(faults.proxy.faults()) >= 5
    faults.fault = lambda request: None
    bench.assert_clean(bench.home)
    bench.assert_clean(clone)


def _after(count: int, methods: tuple[str, ...], action: Action) -> Callable[[Request], Action]:
    """A fault function: ``action`` on every request of ``methods`` after the first
    ``count`` of them."""
    seen = [0]

    def fault(request: Request) -> Action:
        if request.method in methods:
            seen[0] += 1
            return action if seen[0] > count else None
        return None

    return fault


def test_a_server_that_stops_answering_mid_push_and_mid_clone(
    faulty: tuple[Bench, Faults],
) -> None:
    """The server stops answering after a push's first writes, then after a clone's
    first reads: each ends within the bound in one line; then nothing is half-done."""
    bench, faults = faulty
    data = bench.tmp / "many"
    data.mkdir()
    for i in range(40):
        (data / f"f{i}").write_bytes(os.urandom(300_000 if i % 4 == 0 else 1000))
    bench.ok("log", str(data), "--name", "many", "--type", "dataset")
    faults.fault = _after(3, ("PUT", "POST"), "black-hole")
    bench.fails_within_bound("push", "origin")
    faults.fault = lambda request: None
    bench.ok("push", "origin")
    clone = bench.tmp / "clone"
    faults.fault = _after(6, ("GET",), "black-hole")
    bench.fails_within_bound("clone", bench.url, str(clone))
    faults.fault = lambda request: None
    assert not (clone / ".artifacts").exists()
    bench.ok("clone", bench.url, str(clone))
    bench.assert_clean(clone)
    bench.ok("download", "many:v0", "--root", str(bench.tmp / "many-copy"), cwd=clone)
    for i in range(40):
        name = f"f{i}"
        assert (bench.tmp / "many-copy" / name).read_bytes() == (data / name).read_bytes()


def test_credentials_refused_mid_push(faulty: tuple[Bench, Faults]) -> None:
    """The bucket refuses our writes after a few have landed: the push says so in
    one line and moves no ref; the remote stays clean and a retry completes."""
    bench, faults = faulty
    for _ in range(2):
        bench.log_version()
    faults.fault = _after(2, ("PUT", "POST"), "deny")
    out = bench.fails_in_one_line("push", "origin")
    assert "origin" in out and "denied" in out.lower(), out
    faults.fault = lambda request: None
    clone = bench.tmp / "clone"
    bench.ok("clone", bench.url, str(clone))
    bench.assert_clean(clone, versions=1)  # the remote still holds v0 alone
    bench.ok("push", "origin")
    bench.ok("pull", "origin", cwd=clone)
    bench.assert_clean(clone)


# ---- single requests: a stalled body, a storm of 503s, answers cut short --------------


@contextlib.contextmanager
def _proxied_store(spec: Spec, fault: Callable[[Request], Action]) -> Iterator[tuple[Any, Any]]:
    with HTTPFaultProxy(spec["options"]["endpoint_url"], fault) as proxy:
        options = {**spec["options"], "endpoint_url": proxy.endpoint_url}
        with open_storage_from_spec({**spec, "options": options}) as store:
            yield proxy, store


def _first(count: int, action: Action, matches: Callable[[Request], bool]) -> Any:
    left = [count]

    def fault(request: Request) -> Action:
        if left[0] > 0 and matches(request):
            left[0] -= 1
            return action
        return None

    return fault


def _reads_of(key: str) -> Callable[[Request], bool]:
    return lambda request: request.method == "GET" and key in unquote(request.path)


@pytest.mark.parametrize("kind", ["s3-moto", "gcs"])
def test_a_body_that_stalls_half_way_is_retried(
    kind: str, make_spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "4")
    spec = make_spec(kind)
    data = os.urandom(1 << 20)
    with open_storage_from_spec(spec) as store:
        store.put("blobs/ab/cd", data)
    with _proxied_store(spec, _first(1, "stall", _reads_of("blobs/ab/cd"))) as (proxy, store):
        start = time.monotonic()
        assert store.get("blobs/ab/cd") == data
        assert time.monotonic() - start < 4
        assert len(proxy.faults()) == 1


@pytest.mark.parametrize("kind", ["s3-moto", "gcs"])
def test_a_body_that_always_stalls_is_given_up_within_the_timeout(
    kind: str, make_spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "2")
    spec = make_spec(kind)
    with open_storage_from_spec(spec) as store:
        store.put("refs/heads/x", os.urandom(1 << 16))
    with _proxied_store(spec, _first(99, "stall", _reads_of("refs/heads/x"))) as (_, store):
        start = time.monotonic()
        with pytest.raises(StorageUnavailableError) as info:
            store.get("refs/heads/x")
        assert time.monotonic() - start <= 2.5
    message = str(info.value)
    assert "\n" not in message and "refs/heads/x" in message and spec["url"] in message


@pytest.mark.parametrize("kind", ["s3-moto", "gcs"])
def test_a_storm_of_503s_longer_than_the_budget_is_given_up_saying_it_answered(
    kind: str, make_spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "2")
    spec = make_spec(kind)
    with _proxied_store(spec, lambda request: "throttle") as (proxy, store):
        start = time.monotonic()
        with pytest.raises(StorageUnavailableError) as info:
            store.put("objects/k", b"v")
        assert time.monotonic() - start <= 2.5
    assert len(proxy.faults()) >= 3
    message = str(info.value)
    assert "\n" not in message and "objects/k" in message and spec["url"] in message
    # The server answered every time: it is busy, not unreachable.
    assert "503" in message and "SlowDown" in message, message
    assert "did not answer" not in message and "reachable" not in message, message


@pytest.mark.parametrize("kind", ["s3-moto", "gcs"])
def test_a_ref_read_or_a_listing_page_cut_short_is_read_again(
    kind: str, make_spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "10")
    spec = make_spec(kind)
    keys = {f"objects/{i:02x}/{i:060x}": os.urandom(40) for i in range(12)}
    ref = encode_ref(bytes(32), 1)
    with open_storage_from_spec(spec) as store:
        store.put("refs/heads/x", ref)
        for key, value in keys.items():
            store.put(key, value)

    def listing(request: Request) -> bool:
        return request.method == "GET" and ("list-type" in request.path or "/o?" in request.path)

    cut = _first(1, "truncate", _reads_of("refs/heads/x"))
    cut_listing = _first(2, "truncate", listing)
    with _proxied_store(spec, lambda r: cut(r) or cut_listing(r)) as (proxy, store):
        store.list_page_size = 5
        assert RefStore(store).read("heads/x") == bytes(32)
        assert dict(store.list_stats("objects/")).keys() == keys.keys()
        assert len(proxy.faults()) == 3


def _completes_upload(size: int) -> Callable[[Request], bool]:
    """The request that completes an upload in parts: S3's CompleteMultipartUpload,
    GCS's last chunk of a resumable upload."""

    def matches(request: Request) -> bool:
        if request.method == "POST" and "uploadId=" in request.path:
            return True
        return request.headers.get("content-range", "").endswith(f"-{size - 1}/{size}")

    return matches


# SeaweedFS's stalls follow moto's code path: its variants run in `make test-slow`,
# keeping `make test` (CI) under ten minutes.
KINDS_AND_SEAWEED = [
    "s3-moto",
    pytest.param("s3-seaweed", marks=pytest.mark.slow),
    "gcs",
]


@pytest.mark.parametrize("kind", KINDS_AND_SEAWEED)
def test_a_large_upload_whose_last_answer_was_lost_succeeds(
    kind: str, make_spec: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The request completing an upload in parts lands, its answer is lost, and it is
    sent again: the upload is done, not failed (GCS's session is gone by then:
    fake-gcs-server answers 404). SeaweedFS checks the condition of the completion
    sent again against the object the first made: a failed condition after a retry,
    as the storage contract allows (the caller knows the write may have landed)."""
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "10")
    spec = make_spec(kind)
    size = (11 << 20) if kind.startswith("s3") else (5 << 19) + 123
    data = os.urandom(size)
    (tmp_path / "big").write_bytes(data)
    with _proxied_store(spec, _first(1, "lose-response", _completes_upload(size))) as (
        proxy,
        store,
    ):
        if kind.startswith("s3"):
            store.multipart_threshold = store.part_size = 5 << 20
        else:
            store.multipart_threshold, store.chunk_size = 256 << 10, 1 << 20
        try:
            store.put_file("blobs/big", str(tmp_path / "big"), mode="create")
        except PreconditionFailedError as failed:
            assert kind == "s3-seaweed" and failed.retried, failed
        assert len(proxy.faults()) == 1
        assert store.get("blobs/big") == data


@pytest.mark.parametrize("kind", KINDS_AND_SEAWEED)
def test_an_answer_cut_short_without_its_length_is_read_again(
    kind: str, make_spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer without a Content-Length whose connection closes half-way through
    its body ends there, as far as HTTP can tell. It must be caught (by the range
    the server said it sends, the checksum it sent with the bytes, or the listing
    that does not parse) and read again: never handed out short, never an error."""
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "10")
    spec = make_spec(kind)
    data = os.urandom(1 << 20)
    listed = {f"objects/{i:02x}/{i:060x}": os.urandom(40) for i in range(12)}
    with open_storage_from_spec(spec) as store:
        store.put("blobs/ab/cd", data)
        for key, value in listed.items():
            store.put(key, value)

    def stream(store: Any) -> bytes:
        with store.open("blobs/ab/cd") as f:
            return f.read()

    def listing(request: Request) -> bool:
        return request.method == "GET" and ("list-type" in request.path or "/o?" in request.path)

    reads: dict[str, tuple[Callable[[Any], Any], Any, Callable[[Request], bool]]] = {
        "whole": (lambda s: s.get("blobs/ab/cd"), data, _reads_of("blobs/ab/cd")),
        "range": (lambda s: s.get("blobs/ab/cd", 100, 900_000), data[100:900_000], _reads_of("cd")),
        "versioned": (lambda s: s.get_versioned("blobs/ab/cd")[0], data, _reads_of("ab/cd")),
        "stream": (stream, data, _reads_of("blobs/ab/cd")),
        "listing": (lambda s: dict(s.list_stats("objects/")).keys(), listed.keys(), listing),
    }
    for name, (read, expected, matches) in reads.items():
        with _proxied_store(spec, _first(1, "cut-unannounced", matches)) as (proxy, store):
            store.list_page_size = 5
            assert read(store) == expected, name
            assert len(proxy.faults()) == 1, name


@pytest.mark.parametrize("kind", KINDS_AND_SEAWEED)
def test_a_server_that_stops_reading_an_upload_is_given_up_within_the_timeout(
    kind: str, make_spec: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The server takes the connection and then none of the body, as a stopped
    server does: the upload blocks once the socket buffers are full, where no read
    timeout applies yet (aiohttp starts it once the body is sent). A whole upload
    and one in parts each end within the bound; once the server reads again, the
    same uploads land whole."""
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", str(TIMEOUT))
    spec = make_spec(kind)
    data = os.urandom(32 << 20)  # more than loopback's socket buffers hold
    (tmp_path / "big").write_bytes(data)
    with FaultProxy(spec["options"]["endpoint_url"]) as proxy:
        options = {**spec["options"], "endpoint_url": proxy.url}
        with open_storage_from_spec({**spec, "options": options}) as store:
            store.multipart_threshold = 16 << 20
            if kind.startswith("s3"):
                store.part_size = 8 << 20
            else:
                store.chunk_size = 8 << 20
            store.put("small", b"x")  # a kept-alive connection: it stops reading too
            proxy.mode = "deaf"
            for upload in (
                lambda: store.put("blobs/whole", data[: 24 << 20]),
                lambda: store.put_file("blobs/parts", str(tmp_path / "big")),
            ):
                start = time.monotonic()
                with pytest.raises(StorageUnavailableError) as info:
                    upload()
                assert time.monotonic() - start <= TIMEOUT + 1, str(info.value)
                assert "\n" not in str(info.value) and spec["url"] in str(info.value)
            proxy.mode = "pass"
            time.sleep(TIMEOUT)  # past the quiet time after giving up
            store.put("blobs/whole", data[: 24 << 20])
            store.put_file("blobs/parts", str(tmp_path / "big"))
            assert store.get("blobs/whole") == data[: 24 << 20]
            assert store.get("blobs/parts") == data


def test_an_upload_waiting_for_a_connection_is_not_taken_for_a_stalled_one(
    moto_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Parts of a large file queue for the client's connections while others are
    sent and answered: only a body the server stopped taking counts as stalled, not
    one still waiting its turn, however long the queue (here one connection, four
    parts, each answered after most of a read timeout)."""
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "2")  # a read timeout of 0.5 s
    spec = new_s3_spec(moto_server)
    spec["options"]["config_kwargs"] = {"max_pool_connections": 1}
    data = os.urandom(20 << 20)
    (tmp_path / "big").write_bytes(data)
    parts = _first(99, "slow-answer", lambda request: "partNumber=" in request.path)
    with _proxied_store(spec, parts) as (proxy, store):
        proxy.answer_delay = 0.4
        store.multipart_threshold = store.part_size = 5 << 20
        with caplog.at_level(logging.INFO, logger="cas.storage"):
            store.put_file("blobs/parts", str(tmp_path / "big"))
        assert [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()] == []
        assert len(proxy.faults()) == 4
        assert store.get("blobs/parts") == data


@pytest.mark.parametrize("loss", ["lose-response", "reset"])
def test_a_resumable_upload_whose_chunk_is_sent_again_stores_no_wrong_bytes(
    loss: Action, make_spec: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A middle chunk of a GCS resumable upload lands and its answer is lost, so it
    is sent again: fake-gcs-server appends it again, whatever its offset, and
    completed an object 1 MiB too long. What lands must be the file's bytes, or
    nothing, said in one line; the upload run again stores the file."""
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "10")
    spec = make_spec("gcs")
    size = (5 << 20) + 123
    data = os.urandom(size)
    (tmp_path / "big").write_bytes(data)

    def second_chunk(request: Request) -> bool:
        return request.headers.get("content-range", "").startswith(f"bytes {1 << 20}-")

    with _proxied_store(spec, _first(1, loss, second_chunk)) as (proxy, store):
        store.multipart_threshold, store.chunk_size = 256 << 10, 1 << 20
        try:
            store.put_file("blobs/big", str(tmp_path / "big"), mode="create")
        except StorageError as error:
            assert "\n" not in str(error) and "blobs/big" in str(error), error
            with pytest.raises(KeyNotFoundError):
                store.get("blobs/big")
            store.put_file("blobs/big", str(tmp_path / "big"), mode="create")
        assert len(proxy.faults()) == 1
        assert store.get("blobs/big") == data
