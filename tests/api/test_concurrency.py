"""Many clients pushing the same content or tag at once: every push succeeds, nothing tears."""

from __future__ import annotations

import asyncio
import os

from aiohttp.test_utils import TestClient

from .oci import push_blob, push_image, sha256


async def test_same_blob_pushed_concurrently(client: TestClient) -> None:
    data = os.urandom(2 * 1024 * 1024)
    digests = await asyncio.gather(*(push_blob(client, f"repo{i % 3}", data) for i in range(12)))
    assert set(digests) == {sha256(data)}
    for i in range(3):
        assert await (await client.get(f"/v2/repo{i}/blobs/{sha256(data)}")).read() == data


async def test_same_tag_pushed_concurrently(client: TestClient) -> None:
    results = await asyncio.gather(*(push_image(client, "app", "latest", seed=str(i)) for i in range(10)))
    winner = (await client.head("/v2/app/manifests/latest")).headers["Docker-Content-Digest"]
    assert winner in {digest for digest, _ in results}
    for digest, body in results:
        assert await (await client.get(f"/v2/app/manifests/{digest}")).read() == body
