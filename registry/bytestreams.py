"""Bytes in bulk: batching small network reads into large disk writes, pacing request bodies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable

BATCH = 1024 * 1024


async def batched(chunks: AsyncIterable[bytes], size: int = BATCH) -> AsyncIterator[bytes]:
    """Network reads come in 64 KiB pieces; each disk write (one executor hop) takes ~1 MiB."""
    pending: list[bytes] = []
    pending_size = 0
    async for chunk in chunks:
        pending.append(chunk)
        pending_size += len(chunk)
        if pending_size >= size:
            yield b"".join(pending)
            pending, pending_size = [], 0
    if pending:
        yield b"".join(pending)


async def paced(chunks: AsyncIterable[bytes], pause: float,
                stalled: Callable[[], Exception]) -> AsyncIterator[bytes]:
    """`chunks`, but no wait for the next one may last longer than `pause`: a client that stops
    sending mid-body must not hold what its request holds (an upload session) forever. A pause
    of zero means no limit, as for the other timeouts."""
    iterator = aiter(chunks)
    limit = pause if pause > 0 else None
    while True:
        try:
            async with asyncio.timeout(limit):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise stalled() from None
        yield chunk
