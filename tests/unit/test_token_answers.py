"""A token service that answers with something odd: the pull gets an OCI error or goes on,
never an internal error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from registry.app import create_app
from registry.config import Config, MirrorConfig, StorageConfig, UpstreamConfig

ODD = "odd.test"


class Service:
    """A registry that wants a bearer token and a token realm that answers `answer`."""

    def __init__(self) -> None:
        self.answer: Any = None
        self.realm = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/token":
            return web.Response(text=json.dumps(self.answer), content_type="application/json")
        if "Authorization" not in request.headers:
            challenge = f'Bearer realm="{self.realm}",service="odd"'
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN"}]}, status=404)


@pytest.fixture
async def service() -> Service:
    return Service()


@pytest.fixture
async def client(aiohttp_client, service: Service, tmp_path: Path) -> AsyncIterator[TestClient]:  # type: ignore[no-untyped-def]
    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", service.handle)
    server = TestServer(upstream_app, host="127.0.0.1")
    await server.start_server()
    service.realm = str(server.make_url("/token"))
    upstream = UpstreamConfig(ODD, str(server.make_url("")).rstrip("/"))
    config = Config(storage=StorageConfig(root=str(tmp_path / "data")), mirror=MirrorConfig(upstreams=(upstream,)))
    try:
        yield await aiohttp_client(create_app(config))
    finally:
        await server.close()


@pytest.mark.parametrize(("answer", "code"), [
    ({"token": "t", "expires_in": "soon"}, "MANIFEST_UNKNOWN"),
    ({"token": "t", "expires_in": [1]}, "MANIFEST_UNKNOWN"),
    ({"token": "t", "expires_in": 1e400}, "MANIFEST_UNKNOWN"),
    (["not", "an", "object"], "UNAUTHORIZED"),
    ({"token": 42}, "UNAUTHORIZED"),
])  # fmt: skip
async def test_an_odd_token_answer_is_no_internal_error(
    client: TestClient, service: Service, answer: Any, code: str
) -> None:
    service.answer = answer
    response = await client.get(f"/v2/{ODD}/team/app/manifests/v1")
    body = await response.json()
    assert [e["code"] for e in body["errors"]] == [code], body
