"""Upload sessions: bytes stream to `uploads/<id>/data`, hashed as they arrive.

The running hash lives in this process only (hash objects cannot be shared); the data file is the
truth. When the two disagree (a restart, another replica took a chunk) the file is re-hashed once
on completion. Nothing becomes visible until the digest is verified and the file is moved.

A session has one writer at a time: a request claims it before it opens the file and gives the
claim up only once the file is closed, and publishing happens under the claim, so no bytes can
reach a file after it was verified. Sessions are counted against `uploads.max_sessions`, and
ones idle past `uploads.expiry` are removed with their bytes (`expire_sessions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import RegistryError
from ..reference import ALGORITHMS, Digest
from . import paths
from .blobs import ContentStore, LinkedBlobStore
from .driver.base import Driver, FileBusy, FileWriter, PathNotFound
from .hashing import digest_of
from .protocols import Descriptor

UPLOAD_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _busy(upload_id: str) -> RegistryError:
    return RegistryError("RANGE_INVALID", "another request is writing to this upload session", {"uuid": upload_id})


@dataclass
class RunningHash:
    hasher: Any
    offset: int


class RunningHashes:
    """Per-process state of sessions in flight: running hashes, writers, and which sessions
    exist, so that starting one is checked against `limit` without listing a folder."""

    def __init__(self) -> None:
        self._by_id: dict[str, RunningHash] = {}
        self._writing: set[str] = set()
        self._live: set[str] | None = None  # None until counted from the disk once
        self.limit: int | None = None  # set by the app from `uploads.max_sessions`

    def writing(self, upload_id: str) -> bool:
        return upload_id in self._writing

    async def admit(self, upload_id: str, driver: Driver) -> None:
        """Count a new session, or refuse it past the limit. The first count lists the
        sessions on disk, so one left from before a restart counts too."""
        if self._live is None:
            found = set(await driver.list(paths.UPLOADS))
            if self._live is None:
                self._live = found
        if self.limit is not None and len(self._live) >= self.limit:
            raise RegistryError("TOOMANYREQUESTS", f"too many upload sessions in progress (at most "
                                f"{self.limit}); finish or cancel one, or retry later", {"limit": self.limit})
        self._live.add(upload_id)

    def recount(self, on_disk: set[str]) -> None:
        """Sessions others removed (gc, another process) stop counting; theirs start."""
        self._live = set(on_disk)

    def forget(self, upload_id: str) -> None:
        if self._live is not None:
            self._live.discard(upload_id)

    def claim(self, upload_id: str) -> None:
        """One writer per session at a time: two interleaved writers would feed the hash in
        one order and the file in another, and bytes unlike their digest could be stored."""
        if upload_id in self._writing:
            raise _busy(upload_id)
        self._writing.add(upload_id)

    def release(self, upload_id: str) -> None:
        self._writing.discard(upload_id)

    def get(self, upload_id: str, algorithm: str, offset: int) -> RunningHash | None:
        """The running hash if it covers exactly the bytes on disk; None means re-hash later."""
        running = self._by_id.get(upload_id)
        if running is None and offset == 0:
            running = self._by_id[upload_id] = RunningHash(hashlib.new(algorithm), 0)
        if running is not None and running.offset != offset:
            self.drop(upload_id)
            return None
        return running

    def drop(self, upload_id: str) -> None:
        self._by_id.pop(upload_id, None)


class LocalUpload:
    """One session; `write` appends, `commit` verifies and publishes, `cancel` forgets.

    The session's file is opened only under its claim, and closed before the claim goes: a
    request that merely resumed the session (a PATCH whose body has not arrived yet) holds no
    file, so it cannot append to bytes another request verified and published meanwhile.
    """

    def __init__(self, store: LocalUploadStore, upload_id: str, algorithm: str, size: int) -> None:
        self.store = store
        self.id = upload_id
        self.algorithm = algorithm
        self.file: FileWriter | None = None
        self._size = size
        self._abandoned: asyncio.Future[None] | None = None

    @property
    def offset(self) -> int:
        return self.file.size if self.file is not None else self._size

    async def _open(self) -> FileWriter:
        """Claim, then open the file as it is now (another request may have grown it)."""
        if self.file is not None:
            return self.file
        self.store.hashes.claim(self.id)
        opening = asyncio.ensure_future(self.store.content.driver.append(paths.upload_data(self.id)))
        try:
            self.file = await asyncio.shield(opening)
        except asyncio.CancelledError:  # the file may open yet: the claim goes once it is closed
            self._abandoned = asyncio.ensure_future(self._close_abandoned(opening))
            raise
        except PathNotFound:  # finished or cancelled since it was resumed
            self.store.hashes.release(self.id)
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": self.id}) from None
        except FileBusy:  # a writer of another process sharing the storage
            self.store.hashes.release(self.id)
            raise _busy(self.id) from None
        except BaseException:
            self.store.hashes.release(self.id)
            raise
        return self.file

    async def _close_abandoned(self, opening: asyncio.Future[FileWriter]) -> None:
        """Nothing was opened, or nothing was written: failures here lose nothing."""
        try:
            with contextlib.suppress(Exception):
                await (await opening).close()
        finally:
            self.store.hashes.release(self.id)

    async def claim(self) -> None:
        await self._open()

    async def truncate(self, offset: int) -> None:
        """The running hash covers the dropped bytes too: forget it, re-hash on completion."""
        file = await self._open()
        if file.size > offset:
            self.store.hashes.drop(self.id)
            await file.truncate(offset)

    async def write(self, chunk: bytes) -> None:
        file = await self._open()
        running = self.store.hashes.get(self.id, self.algorithm, file.size)
        await file.write(chunk, running.hasher if running else None)
        if running is not None:
            running.offset += len(chunk)

    async def close(self) -> None:
        """Close the file, then give up the claim; runs to its end even if cancelled."""
        await asyncio.shield(self._close())

    async def _close(self) -> None:
        file, self.file = self.file, None
        if file is None:
            return
        try:
            await file.close()
        finally:
            self._size = file.size
            self.store.hashes.release(self.id)

    async def commit(self, digest: Digest) -> Descriptor:
        """Verify, publish, then link: the repository serves the blob only once it is whole."""
        size = await self.publish(digest)
        return await self.store.blobs.link(digest, size)

    async def publish(self, digest: Digest) -> int:
        """Verify and move the bytes into the content store, linked to no repository yet. The
        claim is held throughout, so no other request of this process writes to the file."""
        file = await self._open()
        await file.close()
        size = (await self.store.content.driver.stat(paths.upload_data(self.id))).size
        actual = await self._digest_of_data(digest.algorithm, size)
        if actual != digest.hex:
            await self.cancel()
            raise RegistryError("DIGEST_INVALID", detail={"expected": str(digest),
                                                          "actual": f"{digest.algorithm}:{actual}"})
        await self.store.content.publish(paths.upload_data(self.id), digest, size)
        await self.cancel()
        return size

    async def _digest_of_data(self, algorithm: str, size: int) -> str:
        running = self.store.hashes.get(self.id, self.algorithm, size)
        if running is not None and algorithm == self.algorithm:
            return str(running.hasher.hexdigest())
        return await digest_of(self.store.content.driver, paths.upload_data(self.id), algorithm)

    async def cancel(self) -> None:
        """The folder goes before the claim: whoever claims next finds the session gone. It
        goes even when closing the file fails (a full disk), since its bytes are not wanted,
        and when the request is cancelled meanwhile."""
        await asyncio.shield(self._cancel())

    async def _cancel(self) -> None:
        file, self.file = self.file, None
        try:
            if file is not None:
                await file.close()
        finally:
            try:
                self.store.hashes.drop(self.id)
                await self.store.content.driver.delete(paths.upload_dir(self.id))
                self.store.hashes.forget(self.id)
            finally:
                if file is not None:
                    self.store.hashes.release(self.id)


class LocalUploadStore:
    """Sessions of one repository; a session id from another repository is unknown here."""

    def __init__(self, content: ContentStore, name: str, blobs: LinkedBlobStore, hashes: RunningHashes) -> None:
        self.content = content
        self.name = name
        self.blobs = blobs
        self.hashes = hashes

    async def start(self, algorithm: str = "sha256") -> LocalUpload:
        if algorithm not in ALGORITHMS:
            raise RegistryError("UNSUPPORTED", f"unsupported digest algorithm {algorithm}", status=400)
        upload_id = str(uuid.uuid4())
        state = {"name": self.name, "algorithm": algorithm, "started": time.time()}
        driver = self.content.driver
        await self.hashes.admit(upload_id, driver)
        try:
            await driver.write(paths.upload_state(upload_id), json.dumps(state).encode())
            await (await driver.append(paths.upload_data(upload_id), create=True)).close()
        except BaseException:  # a full disk: no empty folder is left behind
            await driver.delete(paths.upload_dir(upload_id))
            self.hashes.forget(upload_id)
            raise
        return LocalUpload(self, upload_id, algorithm, 0)

    async def resume(self, upload_id: str) -> LocalUpload:
        unknown = RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": upload_id[:100]})
        if not UPLOAD_ID_RE.fullmatch(upload_id):
            raise unknown
        try:
            state = json.loads(await self.content.driver.read(paths.upload_state(upload_id)))
        except PathNotFound:
            raise unknown from None
        if state.get("name") != self.name:
            raise unknown
        try:
            size = (await self.content.driver.stat(paths.upload_data(upload_id))).size
        except PathNotFound:  # finished or cancelled since its state was read
            raise unknown from None
        return LocalUpload(self, upload_id, state["algorithm"], size)


async def expire_sessions(driver: Driver, hashes: RunningHashes, expiry: float) -> int:
    """Remove sessions idle longer than `expiry` with their bytes (a client that went away, a
    fill killed with its process); returns how many went. A session being written is never
    idle, and is claimed here while it goes, so no request starts writing meanwhile."""
    on_disk = set(await driver.list(paths.UPLOADS))
    hashes.recount(on_disk)
    now, removed = time.time(), 0
    for upload_id in on_disk:
        if hashes.writing(upload_id) or now - await _last_change(driver, upload_id) <= expiry:
            continue
        try:
            hashes.claim(upload_id)
        except RegistryError:
            continue
        try:
            await driver.delete(paths.upload_dir(upload_id))
            hashes.drop(upload_id)
            hashes.forget(upload_id)
            removed += 1
        finally:
            hashes.release(upload_id)
    return removed


async def _last_change(driver: Driver, upload_id: str) -> float:
    """The newest mtime of the session's files and, on drivers with folders, of its folder (an
    entry added or removed); now when it is gone already."""
    folder = paths.upload_dir(upload_id)
    changed = [info.mtime async for info in driver.walk(folder)]
    with contextlib.suppress(PathNotFound):
        changed.append((await driver.stat(folder)).mtime)
    return max(changed, default=time.time())
