"""An upstream that answers a manifest or tag list with far more than one can be: the mirror
refuses it early, keeps nothing of it, and says which upstream it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from registry.app import create_app
from registry.config import Config, MirrorConfig, StorageConfig, UpstreamConfig
from registry.mediatypes import MAX_MANIFEST_BYTES

HOSTILE = "hostile.test"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# Far past every limit (manifests 4 MiB, tag lists 8 MiB) plus what loopback socket buffers
# absorb after the mirror hangs up, so `sent < HUGE` shows the mirror stopped reading.
HUGE = 16 * MAX_MANIFEST_BYTES
CHUNK = b" " * (256 * 1024)


class Flood:
    """Answers `/v2/.../manifests/...` and `/v2/.../tags/list` with HUGE bytes of JSON-ish
    padding, with or without a Content-Length, and counts what it managed to send."""

    def __init__(self) -> None:
        self.sent = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/v2/":
            return web.json_response({})
        kind = "tags" if request.path.endswith("/tags/list") else "manifest"
        content_type = OCI_MANIFEST if kind == "manifest" else "application/json"
        if request.method == "HEAD":  # no digest: the mirror has to GET the tag
            return web.Response(headers={"Content-Type": content_type})
        response = web.StreamResponse(headers={"Content-Type": content_type})
        if "/declared/" in request.path:
            response.content_length = HUGE
        await response.prepare(request)
        await response.write(b'{"tags":["' if kind == "tags" else b"{")
        try:
            while self.sent < HUGE:
                await response.write(CHUNK)
                self.sent += len(CHUNK)
        except (ConnectionError, RuntimeError):
            return response
        return response


@pytest.fixture
async def flood() -> Flood:
    return Flood()


@pytest.fixture
async def client(aiohttp_client, flood: Flood, tmp_path: Path) -> TestClient:  # type: ignore[no-untyped-def]
    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", flood.handle)
    server = TestServer(upstream_app, host="127.0.0.1")
    await server.start_server()
    upstream = UpstreamConfig(HOSTILE, str(server.make_url("")).rstrip("/"))
    config = Config(storage=StorageConfig(root=str(tmp_path / "data")), mirror=MirrorConfig(upstreams=(upstream,)))
    try:
        yield await aiohttp_client(create_app(config))
    finally:
        await server.close()


@pytest.mark.parametrize("how", ["declared", "chunked"])
@pytest.mark.parametrize("what", ["manifests/v1", "tags/list"])
async def test_an_oversized_upstream_answer_is_refused_and_not_kept(
    client: TestClient, flood: Flood, tmp_path: Path, how: str, what: str
) -> None:
    answer = await client.get(f"/v2/{HOSTILE}/{how}/app/{what}")
    body = await answer.json()
    assert answer.status == 503, body
    (error,) = body["errors"]
    assert error["code"] == "UNAVAILABLE" and HOSTILE in error["message"] and "larger" in error["message"], error
    assert flood.sent < HUGE, "the whole oversized answer was read"
    repository = tmp_path / "data" / "repositories" / HOSTILE / how / "app"
    kept = [p for p in repository.rglob("*") if p.is_file()] if repository.exists() else []
    assert kept == [], kept
    blobs = tmp_path / "data" / "blobs"
    assert not blobs.exists() or not [p for p in blobs.rglob("*") if p.is_file()]
