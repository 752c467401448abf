"""What every handler needs: the repository a request names, its digest, and its body."""

from __future__ import annotations

import re

from aiohttp import web

from ..bytestreams import batched
from ..errors import RegistryError
from ..keys import REGISTRY
from ..reference import Digest, parse_name
from ..storage.protocols import Repository, UploadWriter

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")


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


def chunk_start(request: web.Request) -> int | None:
    """The first offset of a chunk's `Content-Range`, if the client sent one."""
    header = request.headers.get("Content-Range")
    if header is None:
        return None
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if not match or int(match.group(2)) < int(match.group(1)):
        raise RegistryError("RANGE_INVALID", "malformed Content-Range", {"Content-Range": header})
    return int(match.group(1))


async def stream_body(request: web.Request, upload: UploadWriter) -> None:
    """Copy the request body into the upload in batches, so each disk write is a large one."""
    async for data in batched(request.content.iter_any()):
        await upload.write(data)


async def read_limited(request: web.Request, limit: int, code: str) -> bytes:
    """A small body (a manifest) read whole; anything over `limit` is refused with 413."""
    declared = request.content_length
    too_large = RegistryError(code, f"body exceeds {limit} bytes", {"limit": limit}, status=413)
    if declared is not None and declared > limit:
        raise too_large
    data = bytearray()
    async for chunk in request.content.iter_any():
        data += chunk
        if len(data) > limit:
            raise too_large
    return bytes(data)
