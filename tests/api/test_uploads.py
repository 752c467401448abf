from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from registry.app import LOCAL
from registry.errors import RegistryError
from registry.keys import REGISTRY
from registry.reference import Digest

from .oci import error_code, push_blob, sha256

DATA = os.urandom(300_000)


async def _start(client: TestClient, name: str = "app", query: str = "") -> str:
    resp = await client.post(f"/v2/{name}/blobs/uploads/{query}")
    assert resp.status == 202, await resp.text()
    assert resp.headers["Range"] == "0-0"
    assert resp.headers["Docker-Upload-UUID"] in resp.headers["Location"]
    return resp.headers["Location"]


async def test_post_then_put(client: TestClient) -> None:
    location = await _start(client)
    resp = await client.put(f"{location}?digest={sha256(DATA)}", data=DATA)
    assert resp.status == 201
    assert resp.headers["Location"] == f"/v2/app/blobs/{sha256(DATA)}"
    assert resp.headers["Docker-Content-Digest"] == sha256(DATA)
    assert await (await client.get(resp.headers["Location"])).read() == DATA


async def test_chunked_upload_with_status_and_ranges(client: TestClient) -> None:
    location = await _start(client)
    offset = 0
    for chunk in (DATA[:100_000], DATA[100_000:250_000], DATA[250_000:]):
        end = offset + len(chunk) - 1
        resp = await client.patch(location, data=chunk, headers={
            "Content-Range": f"{offset}-{end}", "Content-Type": "application/octet-stream"})
        assert resp.status == 202, await resp.text()
        assert resp.headers["Range"] == f"0-{end}"
        location = resp.headers["Location"]
        offset = end + 1
    status = await client.get(location)
    assert status.status == 204
    assert status.headers["Range"] == f"0-{len(DATA) - 1}"
    done = await client.put(f"{location}?digest={sha256(DATA)}")
    assert done.status == 201
    assert await (await client.get(f"/v2/app/blobs/{sha256(DATA)}")).read() == DATA


async def test_streamed_patch_without_content_range(client: TestClient) -> None:
    location = await _start(client)
    resp = await client.patch(location, data=DATA)
    assert resp.status == 202
    done = await client.put(f"{location}?digest={sha256(DATA)}")
    assert done.status == 201


async def test_out_of_order_chunk_is_416(client: TestClient) -> None:
    location = await _start(client)
    await client.patch(location, data=DATA[:1000], headers={"Content-Range": "0-999"})
    resp = await client.patch(location, data=DATA[2000:3000], headers={"Content-Range": "2000-2999"})
    assert resp.status == 416
    assert await error_code(resp) == "RANGE_INVALID"
    assert resp.headers["Range"] == "0-999"
    again = await client.patch(location, data=DATA[1000:2000], headers={"Content-Range": "1000-1999"})
    assert again.status == 202


async def test_wrong_digest_stores_nothing(client: TestClient, data_dir: Path) -> None:
    location = await _start(client)
    wrong = sha256(b"something else")
    resp = await client.put(f"{location}?digest={wrong}", data=DATA)
    assert resp.status == 400 and await error_code(resp) == "DIGEST_INVALID"
    assert (await client.get(f"/v2/app/blobs/{wrong}")).status == 404
    assert (await client.get(f"/v2/app/blobs/{sha256(DATA)}")).status == 404
    assert not any(files for _, _, files in os.walk(data_dir / "blobs"))
    assert os.listdir(data_dir / "uploads") == []
    monolithic = await client.post(f"/v2/app/blobs/uploads/?digest={wrong}", data=DATA)
    assert monolithic.status == 400 and await error_code(monolithic) == "DIGEST_INVALID"


async def test_put_without_digest_is_refused(client: TestClient) -> None:
    location = await _start(client)
    resp = await client.put(location, data=DATA)
    assert resp.status == 400 and await error_code(resp) == "DIGEST_INVALID"


