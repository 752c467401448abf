from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from registry.handlers import send

from .oci import error_code, push_blob, sha256

DATA = bytes(range(256)) * 40  # 10 KiB, every byte value


async def test_push_then_get_and_head(client: TestClient) -> None:
    digest = await push_blob(client, "team/app", DATA)
    resp = await client.get(f"/v2/team/app/blobs/{digest}")
    assert resp.status == 200
    assert await resp.read() == DATA
    assert resp.headers["Docker-Content-Digest"] == digest
    assert resp.headers["ETag"] == f'"{digest}"'
    assert resp.headers["Content-Type"] == "application/octet-stream"
    head = await client.head(f"/v2/team/app/blobs/{digest}")
    assert head.status == 200
    assert head.headers["Content-Length"] == str(len(DATA))
    assert head.headers["Docker-Content-Digest"] == digest
    assert await head.read() == b""


async def test_if_none_match_answers_304(client: TestClient) -> None:
    digest = await push_blob(client, "app", DATA)
    resp = await client.get(f"/v2/app/blobs/{digest}", headers={"If-None-Match": f'"{digest}"'})
    assert resp.status == 304


async def test_single_range(client: TestClient) -> None:
    digest = await push_blob(client, "app", DATA)
    resp = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 100-199/{len(DATA)}"
    assert await resp.read() == DATA[100:200]
    tail = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=-10"})
    assert await tail.read() == DATA[-10:]
    open_end = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=10000-"})
    assert await open_end.read() == DATA[10000:]


async def test_multi_range_is_multipart_byteranges(client: TestClient) -> None:
    digest = await push_blob(client, "app", DATA)
    resp = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=0-9,5000-5099,-3"})
    assert resp.status == 206
    assert resp.content_type == "multipart/byteranges"
    boundary = resp.headers["Content-Type"].split("boundary=")[1]
    body = await resp.read()
    assert int(resp.headers["Content-Length"]) == len(body)
    parts = body.split(f"--{boundary}".encode())[1:-1]
    expected = [((0, 9), DATA[0:10]), ((5000, 5099), DATA[5000:5100]), ((len(DATA) - 3, len(DATA) - 1), DATA[-3:])]
    assert len(parts) == 3
    for part, ((start, end), data) in zip(parts, expected, strict=True):
        head, _, payload = part.partition(b"\r\n\r\n")
        assert f"Content-Range: bytes {start}-{end}/{len(DATA)}".encode() in head
        assert payload[:-2] == data  # each payload is followed by CRLF before the boundary
    assert body.endswith(f"--{boundary}--\r\n".encode())


async def test_unsatisfiable_range_is_416(client: TestClient) -> None:
    digest = await push_blob(client, "app", DATA)
    resp = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": f"bytes={len(DATA)}-"})
    assert resp.status == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(DATA)}"


async def test_unknown_and_invalid_digests(client: TestClient) -> None:
    await push_blob(client, "app", DATA)
    unknown = await client.get(f"/v2/app/blobs/{sha256(b'nothing')}")
    assert unknown.status == 404 and await error_code(unknown) == "BLOB_UNKNOWN"
    head = await client.head(f"/v2/app/blobs/{sha256(b'nothing')}")
    assert head.status == 404
    for bad in ("sha256:xyz", "sha256:" + "A" * 64, "md5:abcd", "nocolon"):
        resp = await client.get(f"/v2/app/blobs/{bad}")
        assert resp.status in (400, 404), bad
        assert await error_code(resp) in ("DIGEST_INVALID", "UNSUPPORTED", "NOT_FOUND"), bad


async def test_blob_of_another_repository_is_unknown(client: TestClient) -> None:
    digest = await push_blob(client, "one", DATA)
    resp = await client.get(f"/v2/two/blobs/{digest}")
    assert resp.status == 404


