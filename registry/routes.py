"""The one URL table of the /v2 API, most specific routes first, with what each route asks for.

Names match loosely here (`.+`) and strictly in the handlers, so a bad name gets a
NAME_INVALID error instead of an anonymous 404.

Each route carries an `Action` (the scope an access-control check would grant: Distribution's
pull/push/delete, plus catalog for `_catalog`). A middleware in `create_app`'s slot reads it
with `action_of(request)`; the handlers never look at it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from .handlers import base, blobs, listing, manifests, referrers, uploads

NAME = "{name:.+}"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Action(StrEnum):
    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"
    CATALOG = "catalog"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    action: Action | None  # None: asks for nothing (`/v2/`, the version probe)


_UPLOAD = f"/v2/{NAME}/blobs/uploads/{{uuid}}"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v2/", base.base, None),
    Route("GET", "/v2/_catalog", listing.catalog, Action.CATALOG),
    Route("GET", f"/v2/{NAME}/tags/list", listing.list_tags, Action.PULL),
    Route("GET", f"/v2/{NAME}/referrers/{{digest}}", referrers.list_referrers, Action.PULL),
    # Every step of an upload, its status and its cancelling too, is part of a push.
    Route("POST", f"/v2/{NAME}/blobs/uploads/", uploads.start_upload, Action.PUSH),
    Route("GET", _UPLOAD, uploads.upload_status, Action.PUSH),
    Route("PATCH", _UPLOAD, uploads.patch_upload, Action.PUSH),
    Route("PUT", _UPLOAD, uploads.put_upload, Action.PUSH),
    Route("DELETE", _UPLOAD, uploads.cancel_upload, Action.PUSH),
    Route("GET", f"/v2/{NAME}/blobs/{{digest}}", blobs.get_blob, Action.PULL),
    Route("DELETE", f"/v2/{NAME}/blobs/{{digest}}", blobs.delete_blob, Action.DELETE),
    Route("GET", f"/v2/{NAME}/manifests/{{reference}}", manifests.get_manifest, Action.PULL),
    Route("PUT", f"/v2/{NAME}/manifests/{{reference}}", manifests.put_manifest, Action.PUSH),
    Route("DELETE", f"/v2/{NAME}/manifests/{{reference}}", manifests.delete_manifest, Action.DELETE),
)

# The table as (method, path, handler), derived from ROUTES, for readers that need no action.
TABLE: list[tuple[str, str, object]] = [(route.method, route.path, route.handler) for route in ROUTES]

ACTIONS = web.AppKey[Mapping[AbstractRoute, Action | None]]("actions")


def add_routes(app: web.Application) -> None:
    """GET routes answer HEAD too (aiohttp adds it), with the same headers, no body and the
    same action. Each aiohttp route is recorded with its action, so `action_of` is one lookup."""
    actions: dict[AbstractRoute, Action | None] = {}
    for route in ROUTES:
        if route.method == "GET":
            added = app.router.add_get(route.path, route.handler)
            actions[_head_beside(added)] = route.action
        else:
            added = app.router.add_route(route.method, route.path, route.handler)
        actions[added] = route.action
    app[ACTIONS] = actions


def _head_beside(get: AbstractRoute) -> AbstractRoute:
    """The HEAD route `add_get` created on the same resource, for the same handler."""
    assert get.resource is not None
    return next(r for r in get.resource if r.method == "HEAD" and r.handler is get.handler)


def action_of(request: web.Request) -> Action | None:
    """What the request asks for; None for `/v2/` and for requests that matched no route."""
    return request.app[ACTIONS].get(request.match_info.route)
