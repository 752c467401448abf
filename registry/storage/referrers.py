"""The referrers index: for each subject digest, the descriptors of manifests that name it.

Entries are written before the referring manifest is linked and are only listed while that link
exists, so a crash between the two never shows a referrer that cannot be pulled.
"""

from __future__ import annotations

import json

from ..reference import Digest
from . import paths
from .blobs import Links
from .driver.base import Driver, PathNotFound
from .protocols import Descriptor


class LocalReferrerIndex:
    def __init__(self, driver: Driver, name: str, manifest_links: Links) -> None:
        self.driver = driver
        self.name = name
        self.manifest_links = manifest_links

    async def add(self, subject: Digest, descriptor: Descriptor) -> None:
        path = paths.referrer(self.name, subject, descriptor.digest)
        await self.driver.write(path, json.dumps(descriptor.to_json()).encode())

    async def remove(self, subject: Digest, referrer: Digest) -> None:
        await self.driver.delete(paths.referrer(self.name, subject, referrer))

    async def list(self, subject: Digest) -> list[Descriptor]:
        found = []
        folder = paths.referrers(self.name, subject)
        for entry in await self.driver.list(folder):
            if entry.startswith("."):
                continue
            try:
                raw = await self.driver.read(f"{folder}/{entry}")
            except PathNotFound:
                continue
            descriptor = Descriptor.from_json(json.loads(raw))
            if await self.manifest_links.exists(descriptor.digest):
                found.append(descriptor)
        return found
