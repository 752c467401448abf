"""Manifests a hostile or broken client may push: each is refused with MANIFEST_INVALID and a
message naming what is wrong, and nothing is stored under the tag."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient

from registry.mediatypes import MAX_REFERENCES
from registry.reference import Digest
from registry.storage.blobs import Links

from .oci import OCI_INDEX, OCI_MANIFEST, image_manifest, push_blob, sha256

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


async def _refused(client: TestClient, body: bytes, content_type: str = OCI_MANIFEST) -> str:
    resp = await client.put("/v2/app/manifests/bad", data=body, headers={"Content-Type": content_type})
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["errors"][0]
    assert error["code"] == "MANIFEST_INVALID"
    assert (await client.get("/v2/app/manifests/bad")).status == 404
    return str(error["message"])


async def _valid_body(client: TestClient) -> bytes:
    config, layer = b'{"os":"linux"}', b"layer"
    await push_blob(client, "app", config)
    await push_blob(client, "app", layer)
    return image_manifest(config, [layer])


async def test_nested_array_bomb(client: TestClient) -> None:
    body = b'{"schemaVersion":2,"x":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    assert "nest" in await _refused(client, body)


async def test_nesting_inside_strings_does_not_count(client: TestClient) -> None:
    body = await _valid_body(client)
    doc = json.loads(body)
    doc["annotations"] = {"deep": "[" * 10_000 + '\\"{' * 1000}
    resp = await client.put("/v2/app/manifests/ok", data=json.dumps(doc).encode(),
                            headers={"Content-Type": OCI_MANIFEST})
    assert resp.status == 201, await resp.text()


async def test_huge_integer(client: TestClient) -> None:
    body = b'{"schemaVersion":2,"x":' + b"9" * 5000 + b"}"
    assert "integer" in await _refused(client, body)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity(client: TestClient, constant: str) -> None:
    body = await _valid_body(client)
    assert constant.lstrip("-") in await _refused(client, body[:-1] + f',"x":{constant}}}'.encode())


async def test_float_overflowing_to_infinity(client: TestClient) -> None:
    body = await _valid_body(client)
    assert "finite" in await _refused(client, body[:-1] + b',"x":1e999}')


async def test_utf16_body(client: TestClient) -> None:
    body = await _valid_body(client)
    assert "UTF-8" in await _refused(client, body.decode().encode("utf-16"))
    assert "UTF-8" in await _refused(client, body.decode().encode("utf-16-le"))


async def test_utf8_byte_order_mark(client: TestClient) -> None:
    body = await _valid_body(client)
    assert "byte order mark" in await _refused(client, b"\xef\xbb\xbf" + body)


def _with(body: bytes, **changes: object) -> bytes:
    doc = json.loads(body)
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize("version", [2.0, "2", True, None, 3])
async def test_schema_version_is_the_integer_two(client: TestClient, version: object) -> None:
    body = await _valid_body(client)
    assert "schemaVersion" in await _refused(client, _with(body, schemaVersion=version))


@pytest.mark.parametrize(("field", "value", "says"), [
    ("size", -1, "size"), ("size", 1.5, "size"), ("size", "5", "size"), ("size", True, "size"),
    ("size", None, "size"), ("mediaType", 7, "mediaType"), ("urls", "http://x", "urls"),
    ("annotations", {"a": 1}, "annotations"),
])
async def test_descriptor_fields_are_typed(client: TestClient, field: str, value: object, says: str) -> None:
    body = await _valid_body(client)
    doc = json.loads(body)
    if value is None:
        del doc["layers"][0][field]
    else:
        doc["layers"][0][field] = value
    message = await _refused(client, json.dumps(doc).encode())
    assert says in message and "layers[0]" in message


async def test_size_beyond_int64(client: TestClient) -> None:
    body = await _valid_body(client)
    doc = json.loads(body)
    doc["config"]["size"] = 2**63
    assert "64-bit" in await _refused(client, json.dumps(doc).encode())


@pytest.mark.parametrize(("field", "value"), [("annotations", {"a": 1}), ("annotations", []),
                                              ("artifactType", 5), ("subject", "sha256:x")])
async def test_top_level_fields_are_typed(client: TestClient, field: str, value: object) -> None:
    body = await _valid_body(client)
    assert field in await _refused(client, _with(body, **{field: value}))


async def test_image_body_under_an_index_type_is_refused(client: TestClient) -> None:
    """Stored as an index, it would skip the checks that its config and layers exist."""
    config, layer = b'{"os":"linux"}', b"never pushed"
    await push_blob(client, "app", config)
    doc = json.loads(image_manifest(config, [layer]))
    del doc["mediaType"]
    message = await _refused(client, json.dumps(doc).encode(), OCI_INDEX)
    assert "index" in message and "config" in message
    doc["manifests"] = []
    await _refused(client, json.dumps(doc).encode(), OCI_INDEX)


@pytest.mark.parametrize(("media_type", "doc"), [
    (OCI_INDEX, {}),
    (OCI_INDEX, {"manifests": [], "layers": []}),
    (DOCKER_LIST, {"manifests": [], "config": {}}),
    (OCI_MANIFEST, {"layers": []}),
    (DOCKER_MANIFEST, {"config": {}}),
    (OCI_MANIFEST, {"config": {}, "layers": [], "manifests": []}),
])
async def test_shape_must_match_media_type(client: TestClient, media_type: str, doc: dict[str, object]) -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": media_type, **doc}).encode()
    assert media_type in await _refused(client, body, media_type)


async def test_one_blob_listed_many_times_is_checked_once(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    touch = Links.touch

    async def counting_touch(self: Links, digest: Digest) -> bool:
        checked.append(str(digest))
        return await touch(self, digest)

    monkeypatch.setattr(Links, "touch", counting_touch)
    config, layer = b'{"os":"linux"}', b"layer"
    await push_blob(client, "app", config)
    await push_blob(client, "app", layer)
    body = image_manifest(config, [layer] * 5000)
    resp = await client.put("/v2/app/manifests/many", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert resp.status == 201, await resp.text()
    assert sorted(checked) == sorted({sha256(config), sha256(layer)})


async def test_too_many_distinct_references(client: TestClient) -> None:
    layers = [{"mediaType": "application/octet-stream", "size": 1, "digest": sha256(str(n).encode())}
              for n in range(MAX_REFERENCES + 1)]
    doc = json.loads(image_manifest(b"{}", []))
    doc["layers"] = layers
    assert str(MAX_REFERENCES) in await _refused(client, json.dumps(doc).encode())
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [dict(layer, mediaType=OCI_MANIFEST) for layer in layers]}
    assert str(MAX_REFERENCES) in await _refused(client, json.dumps(index).encode(), OCI_INDEX)


async def test_errors_quote_little_of_the_body(client: TestClient) -> None:
    body = await _valid_body(client)
    doc = json.loads(body)
    doc["layers"][0]["size"] = "9" * 100_000
    cases = [(json.dumps(doc).encode(), OCI_MANIFEST), (_with(body, mediaType="x" * 100_000), "x" * 4000),
             (_with(body, mediaType="x" * 100_000), ""), (_with(body, schemaVersion=["2"] * 20_000), OCI_MANIFEST)]
    for bad, content_type in cases:
        resp = await client.put("/v2/app/manifests/bad", data=bad, headers={"Content-Type": content_type})
        assert resp.status == 400
        assert len(await resp.read()) < 2000, content_type[:10]