async def test_cancel_and_unknown_sessions(client: TestClient) -> None:
    location = await _start(client)
    assert (await client.delete(location)).status == 204
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        resp = await client.request(method, f"{location}?digest={sha256(DATA)}")
        assert resp.status == 404, method
        assert await error_code(resp) == "BLOB_UPLOAD_UNKNOWN"
    bogus = await client.get("/v2/app/blobs/uploads/../../etc")
    assert bogus.status == 404
    garbage = await client.get("/v2/app/blobs/uploads/not-a-uuid")
    assert await error_code(garbage) == "BLOB_UPLOAD_UNKNOWN"


async def test_session_belongs_to_its_repository(client: TestClient) -> None:
    location = await _start(client, "one")
    other = location.replace("/v2/one/", "/v2/two/")
    resp = await client.get(other)
    assert resp.status == 404 and await error_code(resp) == "BLOB_UPLOAD_UNKNOWN"


async def test_cross_repository_mount(client: TestClient) -> None:
    digest = await push_blob(client, "source/repo", DATA)
    resp = await client.post(f"/v2/target/blobs/uploads/?mount={digest}&from=source/repo")
    assert resp.status == 201
    assert resp.headers["Location"] == f"/v2/target/blobs/{digest}"
    assert resp.headers["Docker-Content-Digest"] == digest
    assert await (await client.get(f"/v2/target/blobs/{digest}")).read() == DATA


async def test_mount_of_unknown_blob_opens_a_session(client: TestClient) -> None:
    missing = sha256(b"missing")
    await _start(client, "target", f"?mount={missing}&from=source")
    await _start(client, "target", f"?mount={missing}")


async def test_sha512_session(client: TestClient) -> None:
    location = await _start(client, query="?digest-algorithm=sha512")
    await client.patch(location, data=DATA)
    digest = "sha512:" + hashlib.sha512(DATA).hexdigest()
    resp = await client.put(f"{location}?digest={digest}")
    assert resp.status == 201
    assert resp.headers["Docker-Content-Digest"] == digest


async def test_unsupported_algorithm(client: TestClient) -> None:
    resp = await client.post("/v2/app/blobs/uploads/?digest-algorithm=md5")
    assert resp.status == 400


async def test_upload_survives_restart_and_is_rehashed(aiohttp_client, app: web.Application) -> None:  # type: ignore[no-untyped-def]
    from registry.app import create_app
    from registry.keys import CONFIG

    first = await aiohttp_client(app)
    location = await _start(first)
    await first.patch(location, data=DATA[:200_000])
    await first.close()
    second = await aiohttp_client(create_app(app[CONFIG]))
    resp = await second.patch(location, data=DATA[200_000:], headers={"Content-Range": f"200000-{len(DATA) - 1}"})
    assert resp.status == 202
    done = await second.put(f"{location}?digest={sha256(DATA)}")
    assert done.status == 201, await done.text()
    assert await (await second.get(f"/v2/app/blobs/{sha256(DATA)}")).read() == DATA


async def test_one_writer_per_session(app: web.Application) -> None:
    """Two requests writing one session at once would hash in one order and write in another."""
    uploads = app[REGISTRY].repository("app").uploads
    first = await uploads.start()
    second = await uploads.resume(first.id)
    await first.write(b"a" * 1000)
    with pytest.raises(RegistryError) as refused:
        await second.write(b"b" * 1000)
    assert refused.value.code == "RANGE_INVALID"
    await second.close()
    await first.close()
    third = await uploads.resume(first.id)  # the first is done: the session takes writes again
    await third.write(b"c" * 1000)
    descriptor = await third.commit(Digest.of(b"a" * 1000 + b"c" * 1000))
    assert descriptor.size == 2000


