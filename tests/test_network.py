"""Timeouts, retries and the errors of an unreachable remote (docs/remotes.md,
"Timeouts and retries").

Faults come from tests/faultproxy.py between the client and a real server (moto
for S3, fake-gcs-server for GCS). ``ARTIFACTS_TIMEOUT`` is set to a second or
two, so that giving up is quick; the bound is checked at two values to show it
scales with the setting.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from cas import Repository
from cas.errors import AccessDeniedError, StorageUnavailableError
from tests.faultproxy import FaultProxy
from tests.httpproxy import Action, Request
from tests.httpproxy import FaultProxy as HTTPFaultProxy
from tests.servers import Spec, new_gcs_spec, new_s3_spec, open_storage_from_spec
from tests.test_cli import cli_env, run, run_in_pty

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["s3-moto", "gcs"])
def proxied(request: pytest.FixtureRequest, make_spec: Any) -> Iterator[tuple[FaultProxy, Spec]]:
    """A proxy in front of a real server, and the spec of a fresh bucket behind it."""
    spec = make_spec(request.param)
    with FaultProxy(spec["options"]["endpoint_url"]) as proxy:
        yield proxy, {**spec, "options": {**spec["options"], "endpoint_url": proxy.url}}


def _gives_up(call: Callable[[], Any]) -> tuple[float, StorageUnavailableError]:
    start = time.monotonic()
    with pytest.raises(StorageUnavailableError) as info:
        call()
    return time.monotonic() - start, info.value


@pytest.mark.parametrize("timeout", [1.0, 2.0])
def test_a_server_that_never_answers_is_given_up_within_the_timeout(
    proxied: tuple[FaultProxy, Spec], monkeypatch: pytest.MonkeyPatch, timeout: float
) -> None:
    proxy, spec = proxied
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", str(timeout))
    proxy.mode = "black-hole"
    with open_storage_from_spec(spec) as store:
        elapsed, error = _gives_up(lambda: store.get("refs/heads/x"))
    assert timeout / 2 <= elapsed <= timeout + 0.5
    assert proxy.connections["black-hole"] >= 2  # it retried before giving up
    message = str(error)
    assert spec["url"] in message and proxy.url in message and "ARTIFACTS_TIMEOUT" in message
    assert "\n" not in message


def test_refused_connections_are_retried_then_given_up(
    proxied: tuple[FaultProxy, Spec], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, spec = proxied
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "1")
    proxy.mode = "refuse"
    with open_storage_from_spec(spec) as store:
        elapsed, error = _gives_up(lambda: store.put("k", b"v"))
    assert elapsed <= 1.5
    assert spec["url"] in str(error) and "ARTIFACTS_TIMEOUT" in str(error)


def test_a_refusal_of_our_credentials_is_access_denied_naming_the_key_and_store(
    proxied: tuple[FaultProxy, Spec],
) -> None:
    """A 403 is the user's to fix (credentials, a bucket policy), not a crash: on GCS,
    gcsfs raises a bare OSError("Forbidden: ...") for it."""
    proxy, spec = proxied
    proxy.mode = "deny"
    with open_storage_from_spec(spec) as store:
        for call in (lambda: store.get("refs/heads/x"), lambda: store.put("objects/k", b"v")):
            with pytest.raises(AccessDeniedError) as denied:
                call()
            message = str(denied.value)
            assert spec["url"] in message and "\n" not in message
    assert proxy.connections["deny"] >= 2


def test_a_server_back_within_the_window_lets_the_call_finish(
    proxied: tuple[FaultProxy, Spec], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, spec = proxied
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "8")
    proxy.mode = "refuse"
    back = threading.Timer(1.0, setattr, (proxy, "mode", "pass"))
    back.start()
    try:
        with open_storage_from_spec(spec) as store:
            store.put("k", b"value")
            assert store.get("k") == b"value"
    finally:
        back.cancel()


def test_a_write_that_fails_in_a_lease_is_the_error_reported(
    proxied: tuple[FaultProxy, Spec], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server stalls while a writer holds its lease: the error names the write
    that failed, not what the lease does on the way out, which does not wait again."""
    proxy, spec = proxied
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "1")
    repo = Repository(open_storage_from_spec(spec))
    start = time.monotonic()
    with pytest.raises(StorageUnavailableError) as info:
        with repo.writing():
            proxy.mode = "black-hole"
            start = time.monotonic()
            repo.storage.put("objects/data", b"payload")
    assert time.monotonic() - start <= 1.5
    assert "objects/data" in str(info.value) and "locks" not in str(info.value)
    repo.storage.close()


