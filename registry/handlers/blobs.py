"""`/v2/<name>/blobs/<digest>`: fetch, check, delete."""

from __future__ import annotations

from aiohttp import web

from .base import digest_param, repository
from .send import blob_headers, send_blob


async def get_blob(request: web.Request) -> web.StreamResponse:
    """GET and HEAD: HEAD gets the same headers, Content-Length included, and no body. A HEAD
    only stats: through the mirror that is an upstream HEAD, never a download."""
    digest = digest_param(request)
    blobs = repository(request).blobs
    if request.method == "HEAD":
        response = web.StreamResponse(headers=blob_headers(digest))
        response.content_length = (await blobs.stat(digest)).size
        return response
    return await send_blob(request, await blobs.open(digest), digest)


async def delete_blob(request: web.Request) -> web.Response:
    """Unlinks the blob from this repository; `ocireg gc` reclaims the bytes later."""
    digest = digest_param(request)
    await repository(request).blobs.delete(digest)
    return web.Response(status=202, headers={"Docker-Content-Digest": str(digest)})
