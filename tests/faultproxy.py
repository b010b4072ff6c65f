"""A TCP proxy on 127.0.0.1 that can misbehave, for network fault tests.

``FaultProxy(target_url)`` listens on a free port and forwards to the target.
Its :attr:`~FaultProxy.mode` can be changed at any time. "black-hole", "deaf" and
"refuse" apply to open connections too (the server stalls, or goes away);
"fail" applies to new connections only:

* ``"pass"``: forward both ways;
* ``"black-hole"``: accept, read and drop everything, never answer (a stalled
  gateway, a SIGSTOPped server);
* ``"deaf"``: accept, then neither read nor answer, so a client sending a body
  blocks once the socket buffers are full (a SIGSTOPped server, a gateway whose
  backend stopped reading);
* ``"refuse"``: stop listening, so connecting fails at once (a server that is down);
* ``"fail"``: answer the next :attr:`~FaultProxy.failures` requests with HTTP 500,
  then forward again (a server that errs for a while and recovers);
* ``"deny"``: answer every request 403 AccessDenied (credentials a bucket refuses).

``FaultProxy(target_url, upload_rate=N)`` forwards what the client sends at N
bytes per second, through a small receive window (a slow uplink: what it has not
forwarded stays with the sender, as on a real link, where loopback's default window
would take megabytes at once).

:attr:`~FaultProxy.connections` counts the connections accepted, per mode.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from urllib.parse import urlsplit

_PACED_PIECE = 1024  # a paced connection reads this much at a time
_PACED_WINDOW = 16 * 1024

_ERROR_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\n"
    b"Content-Type: application/xml\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
)
# S3's body for a refusal; a GCS client reads it as the message of a 403.
_DENIED_BODY = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
_ERROR_403 = (
    b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_DENIED_BODY), _DENIED_BODY)
)


class FaultProxy:
    def __init__(
        self, target_url: str, mode: str = "pass", upload_rate: float | None = None
    ) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.failures = 0
        self.upload_rate = upload_rate
        self.connections: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._closed = False
        self._closing = threading.Event()  # ends the deaf connections' wait
        self._listener: socket.socket | None = None
        self._listen(0)
        self.port = self._listener.getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{self.port}"
        self._mode = "pass"
        self.mode = mode

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in ("pass", "black-hole", "deaf", "refuse", "fail", "deny"):
            raise ValueError(f"unknown mode {mode!r}")
        with self._lock:
            self._mode = mode
            if mode == "refuse":
                self._stop_listening()
            elif self._listener is None:
                self._listen(self.port)

    def fail(self, n: int) -> None:
        """Answer the next ``n`` requests with HTTP 500, then pass."""
        with self._lock:
            self.failures = n
        self.mode = "fail"

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            self._closed = True
            self._stop_listening()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------

    def _listen(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.upload_rate:  # inherited by the accepted sockets
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _PACED_WINDOW)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _stop_listening(self) -> None:
        if self._listener is not None:
            # shutdown wakes the thread blocked in accept(); close frees the port.
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            with self._lock:
                mode = self._mode
                if mode == "fail":
                    if self.failures > 0:
                        self.failures -= 1
                    else:
                        mode = self._mode = "pass"
                self.connections[mode] += 1
            handler, args = {
                "pass": (self._forward, ()),
                "black-hole": (_drain, ()),
                "deaf": (self._hold, ()),
                "fail": (_answer, (_ERROR_500,)),
                "deny": (_answer, (_ERROR_403,)),
            }[mode]
            threading.Thread(target=handler, args=(client, *args), daemon=True).start()

    def _hold(self, client: socket.socket) -> None:
        """Keep ``client`` open, unread, until the proxy closes."""
        self._closing.wait()
        _close(client)

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream, paced=True)

    def _pipe(self, src: socket.socket, dst: socket.socket, paced: bool = False) -> None:
        try:
            while data := src.recv(_PACED_PIECE if paced and self.upload_rate else 65536):
                if paced and self.upload_rate:
                    time.sleep(len(data) / self.upload_rate)
                if self._mode == "refuse":
                    break  # the server went away: drop the connection
                if self._mode == "deaf":
                    self._closing.wait()  # read no more: the sender's buffers fill
                    break
                if self._mode != "black-hole":
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src, dst)


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


def _drain(client: socket.socket) -> None:
    try:
        while client.recv(65536):
            pass
    except OSError:
        pass
    client.close()


def _answer(client: socket.socket, response: bytes) -> None:
    """Read the request's head, send ``response`` and close (one request per connection)."""
    try:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                break
            head += chunk
        client.sendall(response)
        client.shutdown(socket.SHUT_WR)
        _drain(client)
    except OSError:
        client.close()
