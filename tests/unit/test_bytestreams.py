"""The pause limit on request bodies: a stalled sender fails, a slow but steady one does not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from registry.bytestreams import paced


class Stalled(Exception):
    pass


async def _trickle(pieces: int, gap: float) -> AsyncIterator[bytes]:
    for _ in range(pieces):
        await asyncio.sleep(gap)
        yield b"x"


async def _collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_a_pause_longer_than_the_limit_fails() -> None:
    with pytest.raises(Stalled):
        await _collect(paced(_trickle(2, 0.2), 0.05, Stalled))


async def test_pauses_within_the_limit_pass_every_chunk() -> None:
    assert await _collect(paced(_trickle(3, 0.01), 1.0, Stalled)) == b"xxx"


async def test_a_limit_of_zero_means_no_limit() -> None:
    assert await _collect(paced(_trickle(2, 0.05), 0.0, Stalled)) == b"xx"
