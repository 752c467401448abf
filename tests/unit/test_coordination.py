"""The in-process coordinator keeps the promises of the coordination protocols: one work per key
shared by its callers, one writer per upload session, one fill per digest, tokens only until
they expire, a pull recorded at most once per interval."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

import pytest

from registry.coordination import Coordinator, InProcessCoordinator
from registry.coordination.inprocess import (
    InProcessFillBoard,
    InProcessPullThrottle,
    InProcessSingleFlight,
    InProcessTokens,
    InProcessUploads,
)
from registry.coordination.protocols import FillBoard, PullThrottle, SingleFlight, Token, TokenCache, UploadLocks
from registry.errors import UploadBusy
from registry.reference import Digest

DIGEST = Digest.of(b"layer")
OTHER = Digest.of(b"other layer")


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def settle() -> None:
    """Let every ready task run until all wait on something this test controls."""
    for _ in range(10):
        await asyncio.sleep(0)


def test_the_in_process_classes_implement_the_protocols() -> None:
    """mypy checks these assignments against the protocols when it reads this file."""
    coordinator: Coordinator = InProcessCoordinator()
    flight: SingleFlight = coordinator.flight("manifest")
    uploads: UploadLocks = InProcessUploads()
    board: FillBoard[FakeFill] = InProcessFillBoard()
    tokens: TokenCache = InProcessTokens()
    pulls: PullThrottle = InProcessPullThrottle()
    assert None not in (coordinator, flight, uploads, board, tokens, pulls)


# Single-flight


async def test_one_work_per_key_and_its_callers_share_the_result() -> None:
    flight = InProcessSingleFlight()
    gate, calls = asyncio.Event(), []

    async def work() -> str:
        calls.append(1)
        await gate.wait()
        return "fetched"

    callers = [asyncio.create_task(flight.run("key", work)) for _ in range(3)]
    await settle()
    gate.set()
    assert await asyncio.gather(*callers) == ["fetched"] * 3
    assert len(calls) == 1
    assert len(flight) == 0, "the key is free once the work finished"
    assert await flight.run("key", work) == "fetched"
    assert len(calls) == 2


async def test_different_keys_do_not_wait_for_each_other() -> None:
    flight = InProcessSingleFlight()
    gate = asyncio.Event()

    async def blocked() -> str:
        await gate.wait()
        return "a"

    async def free() -> str:
        return "b"

    first = asyncio.create_task(flight.run("a", blocked))
    await settle()
    assert await flight.run("b", free) == "b"
    gate.set()
    assert await first == "a"


async def test_callers_share_the_exception() -> None:
    flight = InProcessSingleFlight()
    gate, failure = asyncio.Event(), ValueError("upstream said no")

    async def work() -> str:
        await gate.wait()
        raise failure

    callers = [asyncio.create_task(flight.run("key", work)) for _ in range(2)]
    await settle()
    gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert results == [failure, failure]
    assert len(flight) == 0


async def test_a_cancelled_caller_does_not_cancel_the_work() -> None:
    flight = InProcessSingleFlight()
    gate, finished = asyncio.Event(), asyncio.Event()

    async def work() -> str:
        await gate.wait()
        finished.set()
        return "done"

    leaving = asyncio.create_task(flight.run("key", work))
    staying = asyncio.create_task(flight.run("key", work))
    await settle()
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    gate.set()
    assert await staying == "done"
    assert finished.is_set()


async def test_a_work_left_by_all_its_callers_still_finishes() -> None:
    flight = InProcessSingleFlight()
    gate, finished = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        await gate.wait()
        finished.set()

    caller = asyncio.create_task(flight.run("key", work))
    await settle()
    caller.cancel()
    gate.set()
    await flight.settled("key")
    assert finished.is_set()
    assert len(flight) == 0


async def test_purposes_have_separate_keys() -> None:
    coordinator = InProcessCoordinator()
    assert coordinator.flight("tag") is coordinator.flight("tag")
    assert coordinator.flight("tag") is not coordinator.flight("manifest")
    gate = asyncio.Event()

    async def blocked() -> str:
        await gate.wait()
        return "tag"

    async def manifest() -> str:
        return "manifest"

    tag = asyncio.create_task(coordinator.flight("tag").run("same key", blocked))
    await settle()
    assert await coordinator.flight("manifest").run("same key", manifest) == "manifest"
    gate.set()
    assert await tag == "tag"


# Upload sessions


async def test_a_session_has_one_writer() -> None:
    uploads = InProcessUploads()
    await uploads.claim("u1")
    with pytest.raises(UploadBusy) as busy:
        await uploads.claim("u1")
    assert busy.value.detail == {"uuid": "u1"}
    assert await uploads.claimed("u1") and uploads.writing("u1")
    await uploads.claim("u2")
    await uploads.release("u1")
    assert not await uploads.claimed("u1")
    await uploads.claim("u1")


async def test_the_running_hash_covers_exactly_the_bytes_on_disk() -> None:
    uploads = InProcessUploads()
    assert await uploads.running_hash("u", "sha256", 5) is None, "no hash of bytes never seen"
    running = await uploads.running_hash("u", "sha256", 0)
    assert running is not None
    running.hasher.update(b"abc")
    running.offset += 3
    assert await uploads.running_hash("u", "sha256", 3) is running
    assert await uploads.running_hash("u", "sha256", 2) is None, "a wrong offset means re-hash"
    assert await uploads.running_hash("u", "sha256", 3) is None, "and the hash is gone for good"
    fresh = await uploads.running_hash("u", "sha512", 0)
    assert fresh is not None and fresh.hasher.hexdigest() == hashlib.sha512().hexdigest()


async def test_a_dropped_hash_starts_over() -> None:
    uploads = InProcessUploads()
    running = await uploads.running_hash("u", "sha256", 0)
    assert running is not None
    running.hasher.update(b"x")
    await uploads.drop_hash("u")
    again = await uploads.running_hash("u", "sha256", 0)
    assert again is not None and again.hasher.hexdigest() == hashlib.sha256().hexdigest()


async def test_admission_counts_sessions_on_disk_once() -> None:
    uploads = InProcessUploads()
    listings: list[int] = []

    async def on_disk() -> list[str]:
        listings.append(1)
        return ["left-from-before"]

    assert await uploads.admit("a", 2, on_disk)
    assert not await uploads.admit("b", 2, on_disk), "the session left on disk counts"
    assert listings == [1]
    await uploads.forget("left-from-before")
    assert await uploads.admit("b", 2, on_disk)
    await uploads.recount(["z"])
    assert await uploads.admit("c", 2, on_disk)
    assert not await uploads.admit("d", 2, on_disk)
    assert await uploads.admit("d", None, on_disk), "no limit"


async def test_admissions_during_the_first_count_are_kept() -> None:
    uploads = InProcessUploads()
    gate = asyncio.Event()

    async def slow_listing() -> list[str]:
        await gate.wait()
        return []

    async def instant() -> list[str]:
        return ["a"]

    slow = asyncio.create_task(uploads.admit("b", 2, slow_listing))
    await settle()
    assert await uploads.admit("a", 2, instant)
    gate.set()
    assert await slow
    assert not await uploads.admit("c", 2, instant), "a and b both count"


# Fills


class FakeFill:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.runs = 0
        self.finished = False
        self.cancelled = False

    async def run(self) -> None:
        self.runs += 1
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.finished = True


async def test_one_fill_per_digest() -> None:
    board: InProcessFillBoard[FakeFill] = InProcessFillBoard()
    fill, starts = FakeFill(), []

    async def start() -> FakeFill:
        starts.append(1)
        await asyncio.sleep(0)
        return fill

    found = await asyncio.gather(*(board.follow_or_start(DIGEST, start) for _ in range(3)))
    assert found == [fill] * 3
    assert await board.follow_or_start(DIGEST, start) is fill, "a running fill is followed"
    await settle()
    assert (len(starts), fill.runs) == (1, 1)
    fill.gate.set()
    await board.wait(DIGEST)
    assert fill.finished


async def test_a_finished_fill_is_not_followed() -> None:
    board: InProcessFillBoard[FakeFill] = InProcessFillBoard()
    first, second = FakeFill(), FakeFill()
    first.gate.set()
    assert await board.follow_or_start(DIGEST, _returning(first)) is first
    await board.wait(DIGEST)
    assert await board.follow_or_start(DIGEST, _returning(second)) is second
    await board.close()


async def test_a_start_that_finds_the_blob_stored_passes_none_through() -> None:
    board: InProcessFillBoard[FakeFill] = InProcessFillBoard()

    async def stored() -> FakeFill | None:
        return None

    assert await board.follow_or_start(DIGEST, stored) is None
    fill = FakeFill()
    assert await board.follow_or_start(DIGEST, _returning(fill)) is fill, "nothing was left behind"
    await board.close()


async def test_digests_fill_independently() -> None:
    board: InProcessFillBoard[FakeFill] = InProcessFillBoard()
    one, two = FakeFill(), FakeFill()
    await board.follow_or_start(DIGEST, _returning(one))
    assert await board.follow_or_start(OTHER, _returning(two)) is two
    two.gate.set()
    await board.wait(OTHER)
    assert two.finished and not one.finished
    await board.close()


async def test_wait_returns_once_the_fill_finished() -> None:
    board: InProcessFillBoard[FakeFill] = InProcessFillBoard()
    fill = FakeFill()
    await board.follow_or_start(DIGEST, _returning(fill))
    waiter = asyncio.create_task(board.wait(DIGEST))
    await settle()
    assert not waiter.done()
    fill.gate.set()
    await waiter
    assert fill.finished
    await board.wait(OTHER)  # nothing runs for it: returns at once


async def test_cancelling_a_wait_leaves_the_fill_running() -> None:
    board: InProcessFillBoard[FakeFill] = InProcessFillBoard()
    fill = FakeFill()
    await board.follow_or_start(DIGEST, _returning(fill))
    waiter = asyncio.create_task(board.wait(DIGEST))
    await settle()
    waiter.cancel()
    await settle()
    assert not fill.cancelled and not fill.finished
    fill.gate.set()
    await board.wait(DIGEST)
    assert fill.finished and not fill.cancelled


async def test_close_cancels_running_fills_and_waits_for_them() -> None:
    coordinator = InProcessCoordinator()
    fills = [FakeFill(), FakeFill()]
    await coordinator.fills.follow_or_start(DIGEST, _returning(fills[0]))
    await coordinator.fills.follow_or_start(OTHER, _returning(fills[1]))
    await settle()
    await coordinator.close()
    assert all(fill.cancelled and fill.finished for fill in fills)


def _returning(fill: FakeFill) -> Callable[[], Awaitable[FakeFill | None]]:
    async def start() -> FakeFill | None:
        return fill

    return start


# Tokens


async def test_a_token_is_handed_out_until_it_expires() -> None:
    clock = FakeClock(1000.0)
    tokens = InProcessTokens(clock)
    await tokens.put("hub", "repository:library/alpine:pull", Token("t1", 1060.0))
    assert await tokens.get("hub", "repository:library/alpine:pull") == Token("t1", 1060.0)
    assert await tokens.get("other", "repository:library/alpine:pull") is None, "per upstream"
    assert await tokens.get("hub", "repository:library/busybox:pull") is None, "per scope"
    clock.now = 1059.9
    assert await tokens.get("hub", "repository:library/alpine:pull") is not None
    clock.now = 1060.0
    assert await tokens.get("hub", "repository:library/alpine:pull") is None


async def test_a_refused_token_is_discarded_unless_replaced() -> None:
    tokens = InProcessTokens(FakeClock())
    await tokens.put("hub", "s", Token("old", 100.0))
    await tokens.put("hub", "s", Token("new", 100.0))
    await tokens.discard("hub", "s", "old")
    assert await tokens.get("hub", "s") == Token("new", 100.0), "a fresher token stays"
    await tokens.discard("hub", "s", "new")
    assert await tokens.get("hub", "s") is None
    await tokens.discard("hub", "s", "new")  # gone already: nothing to do


async def test_the_coordinator_judges_tokens_by_its_wall_clock() -> None:
    clock = FakeClock(50.0)
    coordinator = InProcessCoordinator(wall_clock=clock)
    await coordinator.tokens.put("hub", "s", Token("t", 60.0))
    assert await coordinator.tokens.get("hub", "s") is not None
    clock.now = 61.0
    assert await coordinator.tokens.get("hub", "s") is None


# Pull throttle


async def test_a_pull_is_due_at_most_once_per_interval() -> None:
    clock = FakeClock(0.0)
    pulls = InProcessPullThrottle(clock)
    key = ("library/alpine", DIGEST)
    assert await pulls.due(key)
    assert not await pulls.due(key)
    assert await pulls.due(("library/busybox", DIGEST)), "keys are independent"
    clock.now = 59.9
    assert not await pulls.due(key)
    clock.now = 60.0
    assert await pulls.due(key)
    clock.now = 65.0
    assert not await pulls.due(key)
    assert await pulls.due(key, interval=5.0)


async def test_the_coordinator_throttles_by_its_monotonic_clock() -> None:
    clock = FakeClock(10.0)
    coordinator = InProcessCoordinator(monotonic=clock)
    assert await coordinator.pulls.due("k")
    assert not await coordinator.pulls.due("k")
    clock.now = 70.0
    assert await coordinator.pulls.due("k")
