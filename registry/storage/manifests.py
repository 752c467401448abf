"""Manifests of one repository: exact bytes in the content store, a link, referrer entries.

A PUT is accepted only when everything the manifest depends on is already in the repository
(the `subject` excepted, as the spec requires), so a pulled image is always complete.
"""

from __future__ import annotations

import logging

from ..errors import RegistryError
from ..mediatypes import (
    MANIFEST_TYPES,
    ParsedManifest,
    declared_media_type,
    parse_manifest,
    read_stored_manifest,
)
from ..reference import Digest
from .blobs import ContentStore, LinkedBlobStore, Links
from .driver.base import PathNotFound
from .protocols import Descriptor
from .referrers import LocalReferrerIndex
from .tags import LocalTagStore

log = logging.getLogger("ocireg")


def _inferred_media_type(body: bytes) -> str | None:
    """For manifests that name no media type anywhere (old OCI pushes): from their shape."""
    try:
        return parse_manifest(body, None).media_type
    except RegistryError:
        return None


class LocalManifestStore:
    def __init__(self, content: ContentStore, links: Links, blobs: LinkedBlobStore,
                 tags: LocalTagStore, referrers: LocalReferrerIndex) -> None:
        self.content = content
        self.links = links
        self.blobs = blobs
        self.tags = tags
        self.referrers = referrers

    async def stat(self, digest: Digest) -> Descriptor:
        return await self.links.get(digest)

    async def get(self, digest: Digest) -> tuple[Descriptor, bytes]:
        descriptor = await self.links.get(digest)
        try:
            return descriptor, await self.content.read(digest)
        except PathNotFound:
            raise RegistryError("MANIFEST_UNKNOWN", "manifest content is missing",
                                {"digest": str(digest)}) from None

    async def put(self, body: bytes, content_type: str | None,
                  digest: Digest) -> tuple[Descriptor, Digest | None]:
        """Store and link; returns the descriptor and the subject the manifest refers to."""
        parsed = parse_manifest(body, content_type)
        await self._check_references(parsed)
        descriptor = parsed.descriptor(digest, len(body))
        await self.content.put(digest, body)
        if parsed.subject is not None:
            await self.referrers.add(parsed.subject, descriptor)
        await self.store(body, parsed.media_type, digest)
        return descriptor, parsed.subject

    async def store(self, body: bytes, media_type: str, digest: Digest) -> Descriptor:
        """Keep bytes already verified against `digest` (the mirror's cache): what they refer
        to is fetched when a client asks for it, so it is not required to be here."""
        if media_type not in MANIFEST_TYPES:
            media_type = declared_media_type(body) or _inferred_media_type(body) or media_type
        await self.content.put(digest, body)
        descriptor = Descriptor(media_type, digest, len(body))
        await self.links.put(descriptor)
        return descriptor

    async def _check_references(self, parsed: ParsedManifest) -> None:
        for blob in parsed.blobs:  # touched, so a gc running now keeps what this manifest needs
            if not await self.blobs.links.touch(blob) and not await self.links.touch(blob):
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", f"blob {blob} is not in this repository",
                                    {"digest": str(blob)})
        for child in parsed.manifests:
            if not await self.links.touch(child):
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", f"manifest {child} is not in this repository",
                                    {"digest": str(child)})

    async def delete(self, digest: Digest) -> None:
        _, body = await self.get(digest)
        await self.links.delete(digest)
        await self.tags.untag(digest)
        try:
            subject = read_stored_manifest(body).subject
        except RegistryError:
            log.warning("deleted manifest %s could not be parsed for its subject", digest)
            return
        if subject is not None:
            await self.referrers.remove(subject, digest)
