from __future__ import annotations

import os
from pathlib import Path

from aiohttp.test_utils import TestClient

from .oci import error_code, push_image, sha256

BAD_NAMES = ["Upper/case", "a" * 256, "_reserved", "team/_links", "a//b", "trailing-", "-lead", "a%2F..%2Fb"]


async def test_invalid_names_are_refused_before_storage(client: TestClient, data_dir: Path) -> None:
    for name in BAD_NAMES:
        for method, path in (("GET", f"/v2/{name}/tags/list"), ("POST", f"/v2/{name}/blobs/uploads/"),
                             ("GET", f"/v2/{name}/manifests/latest"), ("GET", f"/v2/{name}/blobs/{sha256(b'')}")):
            resp = await client.request(method, path)
            assert resp.status in (400, 404), (name, path)
            if resp.status == 400:
                assert await error_code(resp) == "NAME_INVALID", (name, path)
    created = [root for root, _, _ in os.walk(data_dir)]
    assert not any("_reserved" in path or "Upper" in path for path in created)


async def test_dot_dot_cannot_escape(client: TestClient, data_dir: Path) -> None:
    for path in ("/v2/../../etc/tags/list", "/v2/a/../../../x/blobs/uploads/", "/v2/..%2F..%2Fx/tags/list"):
        resp = await client.request("POST" if "uploads" in path else "GET", path)
        assert resp.status in (400, 404)
    assert not (data_dir.parent / "x").exists()


async def test_long_valid_name(client: TestClient) -> None:
    name = "/".join(["abcdefghij"] * 23)  # 252 characters
    await push_image(client, name, "v1")
    assert (await client.get(f"/v2/{name}/manifests/v1")).status == 200


async def test_ns_parameter_serves_pushed_content(client: TestClient) -> None:
    digest, _ = await push_image(client, "library/alpine", "3.20")
    resp = await client.get("/v2/library/alpine/manifests/3.20?ns=docker.io")
    assert resp.status == 200
    assert resp.headers["Docker-Content-Digest"] == digest
