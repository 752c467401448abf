from __future__ import annotations

from aiohttp.test_utils import TestClient

from .oci import error_code


async def test_v2_answers_with_api_version(client: TestClient) -> None:
    for method in ("GET", "HEAD"):
        resp = await client.request(method, "/v2/?ns=docker.io")
        assert resp.status == 200
        assert resp.headers["Docker-Distribution-API-Version"] == "registry/2.0"


async def test_unknown_route_is_an_oci_error(client: TestClient) -> None:
    resp = await client.get("/v3/whatever")
    assert resp.status == 404
    assert resp.content_type == "application/json"
    assert await error_code(resp) == "NOT_FOUND"


async def test_wrong_method_is_an_oci_error(client: TestClient) -> None:
    resp = await client.post("/v2/_catalog")
    assert resp.status == 405
    assert await error_code(resp) == "METHOD_NOT_ALLOWED"