def test_500s_are_retried_and_each_retry_is_reported(
    proxied: tuple[FaultProxy, Spec],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy, spec = proxied
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "10")
    proxy.fail(3)
    with open_storage_from_spec(spec) as store:
        with caplog.at_level(logging.INFO, logger="cas.storage"):
            store.put("k", b"value")
        assert store.get("k") == b"value"
    assert proxy.connections["fail"] == 3
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retrying")]
    assert len(retries) == 3 and retries[-1].endswith("(attempt 4)")
    assert spec["url"] in retries[0]


def test_a_large_gcs_upload_is_streamed(gcs_server: Any, tmp_path: Path) -> None:
    store = open_storage_from_spec(new_gcs_spec(gcs_server))
    store.multipart_threshold = 2 * 2**20
    store.chunk_size = 5 * 2**18  # 1.25 MiB: above aiohttp's 1 MiB warning size
    small, large = os.urandom(3 * 2**19), os.urandom(3 * 2**20)
    path = tmp_path / "large"
    path.write_bytes(large)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store.put("small", small)
        store.put_file("large", str(path))
    assert store.get("small") == small and store.get("large") == large
    store.close()
    assert not [w for w in caught if "large body" in str(w.message)]


# ---- the command line ------------------------------------------------------------


def _s3_env(server: Any, endpoint: str, **extra: str) -> dict[str, str]:
    env = cli_env(None, **extra)
    for name in list(env):
        if name.startswith(("AWS_", "STORAGE_EMULATOR")):
            del env[name]
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=server.key,
        AWS_SECRET_ACCESS_KEY=server.secret,
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


def _cli(args: tuple[str, ...], cwd: Path, env: dict[str, str]) -> tuple[int, str, float]:
    """test_cli's runner, timed: (exit status, stderr, seconds)."""
    start = time.monotonic()
    result = run(args, cwd, env)
    return result.rc, result.err, time.monotonic() - start


def _one_line_error(rc: int, err: str) -> str:
    assert rc == 1, err
    assert err.count("\n") == 1 and err.startswith("artifacts: error: "), err
    return err


def test_cli_ls_on_a_dead_store_fails_in_one_line_within_the_timeout(
    moto_server: Any, tmp_path: Path
) -> None:
    url = new_s3_spec(moto_server)["url"]
    with FaultProxy(moto_server.endpoint_url, mode="black-hole") as proxy:
        env = _s3_env(moto_server, proxy.url, ARTIFACTS_STORE=url, ARTIFACTS_TIMEOUT="2")
        rc, err, elapsed = _cli(("ls",), tmp_path, env)
    err = _one_line_error(rc, err)
    assert url in err and proxy.url in err and "ARTIFACTS_TIMEOUT" in err
    assert elapsed < 2 + 5  # the bound, plus starting Python


