"""How blob bytes reach the socket: sendfile from the content store, whole or in ranges.

Not aiohttp's FileResponse: a blob is immutable and named by its digest, so the ETag is the
digest (not mtime), there is no stat per request beyond what the store knows, and several
ranges go out as one `multipart/byteranges` body, each part by sendfile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import IO

from aiohttp import web

from ..errors import RegistryError
from ..ranges import Span, parse_ranges
from ..reference import Digest
from ..storage.protocols import BlobContent, GrowingBlob

log = logging.getLogger("ocireg")
FALLBACK_CHUNK = 256 * 1024
CONTENT_TYPE = "application/octet-stream"


class ShortBlob(Exception):
    """The blob's file ends before the bytes its record promises: the store is corrupt."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"file ends at byte {offset}")
        self.offset = offset


def blob_headers(digest: Digest, media_type: str = CONTENT_TYPE) -> dict[str, str]:
    return {
        "Content-Type": media_type,
        "Docker-Content-Digest": str(digest),
        "ETag": f'"{digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
    }


def _not_modified(request: web.Request, digest: Digest) -> bool:
    tags = request.headers.get("If-None-Match")
    return tags is not None and (tags.strip() == "*" or f'"{digest}"' in tags)


def _wanted_spans(request: web.Request, digest: Digest, size: int) -> list[Span] | None:
    """`If-Range` with another validator means the client's copy is stale: send it all."""
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != f'"{digest}"':
        return None
    return parse_ranges(request.headers.get("Range"), size)


class _Plan:
    """What goes on the wire: (prefix bytes, span) pairs, a trailer, and the total length."""

    def __init__(self, spans: list[Span] | None, size: int, headers: dict[str, str]) -> None:
        self.parts: list[tuple[bytes, Span]] = []
        self.trailer = b""
        self.status = 200
        if spans is None:
            self.parts.append((b"", Span(0, size)))
        elif len(spans) == 1:
            self.status = 206
            headers["Content-Range"] = spans[0].content_range(size)
            self.parts.append((b"", spans[0]))
        else:
            self.status = 206
            boundary = uuid.uuid4().hex
            part_type = headers["Content-Type"]
            headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
            for span in spans:
                head = (f"\r\n--{boundary}\r\nContent-Type: {part_type}\r\n"
                        f"Content-Range: {span.content_range(size)}\r\n\r\n")
                self.parts.append((head.encode(), span))
            self.trailer = f"\r\n--{boundary}--\r\n".encode()

    @property
    def length(self) -> int:
        return sum(len(head) + span.length for head, span in self.parts) + len(self.trailer)


async def send_blob(request: web.Request, blob: BlobContent, digest: Digest,
                    media_type: str = CONTENT_TYPE) -> web.StreamResponse:
    headers = blob_headers(digest, media_type)
    if _not_modified(request, digest):
        return web.Response(status=304, headers=headers)
    plan = _Plan(_wanted_spans(request, digest, blob.size), blob.size, headers)
    response = web.StreamResponse(status=plan.status, headers=headers)
    response.content_length = plan.length
    await response.prepare(request)
    if request.method == "HEAD" or plan.length == 0:
        await response.write_eof()
        return response
    try:
        if blob.path is not None:
            await _send_file(request, response, blob.path, plan)
        elif isinstance(blob, GrowingBlob):
            await _send_growing(request, response, blob, plan)
        else:
            await _send_stream(response, blob, plan)
        await response.write_eof()
    except ConnectionError:  # reset or broken pipe: clients cancel pulls all the time
        log.debug("client went away during %s", digest)
    except RegistryError as err:
        log.warning("stream of %s cut short: %s", digest, err.message)
        _cut_short(request)
    except ShortBlob as err:
        log.error("blob %s is corrupt: %s of the %d bytes its record says; `ocireg verify` finds "
                  "such blobs and `ocireg verify --repair` quarantines them", digest, err, blob.size)
        _cut_short(request)
    return response


def _cut_short(request: web.Request) -> None:
    """The status line and Content-Length are already out: the one honest signal left is a
    body that ends early, which every client notices; a complete-looking response would not be."""
    if request.transport is not None:
        request.transport.close()


def _file_size(handle: IO[bytes]) -> int:
    """One fstat of the open file: metadata, inline like the open itself."""
    return os.fstat(handle.fileno()).st_size


async def _send_file(request: web.Request, response: web.StreamResponse, path: str, plan: _Plan) -> None:
    handle: IO[bytes] = open(path, "rb")  # noqa: ASYNC230, SIM115 - a kernel cache lookup; closed below
    try:
        size = _file_size(handle)
        if any(span.start + span.length > size for _, span in plan.parts):
            raise ShortBlob(size)
        for head, span in plan.parts:
            if head:
                await response.write(head)
            await _sendfile(request, response, handle, span.start, span.length)
        if plan.trailer:
            await response.write(plan.trailer)
    finally:
        handle.close()


async def _sendfile(request: web.Request, response: web.StreamResponse, handle: IO[bytes],
                    start: int, length: int) -> None:
    """sendfile stops early, without an error, where the file ends: that count is checked."""
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("client went away")
    loop = asyncio.get_running_loop()
    try:
        sent = await loop.sendfile(transport, handle, start, length, fallback=False)
    except (NotImplementedError, asyncio.SendfileNotAvailableError):
        await _copy_span(response, handle, Span(start, length))
        return
    if sent < length:
        raise ShortBlob(start + sent)


async def _send_growing(request: web.Request, response: web.StreamResponse, blob: GrowingBlob, plan: _Plan) -> None:
    """Each span goes out with sendfile as the fill makes it readable."""
    for head, span in plan.parts:
        if head:
            await response.write(head)
        handle = blob.open_file(span.start)
        if handle is None:
            await _write_chunks(response, blob, span)
            continue
        with handle:
            offset, end = span.start, span.start + span.length
            while offset < end:
                limit = min(await blob.readable(offset), end)
                await _sendfile(request, response, handle, offset, limit - offset)
                offset = limit
    if plan.trailer:
        await response.write(plan.trailer)


async def _copy_span(response: web.StreamResponse, handle: IO[bytes], span: Span) -> None:
    """For transports without sendfile (TLS): bounded reads, never the whole blob."""
    loop = asyncio.get_running_loop()
    offset, remaining = span.start, span.length
    while remaining > 0:
        chunk = await loop.run_in_executor(None, os.pread, handle.fileno(), min(FALLBACK_CHUNK, remaining), offset)
        if not chunk:
            raise ShortBlob(offset)
        await response.write(chunk)
        offset += len(chunk)
        remaining -= len(chunk)


async def _send_stream(response: web.StreamResponse, blob: BlobContent, plan: _Plan) -> None:
    """Content that is no file: each span read from the stream in order."""
    for head, span in plan.parts:
        if head:
            await response.write(head)
        await _write_chunks(response, blob, span)
    if plan.trailer:
        await response.write(plan.trailer)


async def _write_chunks(response: web.StreamResponse, blob: BlobContent, span: Span) -> None:
    async for chunk in blob.chunks(span.start, span.length):
        await response.write(chunk)
