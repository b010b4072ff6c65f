"""One moto S3 server for the whole harness run, started on first use on 127.0.0.1.

The same set-up as the tests' `moto_server` fixture (tests/servers.py): moto's
ThreadedMotoServer in this process, straight to moto's S3 app (its per-request service
detection is half its CPU), one request at a time (moto's conditional writes are not
atomic). It is a copy rather than an import because that module is a pytest fixture file
(it imports pytest and reports problems with `pytest.skip`).

Clients reach it through the environment of `env()`: AWS_ENDPOINT_URL plus dummy
credentials, which boto3 and s3fs (through aiobotocore) both honour.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

HOST = "127.0.0.1"
KEY, SECRET = "test", "test"

_server: Any = None
_endpoint = ""
_sent = 0  # bytes of the response bodies the server has sent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means it is listening
    except OSError:
        return False


def _serialize(server: Any) -> None:
    from moto.moto_server.werkzeug_app import create_backend_app

    wsgi = server._server
    app = create_backend_app("s3")
    lock = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        global _sent
        with lock:
            result = app(environ, start_response)
            try:
                body = b"".join(result)
                _sent += len(body)
                return [body]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    wsgi.app = serialized


def endpoint() -> str:
    """The server's URL, starting it first if needed (raises if moto cannot start)."""
    global _server, _endpoint
    if _server is None:
        from moto.server import ThreadedMotoServer

        port = _free_port()
        server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
        server.start()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        _serialize(server)
        url = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 15
        while not _answers(url):
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"moto on {url} did not answer within 15 s")
            time.sleep(0.05)
        _server, _endpoint = server, url
    return _endpoint


def bytes_sent() -> int:
    """Bytes of response bodies the server has sent so far (what its clients fetched)."""
    return _sent


def env() -> dict[str, str]:
    """Environment entries that point boto3 / s3fs at the server."""
    return {
        "AWS_ENDPOINT_URL": endpoint(),
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _client() -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint(),
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )


def new_bucket(prefix: str = "bench") -> str:
    """Create a fresh, empty bucket and return its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:16]}"
    _client().create_bucket(Bucket=name)
    return name


def drop_bucket(name: str) -> None:
    """Delete a bucket and everything in it (frees the server's memory); ignore errors."""
    client = _client()
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=name)
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys})
        client.delete_bucket(Bucket=name)
    except Exception:  # noqa: BLE001 - best effort clean-up
        pass


def stop() -> None:
    global _server, _endpoint
    if _server is not None:
        _server.stop()
        _server, _endpoint = None, ""
