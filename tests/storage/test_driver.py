"""The contract every storage driver keeps."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading

import pytest

from registry.storage.driver.base import Driver, PathNotFound


async def test_write_read_replace(driver: Driver) -> None:
    await driver.write("a/b/c", b"one")
    assert await driver.read("a/b/c") == b"one"
    await driver.write("a/b/c", b"two")
    assert await driver.read("a/b/c") == b"two"
    assert (await driver.stat("a/b/c")).size == 3
    assert await driver.list("a/b") == ["c"]


async def test_missing_paths(driver: Driver) -> None:
    with pytest.raises(PathNotFound):
        await driver.read("nope")
    with pytest.raises(PathNotFound):
        await driver.stat("nope/deeper")
    assert await driver.list("nope") == []
    assert not await driver.exists("nope")
    await driver.delete("nope")
    with pytest.raises(PathNotFound):
        await driver.move("nope", "there")


async def test_delete_file_and_tree(driver: Driver) -> None:
    await driver.write("t/x/1", b"1")
    await driver.write("t/x/2", b"2")
    await driver.delete("t/x/1")
    assert await driver.list("t/x") == ["2"]
    await driver.delete("t")
    assert not await driver.exists("t/x/2")


async def test_append_then_move_publishes_whole_file(driver: Driver) -> None:
    with pytest.raises(PathNotFound):  # appending never brings back a removed folder
        await driver.append("up/1/data")
    await driver.write("up/1/state", b"{}")
    with pytest.raises(PathNotFound):  # nor a file that is gone
        await driver.append("up/1/data")
    writer = await driver.append("up/1/data", create=True)
    hasher = hashlib.sha256()
    for chunk in (b"a" * 1000, b"b" * 2000):
        await writer.write(chunk, hasher)
    await writer.close()
    assert writer.size == 3000
    assert hasher.hexdigest() == hashlib.sha256(b"a" * 1000 + b"b" * 2000).hexdigest()
    reopened = await driver.append("up/1/data")
    assert reopened.size == 3000
    await reopened.close()
    await driver.move("up/1/data", "blobs/x/data")
    assert (await driver.stat("blobs/x/data")).size == 3000
    assert not await driver.exists("up/1/data")


async def test_concurrent_writers_leave_one_whole_value(driver: Driver) -> None:
    values = [bytes([i]) * 100_000 for i in range(16)]
    await asyncio.gather(*(driver.write("tag", value) for value in values))
    assert await driver.read("tag") in values
    local = driver.local_path("")
    if local is not None:
        assert [name for name in os.listdir(local) if name.startswith(".tmp")] == []


async def test_read_small_sees_every_replacement_and_removal(driver: Driver) -> None:
    """Small reads may be remembered, but never past a write by anyone, this process or not."""
    await driver.write("r/tag", b"sha256:one")
    assert await driver.read_small("r/tag") == b"sha256:one"
    await driver.write("r/tag", b"sha256:two")
    assert await driver.read_small("r/tag") == b"sha256:two"
    local = driver.local_path("r/tag")
    if local is not None:  # another process replacing the file the same way
        tmp = local + ".other"
        with open(tmp, "wb") as handle:  # noqa: ASYNC230 - a test standing in for another process
            handle.write(b"sha256:333")
        os.replace(tmp, local)
        assert await driver.read_small("r/tag") == b"sha256:333"
    await driver.delete("r/tag")
    with pytest.raises(PathNotFound):
        await driver.read_small("r/tag")


class _BlockingHasher:
    """Holds the worker thread of a write until the test lets it go."""

    def __init__(self) -> None:
        self.entered, self.go = threading.Event(), threading.Event()

    def update(self, data: bytes, /) -> None:
        self.entered.set()
        self.go.wait(20)


async def test_operations_on_an_appended_file_keep_their_order(driver: Driver) -> None:
    """A write whose caller gave up (cancelled) still ends before the next operation starts,
    and before the file is closed."""
    await driver.write("up/2/state", b"{}")
    writer = await driver.append("up/2/data", create=True)
    hasher = _BlockingHasher()
    abandoned = asyncio.ensure_future(writer.write(b"b" * 1000, hasher))
    assert await asyncio.to_thread(hasher.entered.wait, 20)
    abandoned.cancel()
    truncate = asyncio.ensure_future(writer.truncate(10))
    try:
        await asyncio.sleep(0.2)
        assert not truncate.done(), "the truncate ran while the write was still going on"
    finally:
        hasher.go.set()
    await truncate
    await writer.close()
    assert (await driver.stat("up/2/data")).size == writer.size == 10


async def test_read_at_reads_a_span(driver: Driver) -> None:
    data = bytes(range(256)) * 10_000  # 2.5 MiB: more than one piece of any driver
    await driver.write("blobs/x/data", data)
    assert b"".join([chunk async for chunk in driver.read_at("blobs/x/data")]) == data
    assert b"".join([chunk async for chunk in driver.read_at("blobs/x/data", 1000, 2_000_000)]) == data[1000:2_001_000]
    assert b"".join([chunk async for chunk in driver.read_at("blobs/x/data", len(data) - 5, 100)]) == data[-5:]
    assert [chunk async for chunk in driver.read_at("blobs/x/data", len(data) + 1)] == []
    assert [chunk async for chunk in driver.read_at("blobs/x/data", 10, 0)] == []
    with pytest.raises(PathNotFound):
        [chunk async for chunk in driver.read_at("blobs/nope/data")]


async def test_walk_finds_every_file_below_a_prefix(driver: Driver) -> None:
    await driver.write("a/1", b"1")
    await driver.write("a/b/c/2", b"22")
    await driver.write("a/b/.tmp-x", b"333")
    await driver.write("ab/4", b"4444")
    found = {info.path: info.size async for info in driver.walk("a")}
    assert found == {"a/1": 1, "a/b/c/2": 2, "a/b/.tmp-x": 3}
    assert {info.path async for info in driver.walk("")} == {*found, "ab/4"}
    assert [info async for info in driver.walk("nope")] == []
    stat = await driver.stat("a/b/c/2")
    assert [info async for info in driver.walk("a/b/c")] == [stat]
    assert stat.path == "a/b/c/2"


async def test_walk_crosses_batches(driver: Driver) -> None:
    names = {f"many/{i % 7}/{i}" for i in range(5000)}
    await asyncio.gather(*(driver.write(name, b"") for name in names))
    assert {info.path async for info in driver.walk("many")} == names


async def test_prune_removes_only_empty_folders(driver: Driver) -> None:
    await driver.write("p/full/x", b"x")
    await driver.write("p/gone/y", b"y")
    await driver.delete("p/gone/y")
    await driver.prune("p/full")
    await driver.prune("p/gone")
    await driver.prune("p/never")
    assert await driver.list("p") == ["full"]
    assert await driver.read("p/full/x") == b"x"


async def test_touch_moves_the_mtime_and_move_keeps_it(driver: Driver) -> None:
    await driver.write("t/file", b"x")
    before = (await driver.stat("t/file")).mtime
    await asyncio.sleep(0.02)
    assert await driver.touch("t/file")
    touched = (await driver.stat("t/file")).mtime
    assert touched > before
    await driver.move("t/file", "t/moved")
    assert (await driver.stat("t/moved")).mtime == touched
    assert not await driver.touch("t/file")


async def test_fast_paths_are_optional(driver: Driver) -> None:
    await driver.write("f/data", b"0123456789")
    handle = driver.open_local("f/data", 4)
    if handle is not None:
        with handle:
            assert handle.read() == b"456789"
        with pytest.raises(PathNotFound):
            driver.open_local("f/nope")
    assert await driver.redirect_url("f/data") is None  # no driver here presigns


async def test_folders_exist_while_they_hold_files(driver: Driver) -> None:
    await driver.write("r/name/_tags/v1", b"sha256:x")
    assert await driver.exists("r/name/_tags")
    assert await driver.list("r") == ["name"]
    await driver.delete("r/name/_tags/v1")
    assert await driver.list("r/name/_tags") == []