async def test_delete_unlinks(client: TestClient) -> None:
    digest = await push_blob(client, "app", DATA)
    resp = await client.delete(f"/v2/app/blobs/{digest}")
    assert resp.status == 202
    assert (await client.get(f"/v2/app/blobs/{digest}")).status == 404
    again = await client.delete(f"/v2/app/blobs/{digest}")
    assert again.status == 404 and await error_code(again) == "BLOB_UNKNOWN"


async def test_blob_is_stored_once(client: TestClient, data_dir: Path) -> None:
    digest = await push_blob(client, "one", DATA)
    await push_blob(client, "two", DATA)
    files = [f for _, _, names in os.walk(data_dir / "blobs") for f in names]
    assert files == ["data"]
    assert (await client.get(f"/v2/two/blobs/{digest}")).status == 200


async def test_sha512_blob(client: TestClient) -> None:
    digest = "sha512:" + hashlib.sha512(DATA).hexdigest()
    resp = await client.post(f"/v2/app/blobs/uploads/?digest={digest}", data=DATA)
    assert resp.status == 201
    got = await client.get(f"/v2/app/blobs/{digest}")
    assert await got.read() == DATA


async def test_overlapping_ranges_are_merged_not_repeated(client: TestClient) -> None:
    digest = await push_blob(client, "app", DATA)
    resp = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=" + ",".join(["0-"] * 256)})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 0-{len(DATA) - 1}/{len(DATA)}"
    assert int(resp.headers["Content-Length"]) == len(DATA)
    assert await resp.read() == DATA


async def test_overlapping_and_adjacent_ranges_coalesce_into_parts(client: TestClient) -> None:
    digest = await push_blob(client, "app", DATA)
    resp = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=0-99,50-149,150-199,500-599"})
    assert resp.status == 206
    boundary = resp.headers["Content-Type"].split("boundary=")[1]
    parts = (await resp.read()).split(f"--{boundary}".encode())[1:-1]
    assert len(parts) == 2
    for part, (start, end) in zip(parts, [(0, 199), (500, 599)], strict=True):
        head, _, payload = part.partition(b"\r\n\r\n")
        assert f"Content-Range: bytes {start}-{end}/{len(DATA)}".encode() in head
        assert payload[:-2] == DATA[start:end + 1]


async def test_too_many_ranges_get_the_whole_blob(client: TestClient) -> None:
    digest = await push_blob(client, "app", DATA)
    many = ",".join(f"{i * 2}-{i * 2}" for i in range(300))
    resp = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": f"bytes={many}"})
    assert resp.status == 200
    assert "Content-Range" not in resp.headers
    assert await resp.read() == DATA


def _truncate_on_disk(data_dir: Path, digest: str, keep: int) -> None:
    algorithm, hexdigest = digest.split(":")
    path = data_dir / "blobs" / algorithm / hexdigest[:2] / hexdigest / "data"
    with path.open("r+b") as handle:
        handle.truncate(keep)


@pytest.mark.parametrize("checked_before_sending", [True, False])
@pytest.mark.parametrize("ranges", [None, "bytes=100-9999", "bytes=0-9,5000-9999"])
async def test_blob_shorter_on_disk_ends_in_a_cut_body(
    client: TestClient, data_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
    checked_before_sending: bool, ranges: str | None,
) -> None:
    """The response must end (cut short) instead of leaving the client waiting for bytes that
    do not exist; a file that shrinks after its size was checked is caught by sendfile's count."""
    if not checked_before_sending:
        monkeypatch.setattr(send, "_file_size", lambda handle: len(DATA))
    digest = await push_blob(client, "app", DATA)
    _truncate_on_disk(data_dir, digest, 6000)
    resp = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": ranges} if ranges else {})
    assert resp.status in (200, 206)
    with pytest.raises(aiohttp.ClientPayloadError):
        await asyncio.wait_for(resp.read(), 20)
    corrupt = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(corrupt) == 1 and digest in corrupt[0] and "ocireg verify" in corrupt[0]
