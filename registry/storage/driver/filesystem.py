"""The default driver: a folder on the local file system.

Reads and writes of content run in the loop's default executor, so a slow disk never stalls
other requests. Metadata-sized operations (a stat, a link or tag of a few hundred bytes) run
inline: they are served from the kernel's caches in microseconds, and the hop to a worker
thread would cost ten times that on every request.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from .base import Driver, FileInfo, FileWriter, Hasher, PathNotFound

T = TypeVar("T")


async def _run(func: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, partial(func, *args))


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: str, data: bytes) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(folder)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
        raise PathNotFound(path) from err


def _stat(path: str) -> FileInfo:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError) as err:
        raise PathNotFound(path) from err
    return FileInfo(st.st_size, st.st_mtime)


def _list(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _delete(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _touch(path: str) -> bool:
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def _move(source: str, destination: str) -> None:
    folder = os.path.dirname(destination)
    os.makedirs(folder, exist_ok=True)
    try:
        os.replace(source, destination)
    except FileNotFoundError as err:
        raise PathNotFound(source) from err
    _fsync_dir(folder)


class SmallFiles:
    """Links and tags, remembered with the identity of the file they were read from.

    One stat tells whether a remembered copy is still the file: every write is a rename of a new
    file, which changes the inode, so a copy is never served after the file was replaced or
    removed, whichever process did it. A stat is one syscall; open, read and close are four.
    """

    LIMIT = 65536

    def __init__(self) -> None:
        self._copies: OrderedDict[str, tuple[tuple[int, int, int], bytes]] = OrderedDict()

    def read(self, full: str) -> bytes:
        try:
            st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError) as err:
            raise PathNotFound(full) from err
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        copy = self._copies.get(full)
        if copy is not None and copy[0] == identity:
            self._copies.move_to_end(full)
            return copy[1]
        data = _read(full)
        self._copies[full] = (identity, data)
        if len(self._copies) > self.LIMIT:
            self._copies.popitem(last=False)
        return data


class LocalFileWriter(FileWriter):
    """Appends with one executor hop per chunk; callers batch chunks to keep hops rare."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.size: int = handle.tell()

    async def write(self, chunk: bytes, hasher: Hasher | None = None) -> None:
        await _run(self._write, chunk, hasher)
        self.size += len(chunk)

    def _write(self, chunk: bytes, hasher: Hasher | None) -> None:
        if hasher is not None:
            hasher.update(chunk)
        view = memoryview(chunk)
        while view:
            written = self._handle.write(view)
            view = view[written:]

    async def close(self) -> None:
        await _run(self._close)

    def _close(self) -> None:
        if self._handle.closed:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()


def _open_append(path: str) -> Any:
    """The folder must exist: a session's folder is made when it starts and removed when it
    ends, and appending must not bring an ended one back."""
    return open(path, "ab", buffering=0)


class FilesystemDriver(Driver):
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self._small = SmallFiles()

    def _full(self, path: str) -> str:
        return os.path.join(self.root, path)

    def local_path(self, path: str) -> str:
        return self._full(path)

    async def read(self, path: str) -> bytes:
        return await _run(_read, self._full(path))

    async def write(self, path: str, data: bytes) -> None:
        await _run(_write_atomic, self._full(path), data)

    async def stat(self, path: str) -> FileInfo:
        return await _run(_stat, self._full(path))

    async def read_small(self, path: str) -> bytes:
        return self._small.read(self._full(path))

    async def exists(self, path: str) -> bool:
        return os.path.exists(self._full(path))  # noqa: ASYNC240 - one stat, cheaper than a hop

    async def list(self, path: str) -> list[str]:
        return await _run(_list, self._full(path))

    async def delete(self, path: str) -> None:
        await _run(_delete, self._full(path))

    async def move(self, source: str, destination: str) -> None:
        await _run(_move, self._full(source), self._full(destination))

    async def touch(self, path: str) -> bool:
        return await _run(_touch, self._full(path))

    async def append(self, path: str) -> LocalFileWriter:
        try:
            handle = await _run(_open_append, self._full(path))
        except OSError as err:
            if err.errno == errno.ENOENT:
                raise PathNotFound(path) from err
            raise
        return LocalFileWriter(handle)
