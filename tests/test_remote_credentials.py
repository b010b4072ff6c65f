"""Credentials that fail a remote mid-command, or keep it waiting: expired, not
renewable, from a process or a token endpoint that never answers, or refused for a
clock too far from the server's. Each is said in one line that says what to do, within
the timeout, and leaves no version half-pushed (docs/remotes.md, "Endpoints and
credentials" and the table of failures).

The commands run as a user runs them, against moto and fake-gcs-server, through the
fault proxies of tests/faultproxy.py and tests/httpproxy.py; the credentials come from
real processes and a real token endpoint.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cas.errors import StorageUnavailableError
from tests.faultproxy import FaultProxy
from tests.httpproxy import Action, Request
from tests.httpproxy import FaultProxy as HTTPFaultProxy
from tests.servers import new_gcs_spec, open_storage_from_spec
from tests.test_network_faults import Bench


@pytest.fixture(params=["s3-moto", "gcs"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def _server(request: pytest.FixtureRequest, kind: str) -> Any:
    return request.getfixturevalue("moto_server" if kind == "s3-moto" else "gcs_server")


def test_credentials_that_expire_mid_push_are_said_to(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path
) -> None:
    """The credentials expire after a push's first writes: one line says so and what to
    do (not that they lack a permission, which sent users to their bucket policy); no
    version appears on the remote, and a push with them renewed completes."""
    server = _server(request, kind)
    writes = [0]

    def fault(request: Request) -> Action:
        if request.method in ("PUT", "POST"):
            writes[0] += 1
        return "expire" if expiring and writes[0] > 2 else None

    expiring: list[bool] = []
    with HTTPFaultProxy(server.endpoint_url, fault) as proxy:
        bench = Bench(kind, server, tmp_path, proxy.endpoint_url)
        bench.start()
        bench.log_version()
        bench.log_version()
        expiring.append(True)
        out = bench.fails_in_one_line("push", "origin")
        assert "origin" in out and "expired" in out and "renew" in out, out
        assert "lack the permission" not in out, out
        expiring.clear()
        clone = bench.tmp / "clone"
        bench.ok("clone", bench.url, str(clone))
        bench.assert_clean(clone, versions=1)  # the remote still holds v0 alone
        bench.ok("push", "origin")
        bench.ok("pull", "origin", cwd=clone)
        bench.assert_clean(clone)


# AWS credentials from a process, as SSO and assume-role helpers give them: each lasts
# 9 minutes, so botocore must renew them before every request; after CREDENTIALS.left
# renewals it fails, as an expired SSO session does; while CREDENTIALS.hang exists it
# hangs, as one waiting for a login that never comes.
_CREDENTIAL_PROCESS = """#!/bin/sh
if [ -e "$0.hang" ]; then sleep 20; fi
left=$(cat "$0.left")
if [ "$left" -le 0 ]; then echo "the SSO session has expired" >&2; exit 1; fi
echo $((left - 1)) > "$0.left"
expiry=$(date -u -d "+9 min" +%Y-%m-%dT%H:%M:%SZ)
printf '{"Version": 1, "AccessKeyId": "%s", "SecretAccessKey": "%s", "Expiration": "%s"}' \\
    "$KEY" "$SECRET" "$expiry"
"""


def _process_bench(moto_server: Any, tmp_path: Path) -> Bench:
    """A bench whose AWS credentials come from :data:`_CREDENTIAL_PROCESS`."""
    bench = Bench("s3-moto", moto_server, tmp_path, moto_server.endpoint_url)
    process = tmp_path / "credentials"
    process.write_text(_CREDENTIAL_PROCESS)
    process.chmod(0o755)
    (tmp_path / "aws-config").write_text(f"[default]\ncredential_process = {process}\n")
    bench.env.update(
        AWS_CONFIG_FILE=str(tmp_path / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        KEY=bench.env.pop("AWS_ACCESS_KEY_ID"),
        SECRET=bench.env.pop("AWS_SECRET_ACCESS_KEY"),
    )
    (tmp_path / "credentials.left").write_text("1000")
    return bench


def test_credentials_that_cannot_be_renewed_mid_push_are_said_to(
    moto_server: Any, tmp_path: Path
) -> None:
    """The credentials' process fails half-way through a push (an SSO session that
    expired): one line says so, not "internal error"; no version appears on the
    remote, and once they can be renewed the push completes."""
    bench = _process_bench(moto_server, tmp_path)
    left = tmp_path / "credentials.left"
    bench.start()
    bench.log_version()
    left.write_text("4")
    out = bench.fails_in_one_line("push", "origin")
    assert "internal error" not in out and "SSO session has expired" in out, out
    assert "renew" in out, out
    left.write_text("1000")
    clone = bench.tmp / "clone"
    bench.ok("clone", bench.url, str(clone))
    bench.assert_clean(clone, versions=1)  # the remote still holds v0 alone
    bench.ok("push", "origin")
    bench.ok("pull", "origin", cwd=clone)
    bench.assert_clean(clone)


def _service_account(path: Path, token_uri: str) -> None:
    """A service account key file whose tokens come from ``token_uri``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "test",
        "private_key_id": "1",
        "private_key": pem,
        "client_email": "robot@test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))


