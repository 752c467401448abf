from __future__ import annotations

import json

from aiohttp.test_utils import TestClient

from .oci import OCI_INDEX, OCI_MANIFEST, descriptor, error_code, image_manifest, push_blob, push_image, sha256

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


async def test_push_and_pull_by_tag_and_digest(client: TestClient) -> None:
    digest, body = await push_image(client, "team/app/api", "v1")
    for ref in ("v1", digest):
        resp = await client.get(f"/v2/team/app/api/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert resp.status == 200
        assert await resp.read() == body
        assert resp.headers["Content-Type"] == OCI_MANIFEST
        assert resp.headers["Docker-Content-Digest"] == digest
        head = await client.head(f"/v2/team/app/api/manifests/{ref}")
        assert head.status == 200
        assert head.headers["Content-Length"] == str(len(body))
        assert head.headers["Content-Type"] == OCI_MANIFEST
        assert head.headers["Docker-Content-Digest"] == digest


async def test_exact_bytes_are_kept(client: TestClient) -> None:
    config, layer = b'{"os":"linux"}', b"layer"
    await push_blob(client, "app", config)
    await push_blob(client, "app", layer)
    body = b"{\n  " + image_manifest(config, [layer])[1:] + b"\n\n"
    resp = await client.put("/v2/app/manifests/odd", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert resp.status == 201
    assert resp.headers["Docker-Content-Digest"] == sha256(body)
    assert await (await client.get("/v2/app/manifests/odd")).read() == body


async def test_unknown_blob_in_manifest(client: TestClient) -> None:
    config = b"{}"
    await push_blob(client, "app", config)
    body = image_manifest(config, [b"never pushed"])
    resp = await client.put("/v2/app/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert resp.status == 400
    assert await error_code(resp) == "MANIFEST_BLOB_UNKNOWN"
    assert (await client.get("/v2/app/manifests/v1")).status == 404


async def test_blob_of_another_repository_does_not_count(client: TestClient) -> None:
    config, layer = b"{}", b"layer"
    await push_blob(client, "other", config)
    await push_blob(client, "other", layer)
    resp = await client.put("/v2/app/manifests/v1", data=image_manifest(config, [layer]),
                            headers={"Content-Type": OCI_MANIFEST})
    assert await error_code(resp) == "MANIFEST_BLOB_UNKNOWN"


async def test_index_needs_its_children(client: TestClient) -> None:
    child, child_body = await push_image(client, "app", child_ref := "child")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(OCI_MANIFEST, child_body, platform={"os": "linux", "architecture": "amd64"})]}
    body = json.dumps(index).encode()
    ok = await client.put("/v2/app/manifests/multi", data=body, headers={"Content-Type": OCI_INDEX})
    assert ok.status == 201, child_ref
    index["manifests"].append({"mediaType": OCI_MANIFEST, "digest": sha256(b"missing"), "size": 7})
    bad = await client.put("/v2/app/manifests/multi2", data=json.dumps(index).encode(),
                           headers={"Content-Type": OCI_INDEX})
    assert bad.status == 400 and await error_code(bad) == "MANIFEST_BLOB_UNKNOWN"
    got = await client.get("/v2/app/manifests/multi", headers={"Accept": OCI_INDEX})
    assert got.headers["Content-Type"] == OCI_INDEX and await got.read() == body
    assert child == json.loads(body)["manifests"][0]["digest"]


async def test_docker_schema2_and_manifest_list(client: TestClient) -> None:
    config, layer = b'{"architecture":"arm64"}', b"docker layer"
    await push_blob(client, "app", config)
    await push_blob(client, "app", layer)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                           "config": descriptor("application/vnd.docker.container.image.v1+json", config),
                           "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", layer)]}).encode()
    resp = await client.put(f"/v2/app/manifests/{sha256(manifest)}", data=manifest,
                            headers={"Content-Type": DOCKER_MANIFEST})
    assert resp.status == 201
    listing = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        descriptor(DOCKER_MANIFEST, manifest, platform={"os": "linux", "architecture": "arm64"})]}).encode()
    resp = await client.put("/v2/app/manifests/list", data=listing, headers={"Content-Type": DOCKER_LIST})
    assert resp.status == 201
    got = await client.get("/v2/app/manifests/list", headers={"Accept": f"{DOCKER_LIST}, {DOCKER_MANIFEST}"})
    assert got.headers["Content-Type"] == DOCKER_LIST and await got.read() == listing


async def test_artifact_with_any_config_type(client: TestClient) -> None:
    wasm = b"\0asm\1\0\0\0"
    await push_blob(client, "wasm/app", b"{}")
    await push_blob(client, "wasm/app", wasm)
    wasm_type = "application/vnd.wasm.content.layer.v1+wasm"
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": wasm_type,
                       "config": descriptor("application/vnd.oci.empty.v1+json", b"{}"),
                       "layers": [descriptor("application/vnd.wasm.content.layer.v1+wasm", wasm)]}).encode()
    resp = await client.put("/v2/wasm/app/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert resp.status == 201


async def test_oversized_manifest_is_413(client: TestClient) -> None:
    body = b'{"schemaVersion":2,"pad":"' + b"x" * (4 * 1024 * 1024) + b'"}'
    resp = await client.put("/v2/app/manifests/big", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert resp.status == 413
    assert await error_code(resp) == "MANIFEST_INVALID"


async def test_invalid_manifests(client: TestClient) -> None:
    cases = {
        b"not json": OCI_MANIFEST,
        b"[]": OCI_MANIFEST,
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode(): OCI_MANIFEST,
        json.dumps({"schemaVersion": 1, "name": "app", "tag": "v1", "fsLayers": []}).encode():
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        json.dumps({"schemaVersion": 2, "layers": []}).encode(): "text/plain",
        json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(): OCI_MANIFEST,
        json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"digest": "sha256:bad"}}).encode(): OCI_MANIFEST,
    }
    for body, content_type in cases.items():
        resp = await client.put("/v2/app/manifests/bad", data=body, headers={"Content-Type": content_type})
        assert resp.status == 400, body
        assert await error_code(resp) == "MANIFEST_INVALID", body
    schema1 = await client.put("/v2/app/manifests/bad", data=list(cases)[3],
                               headers={"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"})
    assert "schema1" in (await schema1.json())["errors"][0]["message"]


