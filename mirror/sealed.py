"""A name under a mirrored namespace that no route reaches: an `ns` that names no upstream, or
a name the upstream's include/exclude patterns leave out. What the cache holds under it may be
read; nothing may be written, since a write there would be served later as the upstream's."""

from __future__ import annotations

from registry.errors import RegistryError
from registry.reference import Digest
from registry.storage.local import LocalRepository
from registry.storage.protocols import BlobContent, Descriptor, ReferrerIndex, Repository, UploadWriter

from .context import denied


class _Sealed:
    def __init__(self, cache: LocalRepository, upstream: str) -> None:
        self.cache = cache
        self.upstream = upstream

    def denied(self) -> RegistryError:
        return denied(self.cache.name, self.upstream)


class SealedBlobs(_Sealed):
    async def stat(self, digest: Digest) -> Descriptor:
        return await self.cache.blobs.stat(digest)

    async def open(self, digest: Digest) -> BlobContent:
        return await self.cache.blobs.open(digest)

    async def delete(self, digest: Digest) -> None:
        raise self.denied()

    async def mount(self, digest: Digest, source: Repository) -> Descriptor | None:
        raise self.denied()


class SealedUploads(_Sealed):
    async def start(self, algorithm: str = "sha256") -> UploadWriter:
        raise self.denied()

    async def resume(self, upload_id: str) -> UploadWriter:
        raise self.denied()


class SealedManifests(_Sealed):
    async def get(self, digest: Digest) -> tuple[Descriptor, bytes]:
        return await self.cache.manifests.get(digest)

    async def stat(self, digest: Digest) -> Descriptor:
        return await self.cache.manifests.stat(digest)

    async def put(self, body: bytes, content_type: str | None, digest: Digest) -> tuple[Descriptor, Digest | None]:
        raise self.denied()

    async def delete(self, digest: Digest) -> None:
        raise self.denied()


class SealedTags(_Sealed):
    async def resolve(self, tag: str) -> Digest:
        return await self.cache.tags.resolve(tag)

    async def set(self, tag: str, digest: Digest) -> None:
        raise self.denied()

    async def delete(self, tag: str) -> None:
        raise self.denied()

    async def list(self) -> list[str]:
        return await self.cache.tags.list()


class SealedRepository:
    def __init__(self, cache: LocalRepository, upstream: str) -> None:
        self.name = cache.name
        self.cache = cache
        self.blobs = SealedBlobs(cache, upstream)
        self.uploads = SealedUploads(cache, upstream)
        self.manifests = SealedManifests(cache, upstream)
        self.tags = SealedTags(cache, upstream)
        self.referrers: ReferrerIndex = cache.referrers

    async def exists(self) -> bool:
        return await self.cache.exists()
