"""Tags: one small file per tag holding the digest it points to, replaced atomically."""

from __future__ import annotations

from ..errors import RegistryError
from ..reference import Digest
from . import paths
from .driver.base import Driver, PathNotFound


class LocalTagStore:
    def __init__(self, driver: Driver, name: str) -> None:
        self.driver = driver
        self.name = name

    async def resolve(self, tag: str) -> Digest:
        try:
            raw = await self.driver.read_small(paths.tag(self.name, tag))
        except PathNotFound:
            raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": tag}) from None
        return Digest.parse(raw.decode().strip())

    async def set(self, tag: str, digest: Digest) -> None:
        await self.driver.write(paths.tag(self.name, tag), str(digest).encode())

    async def validated_at(self, tag: str) -> float | None:
        """When the tag was last written or confirmed: its file's modification time."""
        try:
            return (await self.driver.stat(paths.tag(self.name, tag))).mtime
        except PathNotFound:
            return None

    async def delete(self, tag: str) -> None:
        if not await self.driver.exists(paths.tag(self.name, tag)):
            raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": tag})
        await self.driver.delete(paths.tag(self.name, tag))

    async def list(self) -> list[str]:
        return [name for name in await self.driver.list(paths.tags(self.name)) if not name.startswith(".")]

    async def untag(self, digest: Digest) -> None:
        """Tags die with the manifest they point to, as in Distribution."""
        for tag in await self.list():
            try:
                if await self.resolve(tag) == digest:
                    await self.driver.delete(paths.tag(self.name, tag))
            except RegistryError:
                continue
