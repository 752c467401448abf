"""The coordination of one process that alone serves its store: plain dictionaries and futures.

Nothing here survives a restart, and nothing needs to: a restarted process finds upload sessions
on disk (re-hashed on completion), fills begin again on demand, and tokens are fetched again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar, cast

from ..errors import UploadBusy
from ..reference import Digest
from .protocols import Fill, Purpose, RunningHash, Token

T = TypeVar("T")
F = TypeVar("F", bound=Fill)
Clock = Callable[[], float]


class InProcessSingleFlight:
    """Futures keyed by what is worked on; the work runs as its own task, shielded from
    callers that go away, and the key is free again once it has finished."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._running)

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        future = self._running.get(key)
        if future is None:
            future = asyncio.ensure_future(work())
            self._running[key] = future
            future.add_done_callback(lambda _: self._running.pop(key, None))
        return cast(T, await asyncio.shield(future))

    async def settled(self, key: Hashable) -> None:
        """Until the work of `key` (if any) has finished, whatever its outcome; cancelling the
        wait leaves the work running."""
        future = self._running.get(key)
        if future is not None:
            await asyncio.wait({future})


class InProcessUploads:
    """Upload sessions of this process: which exist, which are being written, running hashes."""

    def __init__(self) -> None:
        self._hashes: dict[str, RunningHash] = {}
        self._writing: set[str] = set()
        self._live: set[str] | None = None  # None until counted from the disk once

    def writing(self, upload_id: str) -> bool:
        """`claimed` for callers in this process that cannot await (tests watching a request)."""
        return upload_id in self._writing

    async def admit(self, upload_id: str, limit: int | None,
                    on_disk: Callable[[], Awaitable[Iterable[str]]]) -> bool:
        if self._live is None:
            found = set(await on_disk())
            if self._live is None:  # another admission counted while this one listed
                self._live = found
        if limit is not None and len(self._live) >= limit:
            return False
        self._live.add(upload_id)
        return True

    async def recount(self, on_disk: Iterable[str]) -> None:
        self._live = set(on_disk)

    async def forget(self, upload_id: str) -> None:
        if self._live is not None:
            self._live.discard(upload_id)

    async def claim(self, upload_id: str) -> None:
        if upload_id in self._writing:
            raise UploadBusy(upload_id)
        self._writing.add(upload_id)

    async def release(self, upload_id: str) -> None:
        self._writing.discard(upload_id)

    async def claimed(self, upload_id: str) -> bool:
        return self.writing(upload_id)

    async def running_hash(self, upload_id: str, algorithm: str, offset: int) -> RunningHash | None:
        running = self._hashes.get(upload_id)
        if running is None and offset == 0:
            running = self._hashes[upload_id] = RunningHash(hashlib.new(algorithm), 0)
        if running is not None and running.offset != offset:
            await self.drop_hash(upload_id)
            return None
        return running

    async def drop_hash(self, upload_id: str) -> None:
        self._hashes.pop(upload_id, None)


class InProcessFillBoard(Generic[F]):
    """The fills running in this process, each as its own task, so a reader that goes away
    does not abort the fetch for the others."""

    def __init__(self) -> None:
        self._active: dict[Digest, tuple[F, asyncio.Task[None]]] = {}
        self._starting = InProcessSingleFlight()
        self._tasks: set[asyncio.Task[None]] = set()

    def _following(self, digest: Digest) -> F | None:
        entry = self._active.get(digest)
        return entry[0] if entry is not None and not entry[0].finished else None

    async def follow_or_start(self, digest: Digest, start: Callable[[], Awaitable[F | None]]) -> F | None:
        fill = self._following(digest)
        if fill is not None:
            return fill
        return await self._starting.run(digest, lambda: self._start(digest, start))

    async def _start(self, digest: Digest, start: Callable[[], Awaitable[F | None]]) -> F | None:
        fill = await start()
        if fill is None:
            return None
        task = asyncio.create_task(fill.run())
        self._active[digest] = (fill, task)
        self._tasks.add(task)
        task.add_done_callback(lambda _: self._finished(digest, task))
        return fill

    def _finished(self, digest: Digest, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        entry = self._active.get(digest)
        if entry is not None and entry[1] is task:
            del self._active[digest]

    async def wait(self, digest: Digest) -> None:
        await self._starting.settled(digest)
        entry = self._active.get(digest)
        if entry is not None:
            await asyncio.wait({entry[1]})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class InProcessTokens:
    """Tokens by (upstream, scope); expiry is judged by `clock`, wall-clock time by default."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str], Token] = {}

    async def get(self, upstream: str, scope: str) -> Token | None:
        token = self._tokens.get((upstream, scope))
        return token if token is not None and token.expires > self._clock() else None

    async def put(self, upstream: str, scope: str, token: Token) -> None:
        self._tokens[upstream, scope] = token

    async def discard(self, upstream: str, scope: str, value: str) -> None:
        token = self._tokens.get((upstream, scope))
        if token is not None and token.value == value:
            del self._tokens[upstream, scope]


class InProcessPullThrottle:
    """When each key was last due, by `clock` (monotonic by default: a wall-clock step back
    must not silence pulls for an hour)."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[Hashable, float] = {}

    async def due(self, key: Hashable, interval: float = 60.0) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < interval:
            return False
        self._last[key] = now
        return True


class InProcessCoordinator:
    """The default `Coordinator`: right for one process per store, which is how ocireg runs."""

    def __init__(self, *, wall_clock: Clock = time.time, monotonic: Clock = time.monotonic) -> None:
        self._flights: dict[Purpose, InProcessSingleFlight] = {}
        self.uploads = InProcessUploads()
        self.fills: InProcessFillBoard[Any] = InProcessFillBoard()
        self.tokens = InProcessTokens(wall_clock)
        self.pulls = InProcessPullThrottle(monotonic)

    def flight(self, purpose: Purpose) -> InProcessSingleFlight:
        return self._flights.setdefault(purpose, InProcessSingleFlight())

    async def close(self) -> None:
        await self.fills.close()