async def test_put_by_digest_checks_the_bytes(client: TestClient) -> None:
    _, body = await push_image(client, "app", "v1")
    resp = await client.put(f"/v2/app/manifests/{sha256(b'other')}", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert resp.status == 400 and await error_code(resp) == "DIGEST_INVALID"


async def test_put_by_digest_with_several_tags(client: TestClient) -> None:
    digest, body = await push_image(client, "app", "v1")
    resp = await client.put(f"/v2/app/manifests/{digest}?tag=a&tag=b&tag=latest", data=body,
                            headers={"Content-Type": OCI_MANIFEST})
    assert resp.status == 201
    for tag in ("a", "b", "latest"):
        got = await client.head(f"/v2/app/manifests/{tag}")
        assert got.headers["Docker-Content-Digest"] == digest


async def test_retag_moves_the_tag(client: TestClient) -> None:
    await push_image(client, "app", "latest", seed="one")
    second, _ = await push_image(client, "app", "latest", seed="two")
    got = await client.head("/v2/app/manifests/latest")
    assert got.headers["Docker-Content-Digest"] == second


async def test_accept_negotiation(client: TestClient) -> None:
    await push_image(client, "app", "v1")
    refused = await client.get("/v2/app/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert refused.status == 404 and await error_code(refused) == "MANIFEST_UNKNOWN"
    for accept in (f"{DOCKER_MANIFEST}, {OCI_MANIFEST};q=0.5", "*/*", "application/json"):
        assert (await client.get("/v2/app/manifests/v1", headers={"Accept": accept})).status == 200, accept
    one_header_per_type = [("Accept", DOCKER_MANIFEST), ("Accept", OCI_MANIFEST)]  # as skopeo sends them
    assert (await client.get("/v2/app/manifests/v1", headers=one_header_per_type)).status == 200


async def test_delete_by_digest_removes_its_tags(client: TestClient) -> None:
    digest, _ = await push_image(client, "app", "v1")
    resp = await client.delete(f"/v2/app/manifests/{digest}")
    assert resp.status == 202
    for ref in ("v1", digest):
        gone = await client.get(f"/v2/app/manifests/{ref}")
        assert gone.status == 404 and await error_code(gone) == "MANIFEST_UNKNOWN"
    assert (await client.delete(f"/v2/app/manifests/{digest}")).status == 404


async def test_delete_by_tag_keeps_the_manifest(client: TestClient) -> None:
    digest, _ = await push_image(client, "app", "v1")
    assert (await client.delete("/v2/app/manifests/v1")).status == 202
    assert (await client.get("/v2/app/manifests/v1")).status == 404
    assert (await client.get(f"/v2/app/manifests/{digest}")).status == 200


async def test_manifest_digest_is_not_a_tag_and_blob_is_not_a_manifest(client: TestClient) -> None:
    digest, _ = await push_image(client, "app", "v1")
    layer = await push_blob(client, "app", b"just a layer")
    assert (await client.get(f"/v2/app/manifests/{layer}")).status == 404
    as_blob = await client.get(f"/v2/app/blobs/{digest}")
    assert as_blob.status == 200


IMPOSSIBLE = [".INVALID_MANIFEST_NAME", "-bad", "a" * 129, "sha256:short", f"sha256:{'A' * 64}",
              f"md5:{'a' * 32}", "sha256:"]


async def test_reads_of_impossible_references_are_unknown(client: TestClient) -> None:
    """Nothing can exist there, so reads answer as for any absent manifest, as the conformance
    suite, Distribution and zot do; only a PUT learns that the reference is malformed."""
    await push_image(client, "app", "v1")
    for name in ("app", "never/pushed"):
        for ref in IMPOSSIBLE:
            for method in ("GET", "DELETE"):
                resp = await client.request(method, f"/v2/{name}/manifests/{ref}")
                assert resp.status == 404, (method, name, ref)
                assert await error_code(resp) == "MANIFEST_UNKNOWN", (method, name, ref)
            assert (await client.head(f"/v2/{name}/manifests/{ref}")).status == 404, (name, ref)
    assert (await client.get("/v2/app/manifests/v1")).status == 200


async def test_puts_to_impossible_references_are_refused(client: TestClient) -> None:
    _, body = await push_image(client, "app", "v1")
    for ref, code in ((".INVALID_MANIFEST_NAME", "TAG_INVALID"), ("a" * 129, "TAG_INVALID"),
                      ("sha256:short", "DIGEST_INVALID"), (f"sha256:{'A' * 64}", "DIGEST_INVALID")):
        resp = await client.put(f"/v2/app/manifests/{ref}", data=body, headers={"Content-Type": OCI_MANIFEST})
        assert resp.status == 400, ref
        assert await error_code(resp) == code, ref
    tagged = await client.put(f"/v2/app/manifests/{sha256(body)}?tag=-bad", data=body,
                              headers={"Content-Type": OCI_MANIFEST})
    assert tagged.status == 400 and await error_code(tagged) == "TAG_INVALID"
