"""Blobs: one content store shared by every repository, and per-repository links into it.

A layer pushed to ten repositories is stored once; each repository holds a small link that
says it may serve it. Content is written before any link to it, so a link never dangles after
a crash.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ..errors import RegistryError
from ..reference import Digest
from . import paths
from .driver.base import Driver, PathNotFound
from .memo import ContentMemo
from .protocols import Descriptor, Repository

OCTET_STREAM = "application/octet-stream"


@dataclass
class LocalBlob:
    """A blob in the content store: sent from `path` with sendfile where the driver has local
    files, else streamed from the driver with `chunks`."""

    size: int
    path: str | None
    driver: Driver | None = None
    location: str = ""  # the driver's path of the bytes

    def chunks(self, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """For consumers that cannot sendfile: the driver's `read_at`."""
        assert self.driver is not None, "a LocalBlob made from a local path alone is sent with sendfile"
        return self.driver.read_at(self.location, offset, self.size - offset if length is None else length)


class ContentStore:
    """Bytes by digest. Knows nothing of repositories."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.memo = ContentMemo()

    async def size(self, digest: Digest) -> int:
        return (await self.driver.stat(paths.blob_data(digest))).size

    async def exists(self, digest: Digest) -> bool:
        return await self.driver.exists(paths.blob_data(digest))

    async def read(self, digest: Digest) -> bytes:
        """Whole content (manifests): remembered, since the same bytes are asked for again."""
        data = self.memo.get(digest)
        if data is None:
            data = await self.driver.read(paths.blob_data(digest))
            if Digest.of(data, digest.algorithm) != digest:
                raise RegistryError("BLOB_UNKNOWN", f"stored content of {digest} is corrupted; "
                                    "run `ocireg verify --repair`", {"digest": str(digest)})
            self.memo.put(digest, data)
        return data

    async def put(self, digest: Digest, data: bytes) -> None:
        """Content is immutable: a second writer of the same digest only renews its age, which
        keeps gc's grace period from removing content that is being reused right now."""
        if not await self.holds(digest, len(data)):
            await self.driver.write(paths.blob_data(digest), data)

    async def holds(self, digest: Digest, size: int) -> bool:
        """Stored content of the right size, renewed; False when it is missing or of another
        size, which no writer of this digest could have made: it is to be replaced."""
        try:
            if (await self.driver.stat(paths.blob_data(digest))).size != size:
                return False
        except PathNotFound:
            return False
        return await self.renew(digest)

    async def publish(self, source: str, digest: Digest, size: int) -> None:
        """Publish a verified upload file of `size` bytes, unless the store already holds it."""
        if not await self.holds(digest, size):
            await self.ingest(source, digest)

    async def renew(self, digest: Digest) -> bool:
        """Mark stored content as in use now (gc spares it for a grace period); False when
        the content is not stored, or gc took it a moment ago."""
        return await self.driver.touch(paths.blob_data(digest))

    async def ingest(self, source: str, digest: Digest) -> None:
        """Publish a finished, verified upload file under its digest."""
        await self.driver.move(source, paths.blob_data(digest))

    def blob(self, digest: Digest, size: int) -> LocalBlob:
        """What a GET sends for stored content of `size` bytes: no I/O, the caller checked."""
        location = paths.blob_data(digest)
        return LocalBlob(size, self.driver.local_path(location), self.driver, location)

    def local_path(self, digest: Digest) -> str | None:
        return self.driver.local_path(paths.blob_data(digest))

    def path(self, digest: Digest) -> str:
        """For tools that read files directly (export, verify): a local driver is required."""
        local = self.local_path(digest)
        if local is None:
            raise RuntimeError("this operation needs a storage driver with local files")
        return local


class Links:
    """Descriptor files that say which content a repository may serve."""

    def __init__(self, driver: Driver, path_of: Callable[[Digest], str], unknown: str) -> None:
        self.driver = driver
        self.path_of = path_of
        self.unknown = unknown

    async def get(self, digest: Digest) -> Descriptor:
        try:
            raw = await self.driver.read_small(self.path_of(digest))
        except PathNotFound:
            raise RegistryError(self.unknown, detail={"digest": str(digest)}) from None
        return Descriptor.from_json(json.loads(raw))

    async def exists(self, digest: Digest) -> bool:
        return await self.driver.exists(self.path_of(digest))

    async def put(self, descriptor: Descriptor) -> None:
        await self.driver.write(self.path_of(descriptor.digest), json.dumps(descriptor.to_json()).encode())

    async def delete(self, digest: Digest) -> None:
        if not await self.exists(digest):
            raise RegistryError(self.unknown, detail={"digest": str(digest)})
        await self.driver.delete(self.path_of(digest))

    async def touch(self, digest: Digest) -> bool:
        """Renew the link: a manifest PUT relying on it, or a pull through the mirror (gc evicts
        by it), tells gc it is in use now. False when there is no such link."""
        return await self.driver.touch(self.path_of(digest))


class LinkedBlobStore:
    """The blobs of one repository."""

    def __init__(self, content: ContentStore, name: str, manifest_links: Links) -> None:
        self.content = content
        self.links = Links(content.driver, lambda d: paths.layer_link(name, d), "BLOB_UNKNOWN")
        self.manifest_links = manifest_links

    async def stat(self, digest: Digest) -> Descriptor:
        """Manifests are blobs too: containerd fetches them through /blobs/ when it must."""
        try:
            return await self.links.get(digest)
        except RegistryError as not_a_layer:
            try:
                return await self.manifest_links.get(digest)
            except RegistryError:
                raise not_a_layer from None

    async def open(self, digest: Digest) -> LocalBlob:
        descriptor = await self.stat(digest)
        if not await self.content.exists(digest):
            raise RegistryError("BLOB_UNKNOWN", "blob content is missing", {"digest": str(digest)})
        return self.content.blob(digest, descriptor.size)

    async def link(self, digest: Digest, size: int) -> Descriptor:
        descriptor = Descriptor(OCTET_STREAM, digest, size)
        await self.links.put(descriptor)
        return descriptor

    async def delete(self, digest: Digest) -> None:
        await self.links.delete(digest)

    async def mount(self, digest: Digest, source: Repository) -> Descriptor | None:
        """Link a blob another repository already has; None when it cannot be mounted."""
        try:
            found = await source.blobs.stat(digest)
        except RegistryError:
            return None
        if not await self.content.holds(digest, found.size):
            return None
        return await self.link(digest, found.size)
