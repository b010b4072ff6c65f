"""A fault-injecting HTTP proxy on 127.0.0.1, to put in front of a test server.

Clients talk to :attr:`FaultProxy.endpoint_url` instead of the server's. Each
request is passed to ``fault(request)``, which names what happens to it:

* ``None``: forwarded, and the server's answer handed back;
* ``"lose-response"``: forwarded (the server acts on it), then answered
  ``500`` as if the answer had been lost on the way back;
* ``"refuse"``: answered ``500`` without being forwarded;
* ``"truncate"``: forwarded, and the server's answer handed back with its full
  ``Content-Length`` but only the first half of its body, then the connection
  closed (a body cut short on the way);
* ``"reset"``: forwarded (the server acts on it), then the connection closed with
  no answer at all (a reset after the request got through);
* ``"cut-unannounced"``: forwarded, and the server's answer handed back without
  its ``Content-Length``, the connection closed half-way through the body (to the
  client, an answer that ends there);
* ``"stall"``: forwarded, and the server's headers and the first half of its body
  handed back, then nothing more until the proxy closes (a server that stalls
  mid-body);
* ``"throttle"``: answered ``503 SlowDown`` without being forwarded (a server
  asking its clients to slow down);
* ``"deny"``: answered ``403 AccessDenied`` without being forwarded (credentials
  the bucket refuses);
* ``"expire"``: answered as a store answers credentials that expired, not forwarded
  (S3's ``400 ExpiredToken``; GCS's ``401``, told apart by the path);
* ``"skewed"``: answered as S3 answers a request signed by a clock far from its own
  (``403 RequestTimeTooSkewed``), not forwarded;
* ``"slow-answer"``: forwarded, and answered after :attr:`FaultProxy.answer_delay`
  seconds (a server slow to act on a request it took whole);
* ``"black-hole"``: read, then never forwarded nor answered until the proxy closes
  (a server that stopped answering);
* ``"ignore-range"``: forwarded without its ``Range`` header, so the whole object
  comes back, ``200``, for a range asked for (a server or cache that ignores ranges);
  ``"ignore-range-cut"``: that, and the answer cut as ``"cut-unannounced"`` cuts it;
* ``"first-page"``: a listing's page forwarded without its page token, so the first
  page comes back, with the same token to the next (a server listing in a loop).

The ``Host`` header is forwarded as the client sent it, so signed requests
(S3 SigV4) stay valid. Bodies are read whole; this is for tests, not for
large transfers. Every request is recorded in :attr:`FaultProxy.log` with what
was done to it.

    with FaultProxy(server.endpoint_url, lose_first(conditional_put, 1)) as proxy:
        store = S3Storage(url, endpoint_url=proxy.endpoint_url, ...)
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

Action = (
    Literal[
        "lose-response",
        "refuse",
        "truncate",
        "reset",
        "cut-unannounced",
        "stall",
        "throttle",
        "deny",
        "black-hole",
        "slow-answer",
        "ignore-range",
        "ignore-range-cut",
        "first-page",
        "expire",
        "skewed",
    ]
    | None
)
_SLOW_DOWN = (
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)
_DENIED = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
_EXPIRED = (
    b"<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>"
)
_SKEWED = (
    b"<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request "
    b"time and the current time is too large.</Message></Error>"
)
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-cased names

    def conditional(self) -> bool:
        """A write that carries a precondition (S3 If-Match / If-None-Match, GCS generation)."""
        return (
            "if-match" in self.headers
            or "if-none-match" in self.headers
            or "ifGenerationMatch=" in self.path
        )


class FaultProxy:
    def __init__(self, upstream: str, fault: Callable[[Request], Action], timeout: float = 30):
        target = urlsplit(upstream)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.fault = fault
        self.timeout = timeout
        self.log: list[tuple[Request, Action]] = []
        self.answer_delay = 0.0  # seconds, for "slow-answer"
        self._lock = threading.Lock()
        self._closing = threading.Event()  # ends the stalls
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def decide(self, request: Request) -> Action:
        with self._lock:  # one decision at a time: fault functions may count
            action = self.fault(request)
            self.log.append((request, action))
        return action

    def faults(self) -> list[Request]:
        """The requests a fault was injected into."""
        return [request for request, action in self.log if action is not None]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as clients expect of S3/GCS

            def log_message(self, format: str, *args: object) -> None:
                pass  # the request log is proxy.log

            def _relay(self) -> None:
                body = self._body()
                request = Request(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}
                )
                action = proxy.decide(request)
                if action == "refuse":
                    self._answer(500, {}, b"refused by the fault proxy")
                    return
                if action == "black-hole":
                    proxy._closing.wait()
                    self.close_connection = True
                    return
                if action in ("throttle", "deny"):
                    status, answer = (503, _SLOW_DOWN) if action == "throttle" else (403, _DENIED)
                    self._answer(status, {"Content-Type": "application/xml"}, answer)
                    return
                if action == "expire":
                    self._answer(*_expired(self.path))
                    return
                if action == "skewed":
                    self._answer(403, {"Content-Type": "application/xml"}, _SKEWED)
                    return
                ignored = ("range",) if action in ("ignore-range", "ignore-range-cut") else ()
                if action == "first-page":
                    self.path = _without_page_token(self.path)
                status, headers, data = proxy._forward(self, body, ignored)
                if action == "lose-response":
                    self._answer(500, {}, b"response lost by the fault proxy")
                elif action == "reset":
                    self.close_connection = True
                elif action in ("truncate", "stall"):
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    if action == "stall":
                        proxy._closing.wait()
                    self.close_connection = True
                elif action == "slow-answer":
                    time.sleep(proxy.answer_delay)
                    self._answer(status, headers, data)
                elif action in ("cut-unannounced", "ignore-range-cut"):
                    self.send_response(status)
                    for name, value in headers.items():
                        if name.lower() != "content-length":
                            self.send_header(name, value)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.close_connection = True
                else:
                    self._answer(status, headers, data)

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()  # the CRLF after each chunk
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                # A HEAD answer has no body but the length of the one a GET would have.
                length = headers.pop("Content-Length", None) if self.command == "HEAD" else None
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _relay

        return Handler

    def _forward(
        self, handler: BaseHTTPRequestHandler, body: bytes, ignored: tuple[str, ...] = ()
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=self.timeout)
        try:
            conn.putrequest(
                handler.command, handler.path, skip_host=True, skip_accept_encoding=True
            )
            for name, value in handler.headers.items():
                if name.lower() not in (*HOP_BY_HOP, "content-length", *ignored):
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            data = response.read()
            headers = {
                name.title(): value
                for name, value in response.getheaders()
                if name.lower() not in HOP_BY_HOP
            }
            if handler.command != "HEAD":
                headers.pop("Content-Length", None)  # set again from the body
            return response.status, headers, data
        finally:
            conn.close()


def _expired(path: str) -> tuple[int, dict[str, str], bytes]:
    """The answer to credentials that expired: GCS's JSON API, or S3's."""
    if path.startswith(("/storage/", "/upload/", "/download/")):
        body = b'{"error": {"code": 401, "message": "Invalid Credentials"}}'
        return 401, {"Content-Type": "application/json"}, body
    return 400, {"Content-Type": "application/xml"}, _EXPIRED


def _without_page_token(path: str) -> str:
    parts = urlsplit(path)
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name not in ("continuation-token", "pageToken")
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def lose_first(matches: Callable[[Request], bool], count: int = 1) -> Callable[[Request], Action]:
    """A fault function: lose the response of the first ``count`` requests that match."""
    left = [count]

    def fault(request: Request) -> Action:
        if left[0] > 0 and matches(request):
            left[0] -= 1
            return "lose-response"
        return None

    return fault
