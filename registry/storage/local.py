"""Repositories kept on this machine's storage, and the catalog of their names."""

from __future__ import annotations

import functools

from ..reference import Digest
from . import paths
from .blobs import ContentStore, LinkedBlobStore, Links
from .driver.base import Driver
from .manifests import LocalManifestStore
from .referrers import LocalReferrerIndex
from .tags import LocalTagStore
from .uploads import LocalUploadStore, RunningHashes


class LocalRepository:
    def __init__(self, content: ContentStore, name: str, hashes: RunningHashes) -> None:
        driver = content.driver
        self.name = name
        self.driver = driver
        manifest_links = Links(driver, lambda d: paths.manifest_link(name, d), "MANIFEST_UNKNOWN")
        self.blobs = LinkedBlobStore(content, name, manifest_links)
        self.uploads = LocalUploadStore(content, name, self.blobs, hashes)
        self.tags = LocalTagStore(driver, name)
        self.referrers = LocalReferrerIndex(driver, name, manifest_links)
        self.manifests = LocalManifestStore(content, manifest_links, self.blobs, self.tags, self.referrers)

    async def exists(self) -> bool:
        """A repository holds links or tags; a folder that only holds deeper names is none."""
        folder = paths.repository(self.name)
        return any([await self.driver.exists(f"{folder}/{part}") for part in paths.REPOSITORY_PARTS])


class LocalRegistry:
    """Hands out repositories by (validated) name; the one object the app wires up."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.content = ContentStore(driver)
        self.hashes = RunningHashes()

    def repository(self, name: str, ns: str | None = None) -> LocalRepository:
        """`ns` names the registry a client meant; pushed content is served whatever it says."""
        return self._repository(name)

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - lives as long as the registry itself
    def _repository(self, name: str) -> LocalRepository:
        """Repositories hold no state of their own; one per name spares every request the
        construction of its stores."""
        return LocalRepository(self.content, name, self.hashes)

    async def catalog(self) -> list[str]:
        """Every repository that holds a link or a tag, sorted. Empty `_` folders (everything
        deleted, or created by a write that failed) make no repository."""
        names: list[str] = []
        await self._walk(paths.REPOSITORIES, "", names)
        return sorted(names)

    async def _holds_something(self, folder: str) -> bool:
        if await self._visible(f"{folder}/_tags"):
            return True
        for part in ("_manifests", "_layers"):
            for algorithm in await self.driver.list(f"{folder}/{part}"):
                if await self._visible(f"{folder}/{part}/{algorithm}"):
                    return True
        return False

    async def _visible(self, folder: str) -> bool:
        """Entries other than the temporary files of atomic writes."""
        return any(not entry.startswith(".") for entry in await self.driver.list(folder))

    async def _walk(self, folder: str, prefix: str, names: list[str]) -> None:
        entries = await self.driver.list(folder)
        reserved = any(entry.startswith(paths.RESERVED_PREFIX) for entry in entries)
        if reserved and prefix and await self._holds_something(folder):
            names.append(prefix.rstrip("/"))
        for entry in entries:
            if not entry.startswith((paths.RESERVED_PREFIX, ".")):
                await self._walk(f"{folder}/{entry}", f"{prefix}{entry}/", names)

    async def blob_exists(self, digest: Digest) -> bool:
        return await self.content.exists(digest)
