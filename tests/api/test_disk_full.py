"""A full disk: every request that fails on it answers 507 STORAGE_FULL, the bytes of the failed
push are freed at once, and the same disk takes a push that fits right after.

The data folder is a real 8 MiB tmpfs (mounting it needs root)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.helpers.disks import small_tmpfs

from .oci import OCI_MANIFEST, error_code, image_manifest, push_blob, sha256

MiB = 1024 * 1024


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "disk", 8 * 1024 * 1024) as mount:
        yield mount


@pytest.fixture
def data_dir(disk: Path) -> Path:
    return disk / "data"


def _free(disk: Path) -> int:
    return shutil.disk_usage(disk).free


def _session_bytes(data_dir: Path) -> int:
    return sum(f.stat().st_size for f in (data_dir / "uploads").glob("*/*"))


async def _assert_full(resp: ClientResponse) -> None:
    assert resp.status == 507
    body = await resp.json()
    assert body["errors"][0]["code"] == "STORAGE_FULL"
    assert "storage is full" in body["errors"][0]["message"]


async def test_monolithic_push_too_big_frees_its_bytes(client: TestClient, disk: Path, data_dir: Path) -> None:
    big = os.urandom(10 * MiB)
    resp = await client.post(f"/v2/app/blobs/uploads/?digest={sha256(big)}", data=big)
    await _assert_full(resp)
    assert _session_bytes(data_dir) == 0 and os.listdir(data_dir / "uploads") == []
    assert _free(disk) > 7 * MiB
    await push_blob(client, "app", os.urandom(3 * MiB))


async def test_failed_chunk_goes_and_the_session_stays(client: TestClient, disk: Path, data_dir: Path) -> None:
    first, second = os.urandom(3 * MiB), os.urandom(6 * MiB)
    location = (await client.post("/v2/app/blobs/uploads/")).headers["Location"]
    ok = await client.patch(location, data=first, headers={"Content-Range": f"0-{len(first) - 1}"})
    assert ok.status == 202
    location = ok.headers["Location"]
    await _assert_full(await client.patch(location, data=second))  # streamed: no Content-Range
    assert _session_bytes(data_dir) < len(first) + 4096
    assert (await client.get(location)).headers["Range"] == f"0-{len(first) - 1}"
    rest = os.urandom(MiB)
    done = await client.put(f"{location}?digest={sha256(first + rest)}", data=rest)
    assert done.status == 201, await done.text()
    await push_blob(client, "app", os.urandom(2 * MiB))


async def test_full_disk_refuses_sessions_and_manifests_and_leaves_nothing(
        client: TestClient, disk: Path, data_dir: Path) -> None:
    config, layer = b"{}", os.urandom(1000)
    await push_blob(client, "app", config)
    await push_blob(client, "app", layer)
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(os.urandom(64 * 1024))
        except OSError:
            pass
    await _assert_full(await client.post("/v2/app/blobs/uploads/"))
    assert os.listdir(data_dir / "uploads") == []
    manifest = image_manifest(config, [layer])
    resp = await client.put("/v2/app/manifests/latest", data=manifest, headers={"Content-Type": OCI_MANIFEST})
    await _assert_full(resp)
    filler.unlink()
    again = await client.put("/v2/app/manifests/latest", data=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert again.status == 201, await error_code(again)
