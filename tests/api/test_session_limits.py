"""`uploads.max_sessions` bounds the sessions open at once (429 past it, restarts included), and
sessions idle longer than `uploads.expiry` are removed with their bytes while the app runs."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from registry.app import create_app
from registry.config import Config, MirrorConfig, StorageConfig, UploadsConfig
from tests.conftest import CLOSED_UPSTREAM

from .oci import error_code, push_blob, sha256

BOUND = 20.0


def _app(data_dir: Path, **uploads: float) -> web.Application:
    return create_app(Config(storage=StorageConfig(root=str(data_dir)), uploads=UploadsConfig(**uploads),  # type: ignore[arg-type]
                             mirror=MirrorConfig(upstreams=(CLOSED_UPSTREAM,))))


@pytest.fixture
def app(data_dir: Path) -> web.Application:
    return _app(data_dir, max_sessions=3)


async def _start(client: TestClient) -> str:
    resp = await client.post("/v2/app/blobs/uploads/")
    assert resp.status == 202, await resp.text()
    return resp.headers["Location"]


async def test_sessions_past_the_limit_are_refused(client: TestClient) -> None:
    sessions = [await _start(client) for _ in range(3)]
    refused = await client.post("/v2/app/blobs/uploads/")
    assert refused.status == 429 and await error_code(refused) == "TOOMANYREQUESTS"
    assert "at most 3" in (await refused.json())["errors"][0]["message"]
    assert (await client.delete(sessions[0])).status == 204
    sessions[0] = await _start(client)
    data = os.urandom(1000)
    assert (await client.put(f"{sessions[1]}?digest={sha256(data)}", data=data)).status == 201
    await _start(client)


async def test_the_limit_counts_sessions_left_from_before_a_restart(aiohttp_client, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    first = await aiohttp_client(_app(data_dir, max_sessions=3))
    for _ in range(3):
        await _start(first)
    await first.close()
    second = await aiohttp_client(_app(data_dir, max_sessions=3))
    refused = await second.post("/v2/app/blobs/uploads/")
    assert refused.status == 429


async def test_idle_sessions_expire_with_their_bytes(aiohttp_client, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(_app(data_dir, expiry=0.5))
    location = await _start(client)
    assert (await client.patch(location, data=os.urandom(100_000))).status == 202
    for _ in range(int(BOUND / 0.05)):
        if not os.listdir(data_dir / "uploads"):
            break
        await asyncio.sleep(0.05)
    assert os.listdir(data_dir / "uploads") == []
    gone = await client.get(location)
    assert gone.status == 404 and await error_code(gone) == "BLOB_UPLOAD_UNKNOWN"
    await push_blob(client, "app", os.urandom(1000))
