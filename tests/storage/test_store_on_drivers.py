"""The store on every driver of the suite: push, gc, verify and upload expiry work through the
driver alone, so a driver without local files (the memory driver) holds a whole store."""

from __future__ import annotations

import io
import json
import os
import time

import pytest

from registry.errors import RegistryError
from registry.reference import Digest
from registry.storage import paths
from registry.storage.driver.base import Driver
from registry.storage.driver.memory import MemoryDriver
from registry.storage.gc import GcOptions, sweep
from registry.storage.local import LocalRegistry, LocalRepository
from registry.storage.uploads import expire_sessions
from registry.tools.progress import Progress
from registry.tools.verify import QUARANTINE, verify_store

HOUR = 3600.0
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _age(driver: Driver, path: str, seconds: float) -> None:
    """Pretend `path` (a file; a folder too on drivers that have folders) was last changed
    `seconds` ago."""
    when = time.time() - seconds
    if isinstance(driver, MemoryDriver):
        driver.set_mtime(path, when)
        return
    local = driver.local_path(path)
    assert local is not None
    os.utime(local, (when, when))


async def _age_tree(driver: Driver, folder: str, seconds: float) -> None:
    for info in [info async for info in driver.walk(folder)]:
        _age(driver, info.path, seconds)
    if not isinstance(driver, MemoryDriver):
        _age(driver, folder, seconds)


async def _push_blob(repo: LocalRepository, data: bytes, chunk: int = 3) -> Digest:
    upload = await repo.uploads.start()
    for start in range(0, len(data), chunk):
        await upload.write(data[start:start + chunk])
    await upload.close()
    digest = Digest.of(data)
    await upload.commit(digest)
    return digest


async def _push_image(repo: LocalRepository, seed: str, tag: str) -> tuple[Digest, list[Digest]]:
    config, layer = f"config {seed}".encode(), f"layer {seed}".encode() * 100
    blobs = [await _push_blob(repo, config), await _push_blob(repo, layer)]
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": str(blobs[0]),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": str(blobs[1]),
                    "size": len(layer)}],
    }).encode()
    digest = Digest.of(body)
    await repo.manifests.put(body, OCI_MANIFEST, digest)
    await repo.tags.set(tag, digest)
    return digest, blobs


async def _read_blob(repo: LocalRepository, digest: Digest, offset: int = 0, length: int | None = None) -> bytes:
    blob = await repo.blobs.open(digest)
    return b"".join([chunk async for chunk in blob.chunks(offset, length)])


async def test_a_pushed_blob_is_served_through_the_driver(driver: Driver) -> None:
    repo = LocalRegistry(driver).repository("team/app")
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = await _push_blob(repo, data, chunk=1024 * 1024)
    assert await _read_blob(repo, digest) == data
    assert await _read_blob(repo, digest, 1000, 5000) == data[1000:6000]
    blob = await repo.blobs.open(digest)
    assert blob.size == len(data)
    assert (blob.path is None) == (driver.local_path("") is None)


async def test_commit_after_a_restart_re_hashes_the_stored_bytes(driver: Driver) -> None:
    """A new registry on the same driver has no running hash: the digest comes from the bytes."""
    data = b"pushed before a restart " * 1000
    upload = await LocalRegistry(driver).repository("app").uploads.start()
    await upload.write(data)
    await upload.close()
    repo = LocalRegistry(driver).repository("app")
    resumed = await repo.uploads.resume(upload.id)
    assert resumed.offset == len(data)
    with pytest.raises(RegistryError) as refused:
        await resumed.commit(Digest.of(b"something else"))
    assert refused.value.code == "DIGEST_INVALID"
    assert refused.value.detail["actual"] == str(Digest.of(data))
    assert not await driver.exists(paths.upload_dir(upload.id))


async def test_commit_after_a_truncate_re_hashes_and_publishes(driver: Driver) -> None:
    repo = LocalRegistry(driver).repository("app")
    upload = await repo.uploads.start()
    await upload.write(b"keep this" + b"drop that")
    await upload.truncate(len(b"keep this"))
    await upload.close()
    digest = Digest.of(b"keep this")
    descriptor = await upload.commit(digest)
    assert descriptor.size == len(b"keep this")
    assert await driver.read(paths.blob_data(digest)) == b"keep this"
    assert await _read_blob(repo, digest) == b"keep this"


