"""A client that stops sending mid-body: past `server.body_timeout` its request fails and
whatever it held (an upload session's claim) is free again."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from registry.app import LOCAL, create_app
from registry.config import Config, MirrorConfig, ServerConfig, StorageConfig
from tests.conftest import CLOSED_UPSTREAM

from .oci import OCI_MANIFEST, error_code, sha256

DATA = os.urandom(3 * 1024 * 1024)
FIRST = 3 * 1024 * 1024 // 2  # more than one disk write: the session visibly grows
BOUND = 20.0  # what a test waits at most for an answer that must come


@pytest.fixture
def app(data_dir: Path) -> web.Application:
    return create_app(Config(server=ServerConfig(body_timeout=0.5), storage=StorageConfig(root=str(data_dir)),
                             mirror=MirrorConfig(upstreams=(CLOSED_UPSTREAM,))))


async def _stalling(first: bytes, resume: asyncio.Event) -> AsyncIterator[bytes]:
    yield first
    await resume.wait()
    yield b"late bytes"


async def _until_written(client: TestClient, location: str) -> None:
    """Until the stalling PATCH has written its first piece: then it holds the session."""
    for _ in range(int(BOUND / 0.01)):
        if (await client.get(location)).headers["Range"] != "0-0":
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the PATCH never wrote")


async def test_stalled_patch_fails_and_frees_its_session(client: TestClient) -> None:
    location = (await client.post("/v2/app/blobs/uploads/")).headers["Location"]
    resume = asyncio.Event()
    stalled = asyncio.create_task(client.patch(location, data=_stalling(DATA[:FIRST], resume)))
    try:
        await _until_written(client, location)
        busy = await client.put(f"{location}?digest={sha256(DATA)}", data=DATA)
        assert busy.status == 416 and "another request" in (await busy.json())["errors"][0]["message"]
        resp = await asyncio.wait_for(stalled, BOUND)
        assert resp.status == 408 and await error_code(resp) == "BLOB_UPLOAD_INVALID"
    finally:
        resume.set()
    offset = int((await client.get(location)).headers["Range"].split("-")[1]) + 1
    assert 0 < offset <= FIRST
    rest = await client.put(f"{location}?digest={sha256(DATA)}", data=DATA[offset:])
    assert rest.status == 201, await rest.text()
    assert await (await client.get(f"/v2/app/blobs/{sha256(DATA)}")).read() == DATA


async def test_stalled_manifest_body_fails(client: TestClient) -> None:
    resume = asyncio.Event()
    try:
        resp = await asyncio.wait_for(client.put(
            "/v2/app/manifests/latest", data=_stalling(b'{"schemaVersion": 2,', resume),
            headers={"Content-Type": OCI_MANIFEST}), BOUND)
    finally:
        resume.set()
    assert resp.status == 408 and await error_code(resp) == "MANIFEST_INVALID"


async def test_put_while_a_patch_waits_for_its_body_is_refused(aiohttp_client, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """The PATCH claims the session before its body arrives: a PUT meanwhile cannot publish the
    file and have the PATCH's bytes land in the published blob."""
    app = create_app(Config(storage=StorageConfig(root=str(data_dir)),
                            mirror=MirrorConfig(upstreams=(CLOSED_UPSTREAM,))))
    client = await aiohttp_client(app)
    location = (await client.post("/v2/app/blobs/uploads/")).headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    resume = asyncio.Event()
    patch = asyncio.create_task(client.patch(location, data=_stalling(b"first piece ", resume)))
    try:
        for _ in range(int(BOUND / 0.01)):
            if app[LOCAL].hashes.writing(upload_id):
                break
            await asyncio.sleep(0.01)
        assert app[LOCAL].hashes.writing(upload_id), "the PATCH never claimed the session"
        put = await client.put(f"{location}?digest={sha256(b'')}")
        assert put.status == 416 and await error_code(put) == "RANGE_INVALID"
    finally:
        resume.set()
    assert (await asyncio.wait_for(patch, BOUND)).status == 202
    blob = b"first piece late bytes"
    done = await client.put(f"{location}?digest={sha256(blob)}")
    assert done.status == 201, await done.text()
    assert await (await client.get(f"/v2/app/blobs/{sha256(blob)}")).read() == blob
