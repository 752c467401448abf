"""The inventory gc and verify start from, read with the driver's walk on every driver."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from registry.reference import Digest
from registry.storage import paths
from registry.storage.driver.base import Driver, PathNotFound
from registry.storage.driver.filesystem import FilesystemDriver
from registry.storage.hashing import INLINE_READ, digest_of
from registry.storage.inventory import find_leftovers, take_inventory

A, B, C = (Digest.of(seed) for seed in (b"a", b"b", b"c"))


async def test_inventory_reads_links_tags_and_blobs_of_nested_names(driver: Driver) -> None:
    await driver.write(paths.blob_data(A), b"a")
    await driver.write(paths.blob_data(B), b"bb")
    await driver.write(f"{paths.BLOBS}/sha256/ab/not-a-digest/data", b"stray")
    await driver.write(f"{paths.BLOBS}/sha256/{A.hex[:2]}/{A.hex}/.tmp-123", b"half")
    await driver.write(paths.layer_link("team", A), b"{}")
    await driver.write(paths.layer_link("team/app", B), b"{}")
    await driver.write(paths.manifest_link("team/app", C), b"{}")
    await driver.write(paths.tag("team/app", "v1"), str(C).encode())
    await driver.write(paths.tag("team/app", "broken"), b"not a digest")
    await driver.write(f"{paths.tags('team/app')}/.tmp-456", b"sha256:")
    await driver.write(f"{paths.REPOSITORIES}/team/app/README", b"no reserved folder: no repository")
    await driver.write(f"{paths.REPOSITORIES}/_odd/_layers/sha256/{A.hex}", b"{}")

    inventory = await take_inventory(driver)

    assert inventory.blobs.keys() == {A, B}
    assert inventory.blobs[B][0] == 2
    assert [repo.name for repo in inventory.repositories] == ["team", "team/app"]
    team, app = inventory.repositories
    assert set(team.layers) == {A} and not team.manifests and not team.tags
    assert set(app.layers) == {B} and set(app.manifests) == {C}
    assert app.tags == {"v1": C}
    assert app.layers[B] == (await driver.stat(paths.layer_link("team/app", B))).mtime
    assert sorted(info.path for info in inventory.temporary) == [
        f"{paths.BLOBS}/sha256/{A.hex[:2]}/{A.hex}/.tmp-123", f"{paths.tags('team/app')}/.tmp-456"]


async def test_leftovers_are_temporary_files_and_idle_sessions(driver: Driver) -> None:
    await driver.write(paths.upload_state("s1"), b"{}")
    await driver.write(f"{paths.UPLOADS}/stray", b"x" * 5)
    await driver.write(f"{paths.tags('app')}/.tmp-1", b"y" * 3)
    inventory = await take_inventory(driver)
    now = time.time()
    assert [leftover.path for leftover in await find_leftovers(driver, inventory, 3600, now)] == [
        f"{paths.UPLOADS}/stray"]  # misplaced at once; the others only once old
    later = await find_leftovers(driver, inventory, 3600, now + 7200)
    assert [(leftover.path, leftover.size) for leftover in later] == [
        (f"{paths.tags('app')}/.tmp-1", 3), (f"{paths.UPLOADS}/s1", 2), (f"{paths.UPLOADS}/stray", 5)]
    assert later[1].why.startswith("an upload session idle for 2h")
    assert later[2].why == "a file where upload sessions are kept"


@pytest.mark.parametrize("size", [0, 100, INLINE_READ, INLINE_READ + 1, 5 * 1024 * 1024 + 3])
async def test_digest_of_reads_through_the_driver(driver: Driver, size: int) -> None:
    data = os.urandom(size)
    await driver.write("uploads/x/data", data)
    assert await digest_of(driver, "uploads/x/data", "sha256") == hashlib.sha256(data).hexdigest()
    assert await digest_of(driver, "uploads/x/data", "sha512") == hashlib.sha512(data).hexdigest()
    with pytest.raises(PathNotFound):
        await digest_of(driver, "uploads/y/data", "sha256")


async def test_a_filesystem_driver_without_fsync_keeps_the_same_files(tmp_path: Path) -> None:
    driver = FilesystemDriver(str(tmp_path), durable=False)
    await driver.write("up/1/state", b"{}")
    writer = await driver.append("up/1/data", create=True)
    await writer.write(b"abc")
    await writer.close()
    await driver.move("up/1/data", "blobs/x/data")
    assert await driver.read("blobs/x/data") == b"abc"
    assert await driver.read("up/1/state") == b"{}"
