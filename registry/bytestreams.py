"""Bytes in bulk: batching small network reads into large disk writes, hashing a whole file."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

BATCH = 1024 * 1024
HASH_READ = 4 * 1024 * 1024


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


def hash_file(path: str, algorithm: str) -> str:
    """Blocking: the hex digest of a file, read in large pieces (hashlib releases the GIL)."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_READ):
            hasher.update(chunk)
    return hasher.hexdigest()
