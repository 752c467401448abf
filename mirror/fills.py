"""The blob fills in flight, one per digest across all upstreams: content is addressed by
digest, so two repositories asking for the same layer share one fetch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from registry.reference import Digest

from .fill import BlobFill
from .inflight import InFlight


class Fills:
    def __init__(self) -> None:
        self._active: dict[Digest, BlobFill] = {}
        self._starting: InFlight[BlobFill | None] = InFlight()
        self._tasks: set[asyncio.Task[None]] = set()

    def active(self, digest: Digest) -> BlobFill | None:
        fill = self._active.get(digest)
        return fill if fill is not None and not fill.done.done() else None

    async def get(self, digest: Digest, start: Callable[[], Awaitable[BlobFill | None]]) -> BlobFill | None:
        """The fill in flight for `digest`, or a new one that `start` opens; None when `start`
        found the blob already stored (a fill that finished just before we asked)."""
        return self.active(digest) or await self._starting.get(digest, lambda: self._start(digest, start))

    async def _start(self, digest: Digest, start: Callable[[], Awaitable[BlobFill | None]]) -> BlobFill | None:
        fill = await start()
        if fill is None:
            return None
        self._active[digest] = fill
        task = asyncio.create_task(fill.run())
        self._tasks.add(task)
        task.add_done_callback(lambda _: self._finished(digest, fill, task))
        return fill

    def _finished(self, digest: Digest, fill: BlobFill, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._active.get(digest) is fill:
            del self._active[digest]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
