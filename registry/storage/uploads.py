"""Upload sessions: bytes stream to `uploads/<id>/data`, hashed as they arrive.

The running hash lives in this process only (hash objects cannot be shared); the data file is the
truth. When the two disagree (a restart, another replica took a chunk) the file is re-hashed once
on completion. Nothing becomes visible until the digest is verified and the file is moved.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..bytestreams import hash_file
from ..errors import RegistryError
from ..reference import ALGORITHMS, Digest
from . import paths
from .blobs import ContentStore, LinkedBlobStore
from .driver.base import FileWriter, PathNotFound
from .protocols import Descriptor

UPLOAD_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class RunningHash:
    hasher: Any
    offset: int


class RunningHashes:
    """Per-process hash state of sessions in flight, keyed by upload id."""

    def __init__(self) -> None:
        self._by_id: dict[str, RunningHash] = {}
        self._writing: set[str] = set()

    def claim(self, upload_id: str) -> None:
        """One writer per session at a time: two interleaved writers would feed the hash in
        one order and the file in another, and bytes unlike their digest could be stored."""
        if upload_id in self._writing:
            raise RegistryError("RANGE_INVALID", "another request is writing to this upload session",
                                {"uuid": upload_id})
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
    """One session; `write` appends, `commit` verifies and publishes, `cancel` forgets."""

    def __init__(self, store: LocalUploadStore, upload_id: str, algorithm: str, file: FileWriter) -> None:
        self.store = store
        self.id = upload_id
        self.algorithm = algorithm
        self.file = file
        self.claimed = False

    @property
    def offset(self) -> int:
        return self.file.size

    async def write(self, chunk: bytes) -> None:
        if not self.claimed:
            self.store.hashes.claim(self.id)
            self.claimed = True
        running = self.store.hashes.get(self.id, self.algorithm, self.file.size)
        await self.file.write(chunk, running.hasher if running else None)
        if running is not None:
            running.offset += len(chunk)

    async def close(self) -> None:
        await self.file.close()
        if self.claimed:
            self.store.hashes.release(self.id)
            self.claimed = False

    async def commit(self, digest: Digest) -> Descriptor:
        """Verify, publish, then link: the repository serves the blob only once it is whole."""
        size = await self.publish(digest)
        return await self.store.blobs.link(digest, size)

    async def publish(self, digest: Digest) -> int:
        """Verify and move the bytes into the content store, linked to no repository yet."""
        if not self.claimed:
            self.store.hashes.claim(self.id)
            self.claimed = True
        await self.file.close()
        self.file.size = (await self.store.content.driver.stat(paths.upload_data(self.id))).size
        actual = await self._digest_of_data(digest.algorithm)
        if actual != digest.hex:
            await self.cancel()
            raise RegistryError("DIGEST_INVALID", detail={"expected": str(digest),
                                                          "actual": f"{digest.algorithm}:{actual}"})
        size = self.file.size
        content = self.store.content
        if not await content.renew(digest):
            await content.ingest(paths.upload_data(self.id), digest)
        await self.cancel()
        return size

    async def _digest_of_data(self, algorithm: str) -> str:
        running = self.store.hashes.get(self.id, self.algorithm, self.file.size)
        if running is not None and algorithm == self.algorithm:
            return str(running.hasher.hexdigest())
        path = self.store.content.driver.local_path(paths.upload_data(self.id))
        assert path is not None, "re-hashing needs a local driver"
        return await asyncio.get_running_loop().run_in_executor(None, hash_file, path, algorithm)

    async def cancel(self) -> None:
        await self.close()
        self.store.hashes.drop(self.id)
        await self.store.content.driver.delete(paths.upload_dir(self.id))


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
        await self.content.driver.write(paths.upload_state(upload_id), json.dumps(state).encode())
        return await self._open(upload_id, algorithm)

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
        return await self._open(upload_id, state["algorithm"])

    async def _open(self, upload_id: str, algorithm: str) -> LocalUpload:
        try:
            file = await self.content.driver.append(paths.upload_data(upload_id))
        except PathNotFound:  # finished or cancelled since its state was read
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": upload_id}) from None
        return LocalUpload(self, upload_id, algorithm, file)
