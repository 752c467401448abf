"""The digest of stored bytes, read back through the driver.

For an upload whose running hash was lost (a restart, a chunk cut back) and for `verify`,
which re-hashes every blob. hashlib releases the GIL on large updates, so hashing runs on a
worker thread and the loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import IO, Any

from .driver.base import Driver

HASH_READ = 4 * 1024 * 1024
INLINE_READ = 64 * 1024  # a local file this small is read and hashed faster than a worker hop takes


def _hash_rest(handle: IO[bytes], hasher: Any) -> None:
    """Blocking: the rest of an open file, in large pieces."""
    while chunk := handle.read(HASH_READ):
        hasher.update(chunk)


async def digest_of(driver: Driver, path: str, algorithm: str) -> str:
    """The hex digest of the file at `path`: from a local file, its first piece inline (most
    blobs of a store are small, and verify hashes every one) and the rest in one worker hop;
    else piece by piece from `read_at`. PathNotFound when there is no such file."""
    hasher = hashlib.new(algorithm)
    loop = asyncio.get_running_loop()
    handle = driver.open_local(path)
    if handle is not None:
        with handle:
            first = handle.read(INLINE_READ)
            hasher.update(first)
            if len(first) == INLINE_READ:
                await loop.run_in_executor(None, _hash_rest, handle, hasher)
        return hasher.hexdigest()
    async for chunk in driver.read_at(path):
        await loop.run_in_executor(None, hasher.update, chunk)
    return hasher.hexdigest()
