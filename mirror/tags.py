"""Tags of a mirrored repository: trusted for `tag_ttl`, then revalidated with a HEAD (free on
Docker Hub), refetched only when the digest moved, and served stale while the upstream fails."""

from __future__ import annotations

import logging

from registry.errors import RegistryError
from registry.reference import Digest

from .context import Mirrored, is_upstream_failure
from .disk import cache_write
from .inflight import InFlight
from .manifests import MirrorManifestStore
from .ttl import fresh, servable_stale

log = logging.getLogger("ocireg.mirror")


class MirrorTagStore:
    def __init__(self, mirrored: Mirrored, manifests: MirrorManifestStore, in_flight: InFlight[Digest]) -> None:
        self.m = mirrored
        self.manifests = manifests
        self.in_flight = in_flight

    async def resolve(self, tag: str) -> Digest:
        if self.m.local is not None:
            try:
                return await self.m.local.tags.resolve(tag)
            except RegistryError:
                pass
        cache = self.m.cache.tags
        validated = await cache.validated_at(tag)
        if not await self.m.upstream_allowed():
            if validated is None:
                raise self.m.not_cached("MANIFEST_UNKNOWN", f"tag {tag}")
            return await cache.resolve(tag)
        if validated is not None and fresh(validated, self.m.route.upstream):
            return await cache.resolve(tag)
        key = (self.m.route.upstream.name, self.m.route.remote, tag)
        return await self.in_flight.get(key, lambda: self._revalidate(tag, validated))

    async def _revalidate(self, tag: str, validated: float | None) -> Digest:
        try:
            return await self._ask_upstream(tag)
        except RegistryError as err:
            stale_ok = validated is not None and servable_stale(validated, self.m.route.upstream)
            if not (stale_ok and is_upstream_failure(err)):
                raise
            log.warning("serving stale tag %s:%s: %s", self.m.cache.name, tag, err.message)
            return await self.m.cache.tags.resolve(tag)

    async def _ask_upstream(self, tag: str) -> Digest:
        digest = await self.m.upstream.manifest_digest(tag)
        if digest is None:
            digest = (await self.manifests.fetch(tag)).digest
        else:
            await self.manifests.get(digest)
        with cache_write(f"tag {tag}"):
            await self.m.cache.tags.set(tag, digest)
        return digest

    async def set(self, tag: str, digest: Digest) -> None:
        await self.m.writable().tags.set(tag, digest)

    async def delete(self, tag: str) -> None:
        await self.m.writable().tags.delete(tag)

    async def list(self) -> list[str]:
        """Upstream's tags, or the cached ones while it cannot be asked. With none cached, the
        upstream's failure is the answer: an empty list would say the repository has no tags."""
        local = await self.m.local.tags.list() if self.m.local is not None else []
        if local or not await self.m.upstream_allowed():
            return local or await self.m.cache.tags.list()
        try:
            return await self.m.upstream.tags()
        except RegistryError as err:
            cached = await self.m.cache.tags.list() if is_upstream_failure(err) else []
            if not cached:
                raise
            return cached
