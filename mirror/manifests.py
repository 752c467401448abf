"""Manifests of a mirrored repository: immutable by digest, so once cached never refetched."""

from __future__ import annotations

from registry.errors import RegistryError
from registry.reference import Digest
from registry.storage.protocols import Descriptor

from .context import Mirrored
from .disk import cache_write
from .upstream import FetchedManifest


class MirrorManifestStore:
    def __init__(self, mirrored: Mirrored) -> None:
        self.m = mirrored

    async def get(self, digest: Digest) -> tuple[Descriptor, bytes]:
        if self.m.local is not None:
            try:
                return await self.m.local.manifests.get(digest)
            except RegistryError:
                pass
        try:
            found = await self.m.cache.manifests.get(digest)
            await self.m.pulls.pulled(self.m.cache, digest)
            return found
        except RegistryError:
            pass
        if not await self.m.upstream_allowed():
            raise self.m.not_cached("MANIFEST_UNKNOWN", f"manifest {digest}")
        fetched = await self.fetch(str(digest))
        return await self.m.cache.manifests.get(fetched.digest)

    async def fetch(self, reference: str) -> FetchedManifest:
        """One upstream GET per manifest at a time; the bytes enter the cache verified."""
        key = (self.m.route.upstream.name, self.m.route.remote, reference)
        return await self.m.manifests_in_flight.get(key, lambda: self._fetch(reference))

    async def _fetch(self, reference: str) -> FetchedManifest:
        if ":" in reference:  # a fetch of this digest may have finished since our first look
            try:
                descriptor, body = await self.m.cache.manifests.get(Digest.parse(reference))
                return FetchedManifest(descriptor.digest, descriptor.media_type, body)
            except RegistryError:
                pass
        fetched = await self.m.upstream.manifest(reference)
        with cache_write(f"manifest {fetched.digest}"):
            await self.m.cache.manifests.store(fetched.body, fetched.media_type, fetched.digest)
        return fetched

    async def stat(self, digest: Digest) -> Descriptor:
        return (await self.get(digest))[0]

    async def put(self, body: bytes, content_type: str | None, digest: Digest) -> tuple[Descriptor, Digest | None]:
        return await self.m.writable().manifests.put(body, content_type, digest)

    async def delete(self, digest: Digest) -> None:
        await self.m.writable().manifests.delete(digest)
