"""Reading manifests already in the store: what a push today would refuse still holds on to
everything it names, so deletes and gc treat it as what it is."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from registry.errors import RegistryError
from registry.mediatypes import OCI_INDEX, OCI_MANIFEST, parse_manifest, read_stored_manifest
from registry.reference import Digest
from registry.storage import paths
from registry.storage.driver.filesystem import FilesystemDriver
from registry.storage.gc import GcOptions, collect_garbage
from registry.storage.local import LocalRegistry


def _desc(seed: str, **extra: Any) -> dict[str, Any]:
    return {"mediaType": "application/octet-stream", "digest": "sha256:" + hashlib.sha256(seed.encode()).hexdigest(),
            "size": len(seed), **extra}


def _doc(**changes: Any) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": _desc("config"),
            "layers": [_desc("layer"), _desc("foreign", urls=["https://example.com/x"])],
            "subject": _desc("image"), **changes}


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


LAX = {
    "float schemaVersion": json.dumps(_doc(schemaVersion=2.0)).encode(),
    "NaN": json.dumps(_doc(x=float("nan"))).encode(),
    "long integer": json.dumps(_doc(x=10**4000)).encode(),
    "UTF-8 BOM": b"\xef\xbb\xbf" + json.dumps(_doc()).encode(),
    "UTF-16": json.dumps(_doc()).encode("utf-16"),
    "size missing": json.dumps(_doc(config={"digest": _desc("config")["digest"]})).encode(),
    "index fields too": json.dumps(_doc(manifests=[_desc("child")])).encode(),
    "deeper than a push may nest": json.dumps(_doc(x=_nested(100))).encode(),
}


@pytest.mark.parametrize("body", LAX.values(), ids=LAX.keys())
def test_what_a_push_refuses_still_names_its_content(body: bytes) -> None:
    with pytest.raises(RegistryError):
        parse_manifest(body, OCI_MANIFEST)
    parsed = read_stored_manifest(body)
    assert parsed.blobs == (Digest.of(b"config"), Digest.of(b"layer"))
    assert parsed.subject == Digest.of(b"image")
    assert parsed.manifests == ((Digest.of(b"child"),) if body == LAX["index fields too"] else ())


def test_stored_index_and_media_type() -> None:
    parsed = read_stored_manifest(json.dumps({"manifests": [_desc("a"), _desc("a"), {"digest": "bad"}]}).encode())
    assert parsed.media_type == OCI_INDEX
    assert parsed.manifests == (Digest.of(b"a"),)


@pytest.mark.parametrize("body", [b"", b"[]", b"nope", b"[" * 600 + b"]" * 600, b"\xff\xfe\xff"])
def test_only_non_objects_are_unreadable(body: bytes) -> None:
    with pytest.raises(RegistryError):
        read_stored_manifest(body)


async def test_delete_of_a_lax_cached_manifest_drops_its_referrer_entry(tmp_path: Path) -> None:
    """The mirror caches upstream bytes as they are; deleting one must still unlist it."""
    driver = FilesystemDriver(str(tmp_path))
    repo = LocalRegistry(driver).repository("cache/app")
    body = LAX["float schemaVersion"]
    digest, subject = Digest.of(body), Digest.of(b"image")
    descriptor = await repo.manifests.store(body, OCI_MANIFEST, digest)
    await repo.referrers.add(subject, descriptor)
    assert [d.digest for d in await repo.referrers.list(subject)] == [digest]
    await repo.manifests.delete(digest)
    assert not await driver.exists(paths.referrer("cache/app", subject, digest))


async def test_gc_keeps_the_blobs_of_a_lax_cached_manifest(tmp_path: Path) -> None:
    driver = FilesystemDriver(str(tmp_path))
    repo = LocalRegistry(driver).repository("cache/app")
    for seed in ("config", "layer"):
        data = seed.encode()
        await driver.write(paths.blob_data(Digest.of(data)), data)
        await repo.blobs.link(Digest.of(data), len(data))
    body = LAX["float schemaVersion"]
    await repo.manifests.store(body, OCI_MANIFEST, Digest.of(body))
    await repo.tags.set("v1", Digest.of(body))
    collect_garbage(str(tmp_path), GcOptions(grace=0.0), lambda name: False)
    for seed in ("config", "layer"):
        assert await driver.exists(paths.blob_data(Digest.of(seed.encode()))), seed