def test_cli_push_to_a_dead_remote_names_the_remote_and_the_request(
    moto_server: Any, tmp_path: Path
) -> None:
    url = new_s3_spec(moto_server)["url"]
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.txt").write_text("hello")
    with FaultProxy(moto_server.endpoint_url) as proxy:
        env = _s3_env(moto_server, proxy.url, ARTIFACTS_TIMEOUT="2")
        for args in (("init",), ("log", str(data), "--name", "d", "--type", "dataset")):
            assert _cli(args, tmp_path, env)[0] == 0
        assert _cli(("remote", "add", "origin", url), tmp_path, env)[0] == 0
        proxy.mode = "black-hole"
        rc, err, elapsed = _cli(("push", "origin"), tmp_path, env)
    err = _one_line_error(rc, err)
    assert "origin" in err and url in err and "lock" not in err
    assert elapsed < 2 + 5


def test_cli_shows_retries_on_a_terminal(moto_server: Any, tmp_path: Path) -> None:
    url = new_s3_spec(moto_server)["url"]
    with FaultProxy(moto_server.endpoint_url) as proxy:
        proxy.fail(2)
        env = _s3_env(moto_server, proxy.url, ARTIFACTS_STORE=url, ARTIFACTS_TIMEOUT="10")
        rc, out = run_in_pty(("ls",), tmp_path, env)
    assert rc == 0, out
    assert "retrying" in out and "(attempt 2)" in out and "(attempt 3)" in out


def test_cli_without_credentials_says_which_variables_to_set(
    moto_server: Any, tmp_path: Path
) -> None:
    url = new_s3_spec(moto_server)["url"]
    env = _s3_env(moto_server, moto_server.endpoint_url, ARTIFACTS_STORE=url)
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    missing = str(tmp_path / "nowhere")
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=missing,
        AWS_CONFIG_FILE=missing,
        AWS_EC2_METADATA_DISABLED="true",
    )
    rc, err, _ = _cli(("ls",), tmp_path, env)
    err = _one_line_error(rc, err)
    assert url in err and "AWS_ACCESS_KEY_ID" in err and "AWS_SECRET_ACCESS_KEY" in err


@pytest.mark.parametrize("kind", ["s3-moto", "gcs"])
def test_cli_names_a_missing_bucket(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:12]}"
    if kind == "s3-moto":
        server = request.getfixturevalue("moto_server")
        url = f"s3://{bucket}/store"
        env = _s3_env(server, server.endpoint_url, ARTIFACTS_STORE=url)
    else:
        server = request.getfixturevalue("gcs_server")
        url = f"gs://{bucket}/store"
        env = cli_env(None, ARTIFACTS_STORE=url, STORAGE_EMULATOR_HOST=server.endpoint_url)
    rc, err, _ = _cli(("ls",), tmp_path, env)
    err = _one_line_error(rc, err)
    assert f"bucket {bucket!r} does not exist" in err and url in err


@pytest.mark.parametrize("fault", ["refuse", "truncate"])
@pytest.mark.parametrize("kind", ["s3-moto", "gcs"])
def test_a_streamed_read_is_retried_like_any_request(
    kind: str, fault: Action, make_spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large blob is read as a stream (a clone, a pull, a download): a 500 on the
    way, or a body cut short of its announced length, is retried as any request is,
    not the end of the command, and the bytes read are the whole object."""
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "10")
    spec = make_spec(kind)
    data = os.urandom(3 << 20)
    with open_storage_from_spec(spec) as store:
        store.put("blobs/ab/cd", data)
    left = [0]

    def faulty_reads(request: Request) -> Action:
        if request.method in ("GET", "HEAD") and "blobs/ab/cd" in unquote(request.path):
            if left[0] > 0:
                left[0] -= 1
                return fault
        return None

    with HTTPFaultProxy(spec["options"]["endpoint_url"], faulty_reads) as proxy:
        options = {**spec["options"], "endpoint_url": proxy.endpoint_url}
        with open_storage_from_spec({**spec, "options": options}) as store:
            left[0] = 2
            assert store.get("blobs/ab/cd") == data
            left[0] = 2
            with store.open("blobs/ab/cd") as stream:
                assert stream.read() == data
    assert len(proxy.faults()) == 4
