"""A repository read through the mirror, with the same stores a local one has."""

from __future__ import annotations

from registry.reference import Digest
from registry.storage.protocols import Descriptor, UploadWriter

from .blobs import MirrorBlobStore
from .context import Mirrored
from .inflight import InFlight
from .manifests import MirrorManifestStore
from .tags import MirrorTagStore


class MirrorUploads:
    """Pushes go to the requested name itself; mirrored namespaces take none."""

    def __init__(self, mirrored: Mirrored) -> None:
        self.m = mirrored

    async def start(self, algorithm: str = "sha256") -> UploadWriter:
        return await self.m.writable().uploads.start(algorithm)

    async def resume(self, upload_id: str) -> UploadWriter:
        return await self.m.writable().uploads.resume(upload_id)


class MirrorReferrers:
    """Referrers pushed here under either name; upstream referrers are not proxied."""

    def __init__(self, mirrored: Mirrored) -> None:
        self.m = mirrored

    async def list(self, subject: Digest) -> list[Descriptor]:
        found: dict[Digest, Descriptor] = {}
        for repo in filter(None, (self.m.cache, self.m.local)):
            found.update({d.digest: d for d in await repo.referrers.list(subject)})
        return list(found.values())


class MirroredRepository:
    def __init__(self, name: str, mirrored: Mirrored, tags_in_flight: InFlight[Digest]) -> None:
        self.name = name
        self.mirrored = mirrored
        self.blobs = MirrorBlobStore(mirrored)
        self.manifests = MirrorManifestStore(mirrored)
        self.tags = MirrorTagStore(mirrored, self.manifests, tags_in_flight)
        self.uploads = MirrorUploads(mirrored)
        self.referrers = MirrorReferrers(mirrored)

    async def exists(self) -> bool:
        """A mirrored name exists as far as clients can tell; upstream answers for the rest."""
        return True
