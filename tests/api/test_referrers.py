from __future__ import annotations

import json

from aiohttp.test_utils import TestClient

from .oci import OCI_INDEX, OCI_MANIFEST, descriptor, error_code, push_blob, push_image, sha256

SBOM = "application/spdx+json"
SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"


async def _push_referrer(client: TestClient, name: str, subject: str, size: int, artifact_type: str) -> str:
    payload = f"{artifact_type} of {subject}".encode()
    await push_blob(client, name, b"{}")
    await push_blob(client, name, payload)
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": descriptor("application/vnd.oci.empty.v1+json", b"{}"),
        "layers": [descriptor(artifact_type, payload)],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": size},
        "annotations": {"org.opencontainers.image.created": "2026-11-30T00:00:00Z"},
    }).encode()
    resp = await client.put(f"/v2/{name}/manifests/{sha256(body)}", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert resp.status == 201, await resp.text()
    assert resp.headers["OCI-Subject"] == subject
    return sha256(body)


async def test_referrers_are_listed_and_filtered(client: TestClient) -> None:
    subject, body = await push_image(client, "app", "v1")
    sbom = await _push_referrer(client, "app", subject, len(body), SBOM)
    sig = await _push_referrer(client, "app", subject, len(body), SIG)
    resp = await client.get(f"/v2/app/referrers/{subject}")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == OCI_INDEX
    index = await resp.json()
    assert index["mediaType"] == OCI_INDEX and index["schemaVersion"] == 2
    found = {m["digest"]: m for m in index["manifests"]}
    assert set(found) == {sbom, sig}
    assert found[sbom]["artifactType"] == SBOM
    assert found[sbom]["mediaType"] == OCI_MANIFEST
    assert found[sbom]["annotations"]["org.opencontainers.image.created"] == "2026-11-30T00:00:00Z"
    filtered = await client.get(f"/v2/app/referrers/{subject}", params={"artifactType": SBOM})
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in (await filtered.json())["manifests"]] == [sbom]


async def test_subject_may_be_missing(client: TestClient) -> None:
    absent = sha256(b"not pushed yet")
    referrer = await _push_referrer(client, "app", absent, 123, SBOM)
    index = await (await client.get(f"/v2/app/referrers/{absent}")).json()
    assert [m["digest"] for m in index["manifests"]] == [referrer]


async def test_deleted_referrer_disappears(client: TestClient) -> None:
    subject, body = await push_image(client, "app", "v1")
    sig = await _push_referrer(client, "app", subject, len(body), SIG)
    assert (await client.delete(f"/v2/app/manifests/{sig}")).status == 202
    index = await (await client.get(f"/v2/app/referrers/{subject}")).json()
    assert index["manifests"] == []


async def test_unknown_subject_gives_an_empty_index(client: TestClient) -> None:
    resp = await client.get(f"/v2/nowhere/referrers/{sha256(b'x')}")
    assert resp.status == 200
    assert (await resp.json())["manifests"] == []
    bad = await client.get("/v2/app/referrers/sha256:nope")
    assert bad.status == 400


async def test_image_config_type_is_the_artifact_type(client: TestClient) -> None:
    subject, body = await push_image(client, "app", "v1")
    await push_image(client, "app", "attached", seed="y",
                     subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": len(body)})
    index = await (await client.get(f"/v2/app/referrers/{subject}")).json()
    assert [m["artifactType"] for m in index["manifests"]] == ["application/vnd.oci.image.config.v1+json"]


async def test_invalid_subject_digest_is_400(client: TestClient) -> None:
    """As zot answers: a referrers request must not 404, and a malformed digest is the client's error."""
    await push_image(client, "app", "v1")
    for digest in ("sha256:short", f"sha256:{'A' * 64}", "latest"):
        resp = await client.get(f"/v2/app/referrers/{digest}")
        assert resp.status == 400, digest
        assert await error_code(resp) == "DIGEST_INVALID", digest
