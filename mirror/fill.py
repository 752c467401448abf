"""One upstream fetch of one blob, written into the cache and followed by every reader.

The fetch runs as its own task, so a client that disconnects does not abort it for the others.
Readers stream from the growing upload file, but the last byte is held back until the digest
has been verified: a truncated or corrupted upstream body never reaches a client complete, so
its pull fails instead of silently receiving wrong bytes, and nothing unverified is cached.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import IO

import aiohttp

from registry.bytestreams import batched
from registry.errors import RegistryError
from registry.reference import Digest
from registry.storage.protocols import BlobContent, UploadWriter

from .disk import is_full, storage_full

log = logging.getLogger("ocireg.mirror")
READ_CHUNK = 1024 * 1024


class BlobFill:
    def __init__(self, digest: Digest, size: int, upload: UploadWriter, path: str, final_path: str,
                 response: aiohttp.ClientResponse, on_error: Callable[[BaseException], RegistryError]) -> None:
        self.response = response
        self.on_error = on_error
        self.digest = digest
        self.size = size
        self.upload = upload
        self.path = path
        self.final_path = final_path
        self.written = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._progress = asyncio.Event()

    async def run(self) -> None:
        """Copy the upstream body to disk, verify, publish; readers are woken at each step.
        However it ends (cancelled at shutdown included), `done` is settled, so no reader
        waits forever."""
        failure: RegistryError | None = None
        try:
            async with self.response as response:
                await self._copy(response)
            if self.written != self.size:
                raise RegistryError("BLOB_UNKNOWN", f"upstream sent {self.written} of {self.size} bytes")
            await self.upload.commit(self.digest)
        except BaseException as err:
            failure = self._failure(err)
            log.warning("mirror fill of %s failed: %s", self.digest, failure.message)
            await self._discard()
            if not isinstance(err, Exception):
                raise
        finally:
            self._settle(failure)

    def _failure(self, err: BaseException) -> RegistryError:
        """A disk that ran out of room fails the fill as the registry's own failure (507),
        whichever write hit it; `on_error` names the upstream for everything else."""
        if isinstance(err, RegistryError):
            return err
        if is_full(err):
            return storage_full(f"blob {self.digest} ({self.size} bytes)")
        return self.on_error(err)

    async def _discard(self) -> None:
        try:
            await self.upload.cancel()
        except OSError as err:  # the disk that failed the fill may fail the cleanup too
            log.warning("could not remove the upload of %s: %s", self.digest, err)

    def _settle(self, failure: RegistryError | None) -> None:
        if not self.done.done():
            if failure is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(failure)
                self.done.exception()  # retrieved: readers that never came must not warn
        self._progress.set()

    async def _copy(self, response: aiohttp.ClientResponse) -> None:
        async for data in batched(response.content.iter_any()):
            await self.upload.write(data)
            self.written += len(data)
            self._progress.set()
            self._progress = asyncio.Event()

    def _readable(self) -> int:
        """How far readers may go: all bytes once verified, else all but the last."""
        if self.done.done() and self.done.exception() is None:
            return self.size
        return min(self.written, self.size - 1)

    async def readable(self, offset: int) -> int:
        while True:
            limit = self._readable()
            if limit > offset:
                return limit
            if self.done.done():
                self.done.result()  # raises the fill's failure
            await self._progress.wait()

    def open_fd(self) -> int:
        """The upload file, or, when the fill finished in between, the published blob."""
        try:
            return os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            if self.done.done():
                self.done.result()
            return os.open(self.final_path, os.O_RDONLY)

    async def follow(self, offset: int, length: int) -> AsyncIterator[bytes]:
        """`length` bytes from `offset`, as the fill makes them readable."""
        loop = asyncio.get_running_loop()
        fd = await loop.run_in_executor(None, self.open_fd)
        end = min(offset + length, self.size)
        try:
            while offset < end:
                limit = min(await self.readable(offset), end)
                chunk = await loop.run_in_executor(None, os.pread, fd, min(READ_CHUNK, limit - offset), offset)
                offset += len(chunk)
                yield chunk
        finally:
            os.close(fd)


RangeFetcher = Callable[[int, int], AsyncIterator[bytes]]
FOLLOW_AHEAD = 8 * 1024 * 1024


class FillContent:
    """BlobContent for a blob still arriving from upstream. A read far beyond what has arrived
    (a lazy-pulling snapshotter reading a layer's table of contents at its end) goes upstream
    as a range of its own instead of waiting for the whole blob."""

    def __init__(self, fill: BlobFill, fetch_range: RangeFetcher) -> None:
        self.fill = fill
        self.fetch_range = fetch_range
        self.size = fill.size
        self.path: str | None = None

    def _far_ahead(self, offset: int) -> bool:
        return offset > self.fill.written + FOLLOW_AHEAD and not self.fill.done.done()

    def chunks(self, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        length = self.size - offset if length is None else length
        if self._far_ahead(offset):
            return self.fetch_range(offset, length)
        return self.fill.follow(offset, length)

    def open_file(self, offset: int) -> IO[bytes] | None:
        return None if self._far_ahead(offset) else os.fdopen(self.fill.open_fd(), "rb")

    async def readable(self, offset: int) -> int:
        return await self.fill.readable(offset)



async def stored(content: BlobContent) -> int:
    """Wait until a blob opened through the mirror is in the store (seed, export); returns the
    bytes this took from upstream, 0 when it was there already."""
    if isinstance(content, FillContent):
        await asyncio.shield(content.fill.done)
        return content.size
    return 0