async def test_gc_sweeps_old_unreferenced_blobs_and_keeps_the_rest(driver: Driver) -> None:
    repo = LocalRegistry(driver).repository("app")
    manifest, kept = await _push_image(repo, "kept", "v1")
    old_orphan = await _push_blob(repo, b"nobody refers to this")
    young_orphan = await _push_blob(repo, b"pushed a moment ago")
    for digest in (*kept, old_orphan):
        _age(driver, paths.blob_data(digest), 2 * HOUR)
        _age(driver, paths.layer_link("app", digest), 2 * HOUR)

    dry = await sweep(driver, GcOptions(dry_run=True, grace=HOUR), lambda name: False)
    assert (dry.blobs_removed, dry.bytes_freed) == (1, len(b"nobody refers to this"))
    assert await driver.exists(paths.blob_data(old_orphan))

    report = await sweep(driver, GcOptions(grace=HOUR), lambda name: False)
    assert report.blobs_removed == 1
    assert not await driver.exists(paths.blob_data(old_orphan))
    assert not await driver.exists(paths.layer_link("app", old_orphan))
    assert await driver.list(paths.blob_data(old_orphan).rsplit("/", 2)[0]) == []  # no empty folder left
    for digest in (*kept, young_orphan, manifest):
        assert await driver.exists(paths.blob_data(digest)), digest
    assert await _read_blob(repo, kept[1]) == b"layer kept" * 100


async def test_gc_untagged_drops_the_manifest_and_then_its_blobs(driver: Driver) -> None:
    repo = LocalRegistry(driver).repository("app")
    manifest, blobs = await _push_image(repo, "untagged", "v1")
    await repo.tags.delete("v1")
    for digest in (*blobs, manifest):
        _age(driver, paths.blob_data(digest), 2 * HOUR)
    for digest in blobs:
        _age(driver, paths.layer_link("app", digest), 2 * HOUR)
    _age(driver, paths.manifest_link("app", manifest), 2 * HOUR)
    report = await sweep(driver, GcOptions(untagged=True, grace=HOUR), lambda name: False)
    assert report.manifests_removed == [f"app@{manifest}"]
    assert report.blobs_removed == 3
    assert [info async for info in driver.walk(paths.BLOBS)] == []


async def test_verify_finds_a_corrupted_blob_and_repair_quarantines_it(driver: Driver) -> None:
    repo = LocalRegistry(driver).repository("app")
    manifest, (config, layer) = await _push_image(repo, "verified", "v1")
    stream = io.StringIO()
    assert await verify_store(driver, False, lambda name: False, Progress("verify", stream=stream), HOUR) == 0

    await driver.write(paths.blob_data(layer), b"flipped bits")
    found = Progress("verify", stream=stream)
    assert await verify_store(driver, False, lambda name: False, found, HOUR) == 1
    assert f"blob {layer}: content does not match its digest" in found.failures
    assert await driver.exists(paths.blob_data(layer))

    assert await verify_store(driver, True, lambda name: False, Progress("verify", stream=stream), HOUR) == 1
    assert await driver.read(f"{QUARANTINE}/{layer.algorithm}-{layer.hex}") == b"flipped bits"
    assert not await driver.exists(paths.blob_data(layer))
    assert not await driver.exists(paths.layer_link("app", layer))
    assert await driver.exists(paths.layer_link("app", config))
    after = Progress("verify", stream=stream)
    assert await verify_store(driver, False, lambda name: False, after, HOUR) == 1
    assert after.failures == [f"app: manifest {manifest} needs blob {layer}, which is missing"]


async def test_upload_sessions_idle_past_the_expiry_go(driver: Driver) -> None:
    registry = LocalRegistry(driver)
    repo = registry.repository("app")
    idle, fresh = await repo.uploads.start(), await repo.uploads.start()
    for upload in (idle, fresh):
        await upload.write(b"some bytes")
        await upload.close()
    await _age_tree(driver, paths.upload_dir(idle.id), 2 * HOUR)

    stream = io.StringIO()
    reported = Progress("verify", stream=stream)
    assert await verify_store(driver, False, lambda name: False, reported, HOUR) == 1
    assert any(failure.startswith(f"{paths.upload_dir(idle.id)}: an upload session idle") for failure in
               reported.failures), reported.failures

    assert await expire_sessions(driver, registry.hashes, HOUR) == 1
    assert await driver.list(paths.UPLOADS) == [fresh.id]
    resumed = await repo.uploads.resume(fresh.id)
    assert resumed.offset == len(b"some bytes")


async def test_gc_expires_idle_sessions_too(driver: Driver) -> None:
    repo = LocalRegistry(driver).repository("app")
    idle, fresh = await repo.uploads.start(), await repo.uploads.start()
    for upload in (idle, fresh):
        await upload.write(b"x" * 100)
        await upload.close()
    await _age_tree(driver, paths.upload_dir(idle.id), 2 * HOUR)
    state = (await driver.stat(paths.upload_state(idle.id))).size
    report = await sweep(driver, GcOptions(grace=HOUR, upload_expiry=HOUR), lambda name: False)
    assert report.uploads_removed == 1
    assert report.bytes_freed == 100 + state
    assert await driver.list(paths.UPLOADS) == [fresh.id]
