"""What every handler needs: the repository a request names, its digest, and its body."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from ..bytestreams import batched, paced
from ..errors import RegistryError
from ..keys import CONFIG, REGISTRY
from ..reference import Digest, parse_name
from ..storage.protocols import Repository, UploadWriter

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}
_OFFSET = r"([0-9]{1,19})"
_CONTENT_RANGE = re.compile(rf"(?:bytes[ =])?{_OFFSET}-{_OFFSET}(?:/(?:[0-9]{{1,19}}|\*))?")


async def base(request: web.Request) -> web.Response:
    """`GET /v2/`: clients probe this to learn they are talking to a v2 registry."""
    return web.json_response({})


def repository(request: web.Request) -> Repository:
    name = parse_name(request.match_info["name"])
    return request.app[REGISTRY].repository(name, ns=request.query.get("ns"))


def digest_param(request: web.Request, key: str = "digest") -> Digest:
    return Digest.parse(request.match_info[key])


def query_digest(request: web.Request, key: str = "digest") -> Digest | None:
    value = request.query.get(key)
    return Digest.parse(value) if value is not None else None


@dataclass(frozen=True)
class ChunkRange:
    """A chunk's first and last offset (inclusive), as `Content-Range` declares them."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_content_range(header: str) -> ChunkRange:
    """`[bytes ]<start>-<end>[/<total>|/*]`, ASCII digits only (at most 19, so any int() of
    them is cheap) and `end >= start`; anything else is RANGE_INVALID."""
    match = _CONTENT_RANGE.fullmatch(header.strip(" \t"))
    if not match or int(match.group(2)) < int(match.group(1)):
        raise RegistryError("RANGE_INVALID", "malformed Content-Range", {"Content-Range": header[:100]})
    return ChunkRange(int(match.group(1)), int(match.group(2)))


def chunk_range(request: web.Request) -> ChunkRange | None:
    """The chunk's `Content-Range`, if the client sent one; refused when Content-Length
    disagrees with it, before a byte of the body is read."""
    header = request.headers.get("Content-Range")
    if header is None:
        return None
    declared = parse_content_range(header)
    if request.content_length is not None and request.content_length != declared.length:
        raise RegistryError("RANGE_INVALID", "Content-Range and Content-Length disagree",
                            {"Content-Range": header[:100], "Content-Length": request.content_length})
    return declared


async def stream_body(request: web.Request, upload: UploadWriter, expected: int | None = None) -> int:
    """Copy the request body into the upload in batches, so each disk write is a large one.
    With `expected` (a chunk's declared length) a body that is longer is refused before the
    excess is written, and one that is shorter once it ends. Returns the bytes written."""
    written = 0
    async for data in batched(body_chunks(request, "BLOB_UPLOAD_INVALID")):
        if expected is not None and written + len(data) > expected:
            raise _length_mismatch(expected, "more")
        await upload.write(data)
        written += len(data)
    if expected is not None and written != expected:
        raise _length_mismatch(expected, "fewer")
    return written


def body_chunks(request: web.Request, code: str) -> AsyncIterator[bytes]:
    """The body as it arrives; a pause longer than `server.body_timeout` fails the request
    with 408 (as `code`) and closes its connection, and with it whatever the request held."""
    pause = request.app[CONFIG].server.body_timeout

    def stalled() -> RegistryError:
        return RegistryError(code, f"no body bytes arrived for {pause:g} s", {"body_timeout": pause},
                             status=408, close=True)

    return paced(request.content.iter_any(), pause, stalled)


def _length_mismatch(expected: int, more_or_fewer: str) -> RegistryError:
    return RegistryError("RANGE_INVALID", f"the body holds {more_or_fewer} bytes than Content-Range "
                         f"declares ({expected})", {"expected": expected})


async def read_limited(request: web.Request, limit: int, code: str) -> bytes:
    """A small body (a manifest) read whole; anything over `limit` is refused with 413."""
    declared = request.content_length
    too_large = RegistryError(code, f"body exceeds {limit} bytes", {"limit": limit}, status=413)
    if declared is not None and declared > limit:
        raise too_large
    data = bytearray()
    async for chunk in body_chunks(request, code):
        data += chunk
        if len(data) > limit:
            raise too_large
    return bytes(data)
