"""Paginated lists: `/v2/<name>/tags/list` and `/v2/_catalog`, with `n`, `last` and `Link`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ..errors import RegistryError
from ..keys import REGISTRY
from .base import repository

MAX_PAGE = 10000


def _page(request: web.Request, items: list[str]) -> tuple[list[str], dict[str, str]]:
    """Items after `last`, at most `n`, and a `Link` to the next page when there is one."""
    last = request.query.get("last")
    remaining = [item for item in items if last is None or item > last]
    raw_n = request.query.get("n")
    if raw_n is None:
        return remaining[:MAX_PAGE], {}
    try:
        n = int(raw_n)
    except ValueError:
        n = -1
    if n < 0:
        raise RegistryError("PAGINATION_NUMBER_INVALID", detail={"n": raw_n})
    page = remaining[:min(n, MAX_PAGE)]
    if len(remaining) <= len(page) or not page:
        return page, {}
    query = urlencode({"n": n, "last": page[-1]})
    return page, {"Link": f'<{request.path}?{query}>; rel="next"'}


def _json(body: dict[str, Any], headers: dict[str, str]) -> web.Response:
    return web.json_response(body, headers=headers)


async def list_tags(request: web.Request) -> web.Response:
    repo = repository(request)
    tags = sorted(await repo.tags.list())
    if not tags and not await repo.exists():
        raise RegistryError("NAME_UNKNOWN", detail={"name": repo.name})
    page, headers = _page(request, tags)
    return _json({"name": repo.name, "tags": page}, headers)


async def catalog(request: web.Request) -> web.Response:
    page, headers = _page(request, await request.app[REGISTRY].catalog())
    return _json({"repositories": page}, headers)
