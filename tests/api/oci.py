"""Small pushers and builders for API tests: real requests, no shortcuts into storage."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp.test_utils import TestClient

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


async def push_blob(client: TestClient, name: str, data: bytes) -> str:
    digest = sha256(data)
    resp = await client.post(f"/v2/{name}/blobs/uploads/?digest={digest}", data=data,
                             headers={"Content-Type": "application/octet-stream"})
    assert resp.status == 201, await resp.text()
    return digest


def image_manifest(config: bytes, layers: list[bytes], **extra: Any) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": descriptor(OCI_CONFIG, config),
           "layers": [descriptor(OCI_LAYER, layer) for layer in layers], **extra}
    return json.dumps(doc).encode()


async def push_image(client: TestClient, name: str, ref: str, seed: str = "x", **extra: Any) -> tuple[str, bytes]:
    """Push a config, one layer and the manifest; returns the manifest digest and bytes."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = f"layer-{seed}".encode() * 100
    await push_blob(client, name, config)
    await push_blob(client, name, layer)
    body = image_manifest(config, [layer], **extra)
    resp = await client.put(f"/v2/{name}/manifests/{ref}", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert resp.status == 201, await resp.text()
    return sha256(body), body


async def error_code(resp: Any) -> str:
    body = await resp.json()
    return str(body["errors"][0]["code"])
