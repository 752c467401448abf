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


async def test_concurrent_chunks_on_one_session_never_interleave(client: TestClient) -> None:
    """Eight clients send the same chunk at once: one is taken, the others are refused whole
    (416), and the session then completes with exactly that chunk's bytes."""
    location = (await client.post("/v2/app/blobs/uploads/")).headers["Location"]
    chunk = os.urandom(3 * 1024 * 1024)
    results = await asyncio.gather(*(client.patch(location, data=chunk, headers={
        "Content-Range": f"0-{len(chunk) - 1}"}) for _ in range(8)))
    statuses = sorted(resp.status for resp in results)
    assert statuses.count(202) >= 1 and set(statuses) <= {202, 416}, statuses
    assert (await client.get(location)).headers["Range"] == f"0-{len(chunk) - 1}"
    done = await client.put(f"{location}?digest={sha256(chunk)}")
    assert done.status == 201, await done.text()
