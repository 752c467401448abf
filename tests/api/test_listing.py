from __future__ import annotations

from aiohttp.test_utils import TestClient

from .oci import error_code, push_image


async def test_tags_list_pagination(client: TestClient) -> None:
    for tag in ("v3", "v1", "latest", "v2"):
        await push_image(client, "team/app", tag)
    whole = await client.get("/v2/team/app/tags/list")
    assert await whole.json() == {"name": "team/app", "tags": ["latest", "v1", "v2", "v3"]}
    assert "Link" not in whole.headers
    first = await client.get("/v2/team/app/tags/list?n=2")
    assert (await first.json())["tags"] == ["latest", "v1"]
    assert first.headers["Link"] == '</v2/team/app/tags/list?n=2&last=v1>; rel="next"'
    second = await client.get("/v2/team/app/tags/list?n=2&last=v1")
    assert (await second.json())["tags"] == ["v2", "v3"]
    assert "Link" not in second.headers
    empty = await client.get("/v2/team/app/tags/list?n=0")
    assert (await empty.json())["tags"] == []
    bad = await client.get("/v2/team/app/tags/list?n=-1")
    assert bad.status == 400 and await error_code(bad) == "PAGINATION_NUMBER_INVALID"


async def test_tags_of_unknown_repository(client: TestClient) -> None:
    resp = await client.get("/v2/nothing/here/tags/list")
    assert resp.status == 404 and await error_code(resp) == "NAME_UNKNOWN"


async def test_catalog_lists_nested_names(client: TestClient) -> None:
    for name in ("b", "a/x", "a", "team/app/api"):
        await push_image(client, name, "v1")
    resp = await client.get("/v2/_catalog")
    assert await resp.json() == {"repositories": ["a", "a/x", "b", "team/app/api"]}
    page = await client.get("/v2/_catalog?n=2&last=a")
    assert (await page.json())["repositories"] == ["a/x", "b"]
    assert page.headers["Link"] == '</v2/_catalog?n=2&last=b>; rel="next"'


async def test_a_parent_folder_is_no_repository(client: TestClient) -> None:
    await push_image(client, "team/app", "v1")
    resp = await client.get("/v2/team/tags/list")
    assert resp.status == 404 and await error_code(resp) == "NAME_UNKNOWN"
