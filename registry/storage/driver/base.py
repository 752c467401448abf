"""The storage driver: paths and bytes, nothing about digests or manifests.

Every path is relative to the driver's root and was built by `storage.paths`. Writes are atomic:
readers see either the old file or the whole new one, never a part.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol, TypeVar

from ...errors import FULL_ERRNOS, StorageFull

__all__ = ["FULL_ERRNOS", "Driver", "FileBusy", "FileInfo", "FileWriter", "Hasher", "PathNotFound",
           "SerialFileWriter", "StorageFull", "run_blocking"]

T = TypeVar("T")


async def run_blocking(func: Callable[..., T], *args: Any) -> T:
    """A blocking storage call in the loop's executor. Every driver's blocking work goes through
    here, so this is where a full disk is recognised and raised as `StorageFull`."""
    try:
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(func, *args))
    except OSError as err:
        if err.errno in FULL_ERRNOS and not isinstance(err, StorageFull):
            raise StorageFull.of(err) from err
        raise


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


class PathNotFound(Exception):
    """The path does not exist; stores turn this into the right OCI error."""


class FileBusy(Exception):
    """Another writer (of this process or another) has the file open for appending."""


@dataclass(frozen=True)
class FileInfo:
    """`mtime` is the last write or `touch`: the store's clock for gc's grace period, the last
    pull of a mirrored manifest and the last validation of a tag, so every driver keeps it."""

    path: str  # relative to the driver's root, as given to `stat` or found by `walk`
    size: int
    mtime: float


class FileWriter(abc.ABC):
    """An append-only file whose bytes only become visible elsewhere through `Driver.move`."""

    size: int

    @abc.abstractmethod
    async def write(self, chunk: bytes, hasher: Hasher | None = None) -> None:
        """Append; `hasher` is fed in the same worker hop, so hashing never blocks the loop."""

    @abc.abstractmethod
    async def truncate(self, size: int) -> None:
        """Cut the file back to `size` bytes: a chunk refused or failed half-way is not kept."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush to stable storage so that a later `move` publishes complete bytes."""


class SerialFileWriter(FileWriter):
    """A writer whose operations run in a worker thread, one at a time and in order, even after
    a caller gave up waiting: a write whose caller was cancelled still runs to its end, and
    `close` waits for it, so a file is never closed (and its upload session never handed to
    another writer) while a write into it is going on. Drivers supply the blocking steps."""

    _pending: asyncio.Future[None] | None = None

    @abc.abstractmethod
    def _append(self, chunk: bytes, hasher: Hasher | None) -> None:
        """Blocking: append all of `chunk`, keep `size` true, feed `hasher` once it is stored."""

    @abc.abstractmethod
    def _cut(self, size: int) -> None:
        """Blocking: truncate to `size` bytes."""

    @abc.abstractmethod
    async def _release(self) -> None:
        """Flush and let go of the file; called once, after every operation settled."""

    async def write(self, chunk: bytes, hasher: Hasher | None = None) -> None:
        await self._in_worker(self._append, chunk, hasher)

    async def truncate(self, size: int) -> None:
        await self._in_worker(self._cut, size)

    async def close(self) -> None:
        await asyncio.shield(self._close())

    async def _close(self) -> None:
        await self._settled()
        await self._release()

    async def _in_worker(self, func: Callable[..., None], *args: Any) -> None:
        await self._settled()
        self._pending = asyncio.ensure_future(run_blocking(func, *args))
        await asyncio.shield(self._pending)

    async def _settled(self) -> None:
        if self._pending is not None:
            await asyncio.wait([self._pending])
            self._pending = None


class Driver(abc.ABC):
    @abc.abstractmethod
    async def read(self, path: str) -> bytes: ...

    @abc.abstractmethod
    def read_at(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """The bytes from `offset`, `length` of them or up to the end, in pieces of the driver's
        choosing: a blob is never held whole in memory. Fewer bytes than asked when the file
        is shorter; PathNotFound (on the first iteration) when there is no such file."""

    @abc.abstractmethod
    async def read_small(self, path: str) -> bytes:
        """A file of a few hundred bytes (a link, a tag), on the hot path of every pull."""

    @abc.abstractmethod
    async def write(self, path: str, data: bytes) -> None:
        """Replace the file atomically: temporary file, fsync, rename."""

    @abc.abstractmethod
    async def stat(self, path: str) -> FileInfo:
        """A file, or a folder on drivers that have folders (its mtime tells when an entry
        was added or removed); PathNotFound otherwise."""

    @abc.abstractmethod
    async def exists(self, path: str) -> bool: ...

    @abc.abstractmethod
    async def list(self, path: str) -> list[str]:
        """Names directly below a folder; empty when the folder does not exist."""

    @abc.abstractmethod
    def walk(self, prefix: str) -> AsyncIterator[FileInfo]:
        """Every file below the folder `prefix` ("" for the whole store), at any depth,
        temporary files of atomic writes included, in no particular order; nothing when the
        folder does not exist. gc and verify visit every file of a store with it, so a driver
        fetches many entries per round trip (a worker-thread hop, a listing request)."""

    @abc.abstractmethod
    async def prune(self, folder: str) -> None:
        """Remove the folder if it is empty, so that removed content leaves no empty folders
        behind; nothing when it holds something, is gone, or the driver has no folders."""

    @abc.abstractmethod
    async def delete(self, path: str) -> None:
        """Remove a file or a whole folder; missing paths are not an error."""

    @abc.abstractmethod
    async def move(self, source: str, destination: str) -> None:
        """Publish a finished file atomically under a new path."""

    @abc.abstractmethod
    async def touch(self, path: str) -> bool:
        """Set the modification time to now; False when the path does not exist."""

    @abc.abstractmethod
    async def append(self, path: str, *, create: bool = False) -> FileWriter:
        """Open for appending; an existing file only unless `create`, so that a writer that
        comes late never brings back a file that was published or removed meanwhile. The
        writer is exclusive until closed, across processes too: FileBusy while another has it."""

    def local_path(self, path: str) -> str | None:
        """A path the OS can open, or None for storage without local files. For callers that
        still open files themselves; new code asks for `open_local`."""
        return None

    def open_local(self, path: str, offset: int = 0) -> IO[bytes] | None:
        """Fast path: the file opened for reading and positioned at `offset`, for sendfile or a
        bulk read in one worker hop; None when the driver has no local files (then `read_at`).
        PathNotFound when there is no such file. The caller closes it."""
        return None

    async def redirect_url(self, path: str, *, expires_in: float = 900.0) -> str | None:
        """Fast path: a URL a client may GET the file from directly for `expires_in` seconds
        (a presigned object-store URL); None when bytes must go through the registry."""
        return None
