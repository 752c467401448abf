"""The listening side of `ocireg serve`: sockets, accepting, and what one connection may hold.

asyncio's own accept loop takes every connection the kernel offers, and aiohttp gives a client
unlimited time to finish a request head: a few hundred clients that send half a head and stall
use up the process's file descriptors, and then nobody is served. So the sockets are bound
here, before anything else opens (a taken port fails at once, with nothing to clean up); the
accept loop stops taking connections at the cap, so the rest wait in the kernel's backlog while
open connections keep being served; and each connection is a `ConnectionHandler`, aiohttp's
protocol with a deadline on every request head.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from .config import ServerConfig
from .errors import ErrorCode
from .handlers.errors import HttpError, error_response

log = logging.getLogger("ocireg")
BACKLOG = 1024
PER_CONNECTION_FILES = 3  # its socket, a blob file being sent or written, a mirror's upstream socket
RESERVED_FILES = 64  # listening sockets, the event loop, logs, the executor's files
ACCEPT_RETRY = 0.5
FILES_WHEN_UNLIMITED = 1 << 20


def raise_open_file_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit; returns the limit now in force.

    The soft limit is often 1024 while the hard one is far higher: without this a default
    `max_connections` could not be honoured with a blob file open on each connection.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = FILES_WHEN_UNLIMITED if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY:
        return ceiling
    if soft < ceiling:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
            soft = ceiling
    return soft


def connection_cap(max_connections: int) -> int:
    """`max_connections`, lowered when the open-file limit could not serve that many."""
    files = raise_open_file_limit()
    fits = max(1, (files - RESERVED_FILES) // PER_CONNECTION_FILES)
    if fits < max_connections:
        log.warning("server.max_connections lowered from %d to %d: the process may open only %d files "
                    "(raise `ulimit -n`)", max_connections, fits, files)
    return min(max_connections, fits)


class ConnectionHandler(RequestHandler):
    """aiohttp's connection protocol with a deadline for receiving each request head.

    aiohttp closes a connection idle between requests after `keepalive_timeout`, but a client
    that has started a head may take forever over the rest. The clock starts when the
    connection is accepted, and on a kept-alive connection when the first byte of the next head
    arrives; it stops when the head is complete. Bodies are the handlers' business. A timeout
    of 0 turns the clock off, as aiohttp's keepalive_timeout of 0 does.
    """

    __slots__ = ("_head_timer", "_header_timeout", "_in_request", "_on_closed")

    def __init__(self, manager: Server, *, header_timeout: float, on_closed: Callable[[], None],
                 **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._on_closed = on_closed
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_request = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_head_clock()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_clock()
        self._on_closed()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._messages:
            self._in_request = True
            self._stop_head_clock()
        elif data and not self._in_request and self._head_timer is None:
            self._start_head_clock()

    async def finish_response(self, request: BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._in_request = bool(self._messages)

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """A request the HTTP parser refused (a line past its limit, a malformed head) gets an
        OCI error body like every other refusal. aiohttp would answer in plain text that quotes
        the offending bytes and log a traceback per request: a hostile client could fill the log.
        A bad method is most often a TLS handshake on this plain port (skopeo and containerd
        try https first): logged at debug, as aiohttp does."""
        if not isinstance(exc, HttpProcessingError) or status >= 500:
            return super().handle_error(request, status, exc, message)
        level = logging.DEBUG if isinstance(exc, BadHttpMethod) else logging.INFO
        log.log(level, "refused a malformed request from %s: %s", request.remote, type(exc).__name__)
        error = HttpError(ErrorCode.UNSUPPORTED, f"malformed HTTP request ({type(exc).__name__})",
                          status=status, close=True)
        return error_response(error, "GET")

    def _start_head_clock(self) -> None:
        self._stop_head_clock()
        if self._header_timeout > 0:
            self._head_timer = self._loop.call_later(self._header_timeout, self._head_timed_out)

    def _stop_head_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_request:
            log.debug("closing %s: no complete request head in %gs", self.peername, self._header_timeout)
            self.force_close()


class Listener:
    """Bound sockets and their accept loops, with at most `cap` connections open at once."""

    def __init__(self, sockets: list[socket.socket], cap: int) -> None:
        self.sockets = sockets
        self.cap = cap
        self._slots = asyncio.Semaphore(cap)
        self._tasks: list[asyncio.Task[None]] = []
        self._cap_logged = False

    @classmethod
    async def bind(cls, settings: ServerConfig) -> Listener:
        """Every address the host names, bound and listening; OSError says why one was not."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(settings.host or None, settings.port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        sockets: list[socket.socket] = []
        try:
            for family, kind, proto, _, address in dict.fromkeys(infos):
                sockets.append(_listening(family, kind, proto, address))
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        return cls(sockets, connection_cap(settings.max_connections))

    def start(self, server: Server, header_timeout: float, **handler_args: Any) -> None:
        """Accept on every socket; `handler_args` are aiohttp's RequestHandler arguments."""
        loop = asyncio.get_running_loop()

        def protocol(on_closed: Callable[[], None]) -> Callable[[], ConnectionHandler]:
            return lambda: ConnectionHandler(server, loop=loop, header_timeout=header_timeout,
                                          on_closed=on_closed, **handler_args)

        self._tasks = [asyncio.create_task(self._accept(sock, protocol)) for sock in self.sockets]

    async def stop(self) -> None:
        """Stop accepting; the connections already open are the runner's to close."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.close()

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()

    async def _accept(self, sock: socket.socket,
                      protocol: Callable[[Callable[[], None]], Callable[[], ConnectionHandler]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()
            release = self._slot_release()
            try:
                conn = await _accepted(loop, sock)
            except OSError as err:  # out of descriptors, or the client gave up before accept
                release()
                log.warning("cannot accept a connection: %s", err.strerror or err)
                await asyncio.sleep(ACCEPT_RETRY)
                continue
            except BaseException:
                release()
                raise
            self._log_cap_once()
            try:
                await loop.connect_accepted_socket(protocol(release), conn)
            except OSError:
                conn.close()
                release()

    def _slot_release(self) -> Callable[[], None]:
        """Gives the slot back once, whether the connection closes or never got going."""
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._slots.release()

        return release

    def _log_cap_once(self) -> None:
        if self._slots.locked() and not self._cap_logged:
            self._cap_logged = True
            log.warning("%d connections open, the server.max_connections cap: new connections wait in "
                        "the backlog until one closes (logged once)", self.cap)


async def _accepted(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> socket.socket:
    """A connection already waiting is taken with one syscall; only an empty backlog waits
    on the event loop, so a burst of connections is not accepted one loop turn each."""
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        conn, _ = await loop.sock_accept(sock)
    conn.setblocking(False)
    return conn


def _listening(family: int, kind: int, proto: int, address: Any) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