async def test_a_late_writer_cannot_touch_a_published_blob(client: TestClient, app: web.Application) -> None:
    """A PATCH resumed before a PUT finished the session, whose body arrives only after it."""
    uploads = app[REGISTRY].repository("app").uploads
    session = await uploads.start()
    late, finisher = await uploads.resume(session.id), await uploads.resume(session.id)
    blob = os.urandom(64)
    await finisher.write(blob)
    await finisher.commit(Digest.of(blob))
    with pytest.raises(RegistryError) as refused:
        await late.write(b"x" * 2 * 1024 * 1024)
    await late.close()
    assert refused.value.code == "BLOB_UPLOAD_UNKNOWN"
    assert await (await client.get(f"/v2/app/blobs/{sha256(blob)}")).read() == blob


async def test_stored_content_of_another_size_is_replaced(client: TestClient, data_dir: Path) -> None:
    """Content grown after it was published is not trusted by the next push of its digest."""
    digest = sha256(DATA)
    stored = data_dir / "blobs" / "sha256" / digest[7:9] / digest[7:] / "data"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(DATA + b"appended by a writer that came late")
    await push_blob(client, "app", DATA)
    assert stored.read_bytes() == DATA
    assert await (await client.get(f"/v2/app/blobs/{digest}")).read() == DATA
    with stored.open("ab") as grown:
        grown.write(b"again")
    await _start(client, "other", f"?mount={digest}&from=app")  # no mount: a session opens


async def test_a_cancelled_writer_gives_up_its_claim(app: web.Application, data_dir: Path) -> None:
    """However a request ends (here: cancelled mid-write), its claim ends with it, after its
    last write: the next writer finds the file as the cancelled one left it."""
    uploads = app[LOCAL].repository("app").uploads
    upload = await uploads.start()
    started = asyncio.Event()

    async def request() -> None:
        try:
            await upload.claim()
            while True:
                started.set()
                await upload.write(b"x" * 1024 * 1024)
        finally:
            await upload.close()

    task = asyncio.create_task(request())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not app[LOCAL].hashes.writing(upload.id)
    after = await uploads.resume(upload.id)
    written = (data_dir / "uploads" / upload.id / "data").read_bytes()
    assert after.offset == len(written) and set(written) <= {ord("x")}
    await after.write(b"end")
    assert (await after.commit(Digest.of(written + b"end"))).size == len(written) + 3


HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
fcntl.flock(fd, fcntl.LOCK_EX)
print("holding", flush=True)
sys.stdin.read()
"""


async def test_a_writer_of_another_process_holds_the_session(client: TestClient, data_dir: Path) -> None:
    """Two servers on one storage: while another process appends to a session, this one
    neither writes to it nor publishes it."""
    location = await _start(client)
    data_file = data_dir / "uploads" / location.rsplit("/", 1)[1] / "data"
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLDER, str(data_file),
                                                  stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert await asyncio.wait_for(holder.stdout.readline(), 20) == b"holding\n"
        patch = await client.patch(location, data=DATA)
        put = await client.put(f"{location}?digest={sha256(DATA)}", data=DATA)
        for resp in (patch, put):
            assert resp.status == 416 and "another request" in (await resp.json())["errors"][0]["message"]
    finally:
        holder.stdin.close()
        await holder.wait()
    assert (await client.put(f"{location}?digest={sha256(DATA)}", data=DATA)).status == 201


async def test_a_request_cancelled_while_opening_leaves_the_session_writable(app: web.Application) -> None:
    """Cancelled while its file was being opened, a request must not leave that file open (and
    locked) with no one to close it: the claim goes once the file is closed."""
    uploads = app[LOCAL].repository("app").uploads
    session = await uploads.start()
    for _ in range(20):
        upload = await uploads.resume(session.id)
        claiming = asyncio.ensure_future(upload.claim())
        await asyncio.sleep(0)
        claiming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await claiming
        await upload.close()
        await _until_released(app, session.id)
    writer = await uploads.resume(session.id)
    await writer.write(b"data")
    assert (await writer.commit(Digest.of(b"data"))).size == 4


async def _until_released(app: web.Application, upload_id: str) -> None:
    for _ in range(int(20 / 0.01)):
        if not app[LOCAL].hashes.writing(upload_id):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the claim was never released")
