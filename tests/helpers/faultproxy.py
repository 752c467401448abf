"""A loopback HTTP proxy that sits between ocireg and an upstream and breaks blob bodies on demand.

ocireg is configured with the proxy's URL as the upstream's `url`; the proxy forwards every
request to the real upstream (one upstream connection per request, `Connection: close` both
ways, so each request is seen and logged on its own) and relays the answer. What it does to
the answer of a blob GET (`GET /v2/<name>/blobs/<digest>` answered 200 with a Content-Length)
depends on its mode, which a test switches while everything runs (a manifest GET by digest,
`/v2/<name>/manifests/<digest>`, counts as such content too):

- `PASS`      relays the bytes unchanged;
- `TRUNCATE`  sends the headers (full Content-Length) and half the body, then resets the
              connection, as when a link to the upstream drops mid-blob;
- `SHORT`     sends half the body with a Content-Length that says so: a well-formed response
              whose body is shorter than the blob (HTTP cannot notice; only the digest can);
- `FLIP`      sends every byte, with a few of them inverted: only the digest can notice;
- `FAIL`      answers every request itself with `fail_status` (503 by default, or 429 with
              `Retry-After`), as an upstream that is down behind a load balancer;
- `STALL`     sends the headers and half the body, then holds the rest until `release()`:
              a slow upstream, to prove without timing that ocireg streams (its client has
              bytes while the upstream has not finished);
- `REDIRECT`  answers the blob GET with `307` to `/_storage/<same path>` on the proxy, which
              fetches it from the upstream without the request's Authorization header (use it
              in front of an upstream without auth), as a registry that sends clients to S3.

`only_digest` limits the body faults to one blob. `requests` records what was forwarded (method,
target, status as the upstream answered) and `faulted` how many responses were broken, so a
test can prove that the fault happened and that a later pull went upstream again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.helpers.procs import LOOPBACK

_CONTENT_GET = re.compile(
    r"^/v2/.+/(?:blobs|manifests)/(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})(\?.*)?$"
)
_READ = 256 * 1024
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}


class Mode(enum.Enum):
    PASS = "pass"
    TRUNCATE = "truncate"
    SHORT = "short"
    FLIP = "flip"
    FAIL = "fail"
    STALL = "stall"
    REDIRECT = "redirect"


STORAGE_PREFIX = "/_storage"


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    target: str
    status: int  # as the upstream answered; the proxy's own answer in FAIL mode
    faulted: bool


class FaultProxy:
    """Forwards loopback HTTP to `upstream_url`; start/stop, or use `fault_proxy()`."""

    def __init__(self, upstream_url: str) -> None:
        target = urlsplit(upstream_url)
        self.upstream_host = target.hostname or LOOPBACK
        self.upstream_port = target.port or 80
        self.mode = Mode.PASS
        self.only_digest: str | None = None
        self.fail_status = 503
        self.retry_after = "7"
        self.port = 0
        self._lock = threading.Lock()
        self._requests: list[ProxiedRequest] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._release = threading.Event()
        self.stalled = threading.Event()  # set once a STALL response has sent its first half

    # -- what a test reads and sets ----------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def set(self, mode: Mode, *, only_digest: str | None = None, status: int = 503) -> None:
        """Switch the fault; applies to requests that arrive from now on."""
        with self._lock:
            self.mode, self.only_digest, self.fail_status = mode, only_digest, status
            if mode is Mode.STALL:
                self._release.clear()
                self.stalled.clear()

    def release(self) -> None:
        """Let stalled responses finish (and later ones run through)."""
        self._release.set()

    @property
    def requests(self) -> list[ProxiedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def faulted(self) -> int:
        return sum(1 for r in self.requests if r.faulted)

    def blob_gets(self, digest: str) -> list[ProxiedRequest]:
        """The forwarded GETs of `.../blobs/<digest>` or `.../manifests/<digest>`."""
        return [
            r for r in self.requests if r.method == "GET" and _content_digest(r.target) == digest
        ]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")

    def stop(self) -> None:
        self._release.set()
        loop, server = self._loop, self._server
        if loop is not None and server is not None:

            async def close() -> None:
                server.close()
                await server.wait_closed()

            with contextlib.suppress(Exception):  # best effort at teardown
                asyncio.run_coroutine_threadsafe(close(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(
            asyncio.start_server(self._serve, LOOPBACK, 0, backlog=512)
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    # -- the proxy ---------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._exchange(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.transport.abort()
        finally:
            if not writer.transport.is_closing():
                writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, headers = _parse_head(head)
        method, target, _ = request_line.split(" ", 2)
        length = int(_header(headers, "content-length") or 0)
        body = await reader.readexactly(length) if length else b""
        with self._lock:
            mode, only, fail_status = self.mode, self.only_digest, self.fail_status

        if mode is Mode.FAIL:
            self._record(method, target, fail_status, faulted=True)
            extra = [("Retry-After", self.retry_after)] if fail_status == 429 else []
            payload = b'{"errors":[{"code":"UNAVAILABLE","message":"fault proxy: upstream down"}]}'
            writer.write(_response_head(f"HTTP/1.1 {fail_status} Injected", [
                ("Content-Type", "application/json"), ("Content-Length", str(len(payload))), *extra,
            ]))  # fmt: skip
            if method != "HEAD":
                writer.write(payload)
            await writer.drain()
            return

        shown = target  # what `requests` records: /_storage/... stays visible as such
        storage = target.startswith(STORAGE_PREFIX + "/")
        if storage:  # blob storage: pre-authorized URLs, so the registry's auth is not asked for
            target = target[len(STORAGE_PREFIX) :]
            request_line = f"{method} {target} HTTP/1.1"
            headers = [(k, v) for k, v in headers if k.lower() != "authorization"]
        elif (
            mode is Mode.REDIRECT
            and method in ("GET", "HEAD")
            and _content_digest(target) is not None
            and "/blobs/" in target
            and (only is None or only == _content_digest(target))
        ):
            self._record(method, target, 307, faulted=True)
            writer.write(_response_head("HTTP/1.1 307 Temporary Redirect", [
                ("Location", f"{self.url}{STORAGE_PREFIX}{target}"), ("Content-Length", "0"),
            ]))  # fmt: skip
            await writer.drain()
            return

        up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        try:
            forwarded = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
            up_writer.write(_response_head(request_line, [*forwarded, ("Connection", "close")]))
            up_writer.write(body)
            await up_writer.drain()

            status_line, up_headers = _parse_head(await up_reader.readuntil(b"\r\n\r\n"))
            status = int(status_line.split(" ", 2)[1])
            relayed = [(k, v) for k, v in up_headers if k.lower() not in _HOP_BY_HOP]
            relayed.append(("Connection", "close"))
            no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
            size_header = _header(up_headers, "content-length")
            size = int(size_header) if size_header is not None else None
            digest = _content_digest(target)
            fault = (
                mode in (Mode.TRUNCATE, Mode.SHORT, Mode.FLIP, Mode.STALL)
                and not storage
                and method == "GET"
                and status == 200
                and digest is not None
                and (only is None or only == digest)
                and size is not None
                and size > 1
            )
            self._record(method, shown, status, faulted=fault)
            if no_body:
                writer.write(_response_head(status_line, relayed))
                await writer.drain()
                return
            if not fault or size is None:
                writer.write(_response_head(status_line, relayed))
                await _relay(up_reader, writer, size)
                return

            half = size // 2
            if mode is Mode.SHORT:
                relayed = [(k, v) for k, v in relayed if k.lower() != "content-length"]
                relayed.append(("Content-Length", str(half)))
            writer.write(_response_head(status_line, relayed))
            if mode is Mode.FLIP:
                await _relay(up_reader, writer, size, flip_at={half, size - 1})
                return
            await _relay(up_reader, writer, half)
            if mode is Mode.STALL:
                self.stalled.set()
                while not self._release.is_set():  # noqa: ASYNC110 - set from the test's thread
                    await asyncio.sleep(0.01)
                await _relay(up_reader, writer, size - half)
                return
            if mode is Mode.TRUNCATE:
                writer.transport.abort()  # the client sees the connection reset mid-body
        finally:
            up_writer.close()

    def _record(self, method: str, target: str, status: int, *, faulted: bool) -> None:
        with self._lock:
            self._requests.append(ProxiedRequest(method, target, status, faulted))


async def _relay(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    size: int | None,
    flip_at: set[int] | None = None,
) -> None:
    """Copy `size` bytes (or everything until EOF), inverting the bytes at `flip_at`."""
    sent = 0
    while size is None or sent < size:
        want = _READ if size is None else min(_READ, size - sent)
        chunk = await reader.read(want)
        if not chunk:
            if size is not None:
                raise ConnectionError("upstream closed early")
            return
        if flip_at:
            hits = [i - sent for i in flip_at if sent <= i < sent + len(chunk)]
            if hits:
                mutable = bytearray(chunk)
                for i in hits:
                    mutable[i] ^= 0xFF
                chunk = bytes(mutable)
        writer.write(chunk)
        await writer.drain()
        sent += len(chunk)


def _parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


def _response_head(first_line: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [first_line, *(f"{k}: {v}" for k, v in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _content_digest(target: str) -> str | None:
    match = _CONTENT_GET.match(target)
    return match.group(1) if match else None


@contextmanager
def fault_proxy(upstream_url: str) -> Iterator[FaultProxy]:
    """A started proxy in front of `upstream_url` (pass-through until told otherwise)."""
    proxy = FaultProxy(upstream_url)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
