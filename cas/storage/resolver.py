"""Host names resolved within the connect timeout, and a name that does not exist
told from one that is slow.

aiohttp resolves a host name before its connect timeout starts (``sock_connect``
covers the socket's connect alone), in the event loop's default executor: a DNS
resolver that never answered kept a request waiting for ever, and the command could
not even exit, as the executor's threads are joined at exit. :class:`BoundedResolver`
looks each name up in a daemon thread of its own and waits for it no longer than the
connect timeout; a lookup not answered in time is a timeout, retried as one.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

# getaddrinfo's answers that the name has no address: asking again will not give one.
_NO_SUCH_NAME = frozenset(
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)


class ResolutionError(socket.gaierror):
    """Host name ``host`` did not resolve: no such name (``lasting``), or no answer."""

    def __init__(self, host: str, code: int, why: str) -> None:
        super().__init__(code, why)
        self.host = host
        self.lasting = code in _NO_SUCH_NAME


class BoundedResolver(AbstractResolver):
    """aiohttp's threaded resolver, waited for at most ``seconds`` per name."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[ResolveResult]] = loop.create_future()

        def lookup() -> None:
            try:
                result: Any = _lookup(host, port, family)
            except socket.gaierror as exc:
                result = ResolutionError(host, exc.errno, exc.strerror)
            except Exception as exc:  # noqa: BLE001 (handed to the waiting request)
                result = exc
            try:
                loop.call_soon_threadsafe(_settle, answer, result)
            except RuntimeError:
                pass  # the loop closed while the resolver took its time

        # A daemon thread: one stuck in the resolver must not keep the process alive.
        threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
        try:
            return await asyncio.wait_for(answer, self.seconds)
        except TimeoutError:
            raise ResolutionError(
                host, socket.EAI_AGAIN, f"the DNS resolver gave no answer in {self.seconds:g} s"
            ) from None

    async def close(self) -> None:
        pass


def _settle(answer: asyncio.Future[Any], result: Any) -> None:
    if answer.done():
        return  # given up already
    if isinstance(result, BaseException):
        answer.set_exception(result)
    else:
        answer.set_result(result)


def _lookup(host: str, port: int, family: socket.AddressFamily) -> list[ResolveResult]:
    """As aiohttp's ThreadedResolver resolves, all of it in the calling thread."""
    infos = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, family=family, flags=socket.AI_ADDRCONFIG
    )
    hosts: list[ResolveResult] = []
    for found, _, proto, _, address in infos:
        if found == socket.AF_INET6:
            if len(address) < 3:
                continue  # IPv6 not supported by this Python or host
            if address[3]:  # a link-local address needs its scope in the name
                name, number = socket.getnameinfo(
                    address, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
                )
                resolved, resolved_port = name, int(number)
            else:
                resolved, resolved_port = address[:2]
        elif found == socket.AF_INET:
            resolved, resolved_port = address[:2]
        else:
            continue
        hosts.append(
            ResolveResult(
                hostname=host,
                host=resolved,
                port=resolved_port,
                family=found,
                proto=proto,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
        )
    return hosts


def resolution_error(exc: BaseException | None) -> ResolutionError | None:
    """The failed lookup somewhere in ``exc``'s chain (the client libraries wrap it)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ResolutionError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
