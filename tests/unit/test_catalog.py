"""The catalog names repositories that hold something, not folders left behind."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from registry.reference import Digest

BLOB = b"catalog blob"


@pytest.fixture
async def client(aiohttp_client, app: web.Application) -> TestClient:  # type: ignore[no-untyped-def]
    return await aiohttp_client(app)


async def test_a_repository_emptied_by_deletes_leaves_the_catalog(client: TestClient) -> None:
    digest = str(Digest.of(BLOB))
    for name in ("team/gone", "team/kept"):
        pushed = await client.post(f"/v2/{name}/blobs/uploads/?digest={digest}", data=BLOB)
        assert pushed.status == 201, await pushed.text()
    deleted = await client.delete(f"/v2/team/gone/blobs/{digest}")
    assert deleted.status == 202, await deleted.text()
    listed = await client.get("/v2/_catalog")
    assert (await listed.json())["repositories"] == ["team/kept"]
