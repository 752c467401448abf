"""The default driver: a folder on the local file system.

Reads and writes of content run in the loop's default executor, so a slow disk never stalls
other requests. Metadata-sized operations (a stat, a link or tag of a few hundred bytes) run
inline: they are served from the kernel's caches in microseconds, and the hop to a worker
thread would cost ten times that on every request.

`durable=False` skips every fsync: writes stay atomic for readers of this machine but may be
lost in a power cut. Only for tests, where fsync dominates the time of small requests.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from itertools import islice
from typing import IO

from .base import Driver, FileBusy, FileInfo, Hasher, PathNotFound, SerialFileWriter, run_blocking

TMP_PREFIX = ".tmp-"  # atomic writes in progress, or cut short: gc removes old ones
READ_CHUNK = 1024 * 1024
WALK_BATCH = 4096  # files found per worker hop: a store of 100k blobs is walked in ~25 hops


_run = run_blocking


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: str, data: bytes, durable: bool) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=TMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if durable:
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


def _stat(path: str, relative: str) -> FileInfo:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError) as err:
        raise PathNotFound(path) from err
    return FileInfo(relative, st.st_size, st.st_mtime)


def _open_read(path: str, offset: int) -> IO[bytes]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - handed to the caller, who closes it
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
        raise PathNotFound(path) from err
    if offset:
        handle.seek(offset)
    return handle


def _files_below(root: str, prefix: str) -> Iterator[FileInfo]:
    """Blocking: every file under `root/prefix`, depth first; entries that vanish while the
    walk goes (gc and the server run at once) are skipped, as are symlinked folders."""
    folders = [os.path.join(root, prefix) if prefix else root]
    cut = len(os.path.join(root, ""))  # what every path found starts with; slicing is 10x cheaper than relpath
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                    continue
                st = entry.stat()
            except FileNotFoundError:
                continue
            yield FileInfo(entry.path[cut:], st.st_size, st.st_mtime)


def _batch(found: Iterator[FileInfo]) -> list[FileInfo]:
    return list(islice(found, WALK_BATCH))


def _prune(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:  # not empty, gone already, or no folder
        pass


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


def _move(source: str, destination: str, durable: bool) -> None:
    folder = os.path.dirname(destination)
    os.makedirs(folder, exist_ok=True)
    try:
        os.replace(source, destination)
    except FileNotFoundError as err:
        raise PathNotFound(source) from err
    if durable:
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


class LocalFileWriter(SerialFileWriter):
    """Appends with one executor hop per chunk; callers batch chunks to keep hops rare."""

    def __init__(self, fd: int, durable: bool = True) -> None:
        self._fd: int | None = fd
        self.size: int = os.fstat(fd).st_size
        self._durable = durable

    def _append(self, chunk: bytes, hasher: Hasher | None) -> None:
        """The hasher sees the chunk only once all of it is on disk: a failed write leaves the
        hash and the file disagreeing on size, which makes the upload re-hash its file."""
        assert self._fd is not None, "write after close"
        view = memoryview(chunk)
        while view:
            written = os.write(self._fd, view)
            self.size += written
            view = view[written:]
        if hasher is not None:
            hasher.update(chunk)

    def _cut(self, size: int) -> None:
        assert self._fd is not None, "truncate after close"
        os.ftruncate(self._fd, size)
        self.size = size

    async def _release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            await _run(_fsync_close, fd, self._durable)


def _fsync_close(fd: int, durable: bool) -> None:
    try:
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def _open_append(path: str, create: bool) -> int:
    """The folder must exist: a session's folder is made when it starts and removed when it
    ends, and appending must not bring an ended one back. The lock (flock, on the file itself,
    so it follows the file through a rename) keeps out writers of other processes as well."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | (os.O_CREAT if create else 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FileBusy(path) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


class FilesystemDriver(Driver):
    def __init__(self, root: str, *, durable: bool = True) -> None:
        self.root = os.path.abspath(root)
        self.durable = durable
        os.makedirs(self.root, exist_ok=True)
        self._small = SmallFiles()

    def _full(self, path: str) -> str:
        return os.path.join(self.root, path)

    def local_path(self, path: str) -> str:
        return self._full(path)

    def open_local(self, path: str, offset: int = 0) -> IO[bytes]:
        """Inline, like the stat before it: opening a cached inode costs less than a hop."""
        return _open_read(self._full(path), offset)

    async def read(self, path: str) -> bytes:
        return await _run(_read, self._full(path))

    async def read_at(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        handle = await _run(_open_read, self._full(path), 0)
        try:
            remaining = length
            while remaining is None or remaining > 0:
                size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = await _run(os.pread, handle.fileno(), size, offset)
                if not chunk:
                    return
                offset += len(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def write(self, path: str, data: bytes) -> None:
        await _run(_write_atomic, self._full(path), data, self.durable)

    async def stat(self, path: str) -> FileInfo:
        return await _run(_stat, self._full(path), path)

    async def walk(self, prefix: str) -> AsyncIterator[FileInfo]:
        found = _files_below(self.root, prefix)
        while batch := await _run(_batch, found):
            for info in batch:
                yield info

    async def prune(self, folder: str) -> None:
        await _run(_prune, self._full(folder))

    async def read_small(self, path: str) -> bytes:
        return self._small.read(self._full(path))

    async def exists(self, path: str) -> bool:
        return os.path.exists(self._full(path))  # noqa: ASYNC240 - one stat, cheaper than a hop

    async def list(self, path: str) -> list[str]:
        return await _run(_list, self._full(path))

    async def delete(self, path: str) -> None:
        await _run(_delete, self._full(path))

    async def move(self, source: str, destination: str) -> None:
        await _run(_move, self._full(source), self._full(destination), self.durable)

    async def touch(self, path: str) -> bool:
        return await _run(_touch, self._full(path))

    async def append(self, path: str, *, create: bool = False) -> LocalFileWriter:
        try:
            fd = await _run(_open_append, self._full(path), create)
        except OSError as err:
            if err.errno == errno.ENOENT:
                raise PathNotFound(path) from err
            raise
        return LocalFileWriter(fd, self.durable)