def test_a_token_endpoint_that_never_answers_is_given_up_within_the_timeout(
    gcs_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Google credentials are renewed from their token endpoint before a request; one
    that never answers held every request (for two minutes per try, three tries) past
    any ARTIFACTS_TIMEOUT, the event loop blocked. Now the request fails within the
    bound, in one line naming the store and the endpoint."""
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "2")
    spec = new_gcs_spec(gcs_server)
    outcome: list[BaseException | None] = []
    with FaultProxy(gcs_server.endpoint_url, mode="black-hole") as token_endpoint:
        _service_account(tmp_path / "key.json", f"{token_endpoint.url}/token")
        options = {**spec["options"], "token": str(tmp_path / "key.json")}
        with open_storage_from_spec({**spec, "options": options}) as store:

            def read() -> None:
                try:
                    store.get("refs/heads/x")
                    outcome.append(None)
                except Exception as exc:
                    outcome.append(exc)

            start = time.monotonic()
            worker = threading.Thread(target=read, daemon=True)
            worker.start()
            worker.join(15)
            elapsed = time.monotonic() - start
            assert outcome, "still waiting for a token after 15 s"
    error = outcome[0]
    assert isinstance(error, StorageUnavailableError), error
    assert elapsed < 2 + 1, elapsed
    message = str(error)
    assert "\n" not in message and spec["url"] in message and token_endpoint.url in message


class _TokenEndpoint(http.server.BaseHTTPRequestHandler):
    """Answers every token request with a token good for an hour."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"access_token": "t", "expires_in": 3600, "token_type": "Bearer"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_credentials_renewed_from_a_live_token_endpoint_are_used(
    gcs_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTIFACTS_TIMEOUT", "5")
    spec = new_gcs_spec(gcs_server)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _service_account(tmp_path / "key.json", f"http://127.0.0.1:{server.server_port}/token")
        options = {**spec["options"], "token": str(tmp_path / "key.json")}
        with open_storage_from_spec({**spec, "options": options}) as store:
            store.put("refs/heads/x", b"v")
            assert store.get("refs/heads/x") == b"v"
    finally:
        server.shutdown()


def test_a_clock_too_far_from_the_servers_is_said_to_be(moto_server: Any, tmp_path: Path) -> None:
    """S3 refuses requests signed by a clock more than 15 minutes from its own: the
    push said the credentials lack a permission, which no policy change would cure."""
    refusing: list[bool] = []

    def fault(request: Request) -> Action:
        return "skewed" if refusing else None

    with HTTPFaultProxy(moto_server.endpoint_url, fault) as proxy:
        bench = Bench("s3-moto", moto_server, tmp_path, proxy.endpoint_url)
        bench.start()
        bench.log_version()
        refusing.append(True)
        out = bench.fails_in_one_line("push", "origin")
        assert "origin" in out and "clock" in out and "RequestTimeTooSkewed" in out, out
        assert "lack the permission" not in out, out


def test_a_credential_process_that_hangs_is_given_up_within_the_timeout(
    moto_server: Any, tmp_path: Path
) -> None:
    """AWS credentials come from a process that never answers (waiting for a login):
    botocore waits for it with no timeout of its own; the push fails within the bound
    in one line, and pushes once the process answers again."""
    bench = _process_bench(moto_server, tmp_path)
    bench.start()
    bench.log_version()
    hang = tmp_path / "credentials.hang"
    hang.touch()
    out = bench.fails_within_bound("push", "origin")
    assert "credentials" in out, out
    hang.unlink()
    bench.ok("push", "origin")
