"""Blobs of a mirrored repository: pushed or cached content locally, else one streaming
fetch from upstream that every concurrent reader follows. Content that is stored but not
linked under the route's cache is linked only after the upstream confirmed it."""

from __future__ import annotations

import aiohttp

from registry.errors import RegistryError
from registry.reference import Digest
from registry.storage import paths
from registry.storage.blobs import OCTET_STREAM
from registry.storage.protocols import BlobContent, Descriptor, Repository

from .context import Mirrored
from .disk import cache_write, ensure_room
from .fill import BlobFill, FillContent


class MirrorBlobStore:
    def __init__(self, mirrored: Mirrored) -> None:
        self.m = mirrored

    async def _local(self, digest: Digest) -> Descriptor | None:
        """Pushed content, then content this route's cache links."""
        for repo in filter(None, (self.m.local, self.m.cache)):
            try:
                return await repo.blobs.stat(digest)
            except RegistryError:
                continue
        return None

    async def _link_stored(self, digest: Digest, size: int) -> Descriptor | None:
        """Bytes stored for another repository are linked here only once the upstream said this
        repository has the digest, at that size: the store holds private pushes and rejected
        imports too, which no mirrored name may serve (Distribution's linked-blob rule)."""
        content = self.m.cache.blobs.content
        if not await content.exists(digest) or await content.size(digest) != size:
            return None
        if not await content.renew(digest):
            return None
        with cache_write(f"the link of blob {digest}"):
            return await self.m.cache.blobs.link(digest, size)

    async def stat(self, digest: Digest) -> Descriptor:
        found = await self._local(digest)
        if found is not None:
            return found
        if not await self.m.upstream_allowed():
            raise self.m.not_cached("BLOB_UNKNOWN", f"blob {digest}")
        size = await self.m.upstream.blob_size(digest)
        return await self._link_stored(digest, size) or Descriptor(OCTET_STREAM, digest, size)

    async def open(self, digest: Digest) -> BlobContent:
        found = await self._local(digest)
        if found is None:
            if not await self.m.upstream_allowed():
                raise self.m.not_cached("BLOB_UNKNOWN", f"blob {digest}")
            if await self.m.cache.blobs.content.exists(digest):
                found = await self._link_stored(digest, await self.m.upstream.blob_size(digest))
        if found is None:
            fill = await self.m.fills.get(digest, lambda: self._start_fill(digest))
            if fill is not None:
                return FillContent(fill, lambda offset, length: self.m.upstream.blob_range(digest, offset, length))
            found = await self.m.cache.blobs.stat(digest)
        return self.m.cache.blobs.content.blob(digest, found.size)

    async def _start_fill(self, digest: Digest) -> BlobFill | None:
        """A fill that finished between our first look and now has left the blob linked."""
        if await self.m.cache.blobs.links.exists(digest):
            return None
        response = await self.m.upstream.open_blob(digest)
        size = response.content_length
        if size is None:
            response.release()
            raise RegistryError("UNAVAILABLE", f"upstream {self.m.route.upstream.name} sent blob {digest} "
                                "without a length", {"upstream": self.m.route.upstream.name})
        driver = self.m.cache.driver
        root = driver.local_path("")
        assert root is not None, "the mirror needs a local driver"
        try:
            await ensure_room(root, size, f"blob {digest} ({size} bytes)")
            with cache_write(f"blob {digest}"):
                upload = await self.m.cache.uploads.start(digest.algorithm)
        except BaseException:
            response.release()
            raise
        path, final = driver.local_path(paths.upload_data(upload.id)), driver.local_path(paths.blob_data(digest))
        assert path is not None and final is not None, "the mirror needs a local driver"
        return BlobFill(digest, size, upload, path, final, response, self._fetch_error)

    def _fetch_error(self, err: BaseException) -> RegistryError:
        if isinstance(err, aiohttp.ClientPayloadError):
            return self.m.upstream.client.failed("broke off the blob", err)
        return self.m.upstream.client.failed("failed", err)

    async def delete(self, digest: Digest) -> None:
        await self.m.writable().blobs.delete(digest)

    async def mount(self, digest: Digest, source: Repository) -> Descriptor | None:
        return await self.m.writable().blobs.mount(digest, source)
