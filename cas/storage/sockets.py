"""The sockets a network store's connections use: how an upload's progress is seen.

An upload was judged by when aiohttp last read a piece of its body (64 KiB at a
time; 1 MiB over HTTPS to S3, botocore's checksummed chunks), and the kernel took
megabytes of it at once: on a slow uplink a piece took longer than the read timeout
to go, and the last megabytes, handed to the kernel, were still going out when
aiohttp's read timeout for the answer ran out. A transfer that kept moving was cut
as stalled, and retried until the timeout gave up (below ~70 KB/s with the defaults).

So each socket keeps at most :data:`UNSENT_LIMIT` bytes not yet sent
(``TCP_NOTSENT_LOWAT``: the bytes in flight stay the link's), and notes when it got
more of a waiting backlog into the kernel, which only the peer's taking bytes makes
room for: :class:`SendProgress` says how long a store's connections have been
stuck. (All of a store's connections: an upload stuck while another of the same
store moves is cut once that one is done.)
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

# Unsent bytes a socket may hold: sent after aiohttp's read timeout started, they
# must go in less than it (16 KiB take 0.4 s at 40 KB/s).
UNSENT_LIMIT = 16 * 1024


class SendProgress:
    """When any connection of one store last sent bytes it had been waiting to send."""

    def __init__(self) -> None:
        self.last = float("-inf")

    def stuck_for(self) -> float:
        """Seconds since a connection of the store last sent a waiting byte."""
        return time.monotonic() - self.last

    def socket(self, addr_info: Any) -> socket.socket:
        """aiohttp's ``socket_factory``: a socket for the address ``addr_info``."""
        family, kind, proto, _, _ = addr_info
        sock = _ProgressSocket(family, kind, proto)
        sock.progress = self
        lowat = getattr(socket, "TCP_NOTSENT_LOWAT", None)
        if lowat is not None:
            with contextlib.suppress(OSError):  # not on this system: the kernel's default
                sock.setsockopt(socket.IPPROTO_TCP, lowat, UNSENT_LIMIT)
        return sock


class _ProgressSocket(socket.socket):
    """A socket that tells its :class:`SendProgress` when a backlog moves."""

    progress: SendProgress
    backlog = False  # did the last send leave bytes unsent?

    def send(self, data: Any, flags: int = 0) -> int:
        offered = memoryview(data).nbytes
        return self._sent(lambda: super(_ProgressSocket, self).send(data, flags), offered)

    def sendmsg(self, buffers: Any, *rest: Any) -> int:
        buffers = list(buffers)
        offered = sum(memoryview(b).nbytes for b in buffers)
        return self._sent(lambda: super(_ProgressSocket, self).sendmsg(buffers, *rest), offered)

    def _sent(self, send: Any, offered: int) -> int:
        try:
            sent = send()
        except BlockingIOError:
            self.backlog = True
            raise
        if sent and self.backlog:
            self.progress.last = time.monotonic()
        self.backlog = sent < offered
        return sent
