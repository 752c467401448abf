"""`/v2/<name>/blobs/<digest>`: fetch, check, delete."""

from __future__ import annotations

from aiohttp import web

from .base import digest_param, repository
from .send import send_blob


async def get_blob(request: web.Request) -> web.StreamResponse:
    """GET and HEAD: HEAD gets the same headers, Content-Length included, and no body."""
    digest = digest_param(request)
    blob = await repository(request).blobs.open(digest)
    return await send_blob(request, blob, digest)


async def delete_blob(request: web.Request) -> web.Response:
    """Unlinks the blob from this repository; `ocireg gc` reclaims the bytes later."""
    digest = digest_param(request)
    await repository(request).blobs.delete(digest)
    return web.Response(status=202, headers={"Docker-Content-Digest": str(digest)})
