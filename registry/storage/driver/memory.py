"""A driver that keeps every file in this process's memory: no local files, no folders.

It exists so that the driver suite and the store suite prove the store needs nothing but the
driver interface (no local paths, no folders, no `os` calls), and it gives tests a store whose
clock they can set (`set_mtime`) instead of sleeping through a grace period. Folders are implied
by the paths of the files in them, as in an object store.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from .base import Driver, FileBusy, FileInfo, Hasher, PathNotFound, SerialFileWriter

READ_CHUNK = 1024 * 1024


@dataclass
class _File:
    data: bytearray
    mtime: float
    writing: bool = field(default=False)


class MemoryFileWriter(SerialFileWriter):
    """Appends in a worker thread, like the filesystem's writer, so a hasher fed here never
    blocks the loop."""

    def __init__(self, driver: MemoryDriver, file: _File) -> None:
        self._driver = driver
        self._file: _File | None = file
        self.size = len(file.data)

    def _append(self, chunk: bytes, hasher: Hasher | None) -> None:
        file = self._open()
        file.data += chunk
        file.mtime = self._driver.now()
        self.size = len(file.data)
        if hasher is not None:
            hasher.update(chunk)

    def _cut(self, size: int) -> None:
        file = self._open()
        del file.data[size:]
        file.mtime = self._driver.now()
        self.size = len(file.data)

    def _open(self) -> _File:
        assert self._file is not None, "use after close"
        return self._file

    async def _release(self) -> None:
        if self._file is not None:
            self._file.writing = False
            self._file = None


class MemoryDriver(Driver):
    """Files by path. Listing scans every path, which is fine for the stores tests build."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self._files: dict[str, _File] = {}

    def set_mtime(self, path: str, mtime: float) -> None:
        """For tests: pretend the file was last written or touched at `mtime`."""
        self._get(path).mtime = mtime

    def _get(self, path: str) -> _File:
        try:
            return self._files[path]
        except KeyError:
            raise PathNotFound(path) from None

    def _below(self, folder: str) -> list[str]:
        """Paths of every file under `folder` ("" for all), sorted."""
        start = f"{folder.rstrip('/')}/" if folder else ""
        return sorted(path for path in self._files if path.startswith(start))

    def _is_folder(self, path: str) -> bool:
        start = f"{path}/"
        return any(name.startswith(start) for name in self._files)

    async def read(self, path: str) -> bytes:
        return bytes(self._get(path).data)

    async def read_small(self, path: str) -> bytes:
        return bytes(self._get(path).data)

    async def read_at(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        data = self._get(path).data
        end = len(data) if length is None else min(len(data), offset + length)
        while offset < end:
            piece = bytes(data[offset:min(end, offset + READ_CHUNK)])
            offset += len(piece)
            yield piece

    async def write(self, path: str, data: bytes) -> None:
        self._files[path] = _File(bytearray(data), self.now())

    async def stat(self, path: str) -> FileInfo:
        file = self._get(path)
        return FileInfo(path, len(file.data), file.mtime)

    async def exists(self, path: str) -> bool:
        return path in self._files or self._is_folder(path)

    async def list(self, path: str) -> list[str]:
        start = len(path.rstrip("/")) + 1 if path else 0
        return sorted({name[start:].split("/", 1)[0] for name in self._below(path)})

    async def walk(self, prefix: str) -> AsyncIterator[FileInfo]:
        for path in self._below(prefix):
            file = self._files.get(path)
            if file is not None:  # removed while the walk was paused at a yield
                yield FileInfo(path, len(file.data), file.mtime)

    async def prune(self, folder: str) -> None:
        """A folder exists only while a file is in it: there is nothing to remove."""

    async def delete(self, path: str) -> None:
        for name in [path, *self._below(path)]:
            self._files.pop(name, None)

    async def move(self, source: str, destination: str) -> None:
        """Like a rename: the file keeps its modification time."""
        self._files[destination] = self._get(source)
        del self._files[source]

    async def touch(self, path: str) -> bool:
        file = self._files.get(path)
        if file is None:
            return False
        file.mtime = self.now()
        return True

    async def append(self, path: str, *, create: bool = False) -> MemoryFileWriter:
        """The folder must hold a file already (a session's state): see `Driver.append`."""
        file = self._files.get(path)
        if file is None:
            folder = path.rpartition("/")[0]
            if not create or (folder and not self._is_folder(folder)):
                raise PathNotFound(path)
            file = self._files[path] = _File(bytearray(), self.now())
        if file.writing:
            raise FileBusy(path)
        file.writing = True
        return MemoryFileWriter(self, file)
