"""The route table's actions and the middleware slot of `create_app`: an access-control module
placed there learns what each request asks for, and what it raises reaches the client as an
OCI error rendered by the error middleware."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiohttp.typedefs import Handler

from registry.app import create_app
from registry.compose import build_services
from registry.config import Config, StorageConfig
from registry.errors import RegistryError
from registry.routes import ROUTES, TABLE, Action, action_of

from .oci import error_code, push_blob

DATA = b"a blob the guarded app serves"
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()

EXPECTED = {
    ("GET", "/v2/"): None,
    ("GET", "/v2/_catalog"): Action.CATALOG,
    ("GET", "/v2/{name:.+}/tags/list"): Action.PULL,
    ("GET", "/v2/{name:.+}/referrers/{digest}"): Action.PULL,
    ("POST", "/v2/{name:.+}/blobs/uploads/"): Action.PUSH,
    ("GET", "/v2/{name:.+}/blobs/uploads/{uuid}"): Action.PUSH,
    ("PATCH", "/v2/{name:.+}/blobs/uploads/{uuid}"): Action.PUSH,
    ("PUT", "/v2/{name:.+}/blobs/uploads/{uuid}"): Action.PUSH,
    ("DELETE", "/v2/{name:.+}/blobs/uploads/{uuid}"): Action.PUSH,
    ("GET", "/v2/{name:.+}/blobs/{digest}"): Action.PULL,
    ("DELETE", "/v2/{name:.+}/blobs/{digest}"): Action.DELETE,
    ("GET", "/v2/{name:.+}/manifests/{reference}"): Action.PULL,
    ("PUT", "/v2/{name:.+}/manifests/{reference}"): Action.PUSH,
    ("DELETE", "/v2/{name:.+}/manifests/{reference}"): Action.DELETE,
}


def test_every_route_has_its_action() -> None:
    assert {(route.method, route.path): route.action for route in ROUTES} == EXPECTED


def test_table_is_the_routes_without_their_actions() -> None:
    assert [(route.method, route.path, route.handler) for route in ROUTES] == TABLE
    assert all(len(row) == 3 for row in TABLE)


Seen = list[tuple[str, Action | None, str | None]]


def recording(seen: Seen) -> Callable[[web.Request, Handler], Any]:
    """Notes what each request asks for and for which name, then lets it through."""
    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        seen.append((request.method, action_of(request), request.match_info.get("name")))
        return await handler(request)
    return record


@web.middleware
async def refuse_pushes(request: web.Request, handler: Handler) -> web.StreamResponse:
    if action_of(request) == Action.PUSH:
        raise RegistryError("DENIED", f"pushes to {request.match_info['name']} are refused here")
    return await handler(request)


def guarded_app(data_dir: Path, *middlewares: Any) -> web.Application:
    config = Config(storage=StorageConfig(root=str(data_dir)))
    return create_app(config, build_services(config), middlewares=middlewares)


@pytest.fixture
async def stored_blob(client: TestClient) -> None:
    """DATA pushed to `app` through the unguarded app, on the data folder both apps share."""
    assert await push_blob(client, "app", DATA) == DIGEST


async def test_head_asks_for_what_get_asks_for(aiohttp_client: Any, data_dir: Path, stored_blob: None) -> None:
    seen: Seen = []
    guarded = await aiohttp_client(guarded_app(data_dir, recording(seen)))
    for method in ("GET", "HEAD"):
        assert (await guarded.request(method, f"/v2/app/blobs/{DIGEST}")).status == 200
        assert (await guarded.request(method, "/v2/app/manifests/v1")).status == 404
        assert (await guarded.request(method, "/v2/")).status == 200
    pulls = [("GET", Action.PULL, "app"), ("GET", Action.PULL, "app"), ("GET", None, None)]
    assert seen == pulls + [("HEAD", action, name) for _, action, name in pulls]


async def test_unrouted_requests_ask_for_nothing(aiohttp_client: Any, data_dir: Path) -> None:
    seen: Seen = []
    guarded = await aiohttp_client(guarded_app(data_dir, recording(seen)))
    assert (await guarded.get("/v3/whatever")).status == 404
    assert seen == [("GET", None, None)]


async def test_a_middleware_in_the_slot_refuses_pushes_and_lets_pulls_through(
    aiohttp_client: Any, data_dir: Path, stored_blob: None
) -> None:
    guarded = await aiohttp_client(guarded_app(data_dir, refuse_pushes))
    for method in ("GET", "HEAD"):
        response = await guarded.request(method, f"/v2/app/blobs/{DIGEST}")
        assert response.status == 200, await response.text()
    assert await (await guarded.get(f"/v2/app/blobs/{DIGEST}")).read() == DATA
    assert (await guarded.get("/v2/app/tags/list")).status == 200  # a pull: reached the handler
    pushes = [guarded.post("/v2/other/blobs/uploads/"),
              guarded.put("/v2/app/manifests/v1", data=b"{}"),
              guarded.get("/v2/app/blobs/uploads/some-session")]
    for request in pushes:
        response = await request
        assert response.status == 403
        assert await error_code(response) == "DENIED"
    body = await (await guarded.post("/v2/named/blobs/uploads/")).json()
    assert body["errors"][0]["message"] == "pushes to named are refused here"
    assert (await guarded.head("/v2/app/blobs/uploads/some-session")).status == 403
    assert not (data_dir / "repositories" / "other").exists()
