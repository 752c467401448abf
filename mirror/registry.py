"""The registry as handlers see it once the mirror is configured: local repositories, and
mirrored ones for names the routing rules send upstream."""

from __future__ import annotations

import functools

import aiohttp

from registry.config import MirrorConfig
from registry.reference import Digest
from registry.storage.local import LocalRegistry
from registry.storage.protocols import Repository

from .client import UpstreamClient
from .context import Mirrored
from .fills import Fills
from .inflight import InFlight
from .pulls import PullClock
from .repository import MirroredRepository
from .routing import Route, Router
from .sealed import SealedRepository
from .upstream import FetchedManifest, UpstreamRepository

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


class MirrorRegistry:
    def __init__(self, local: LocalRegistry, config: MirrorConfig) -> None:
        self.local = local
        self.config = config
        self.router = Router(config)
        self.fills = Fills()
        self.manifests_in_flight: InFlight[FetchedManifest] = InFlight()
        self.tags_in_flight: InFlight[Digest] = InFlight()
        self.pulls = PullClock()
        self.clients: dict[str, UpstreamClient] = {}
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Upstream connections are opened with the server, not at import or construction."""
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
        self.session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False, trust_env=True)
        self.clients = {u.name: UpstreamClient(u, self.session) for u in self.config.upstreams}

    async def close(self) -> None:
        await self.fills.close()
        if self.session is not None:
            await self.session.close()

    def is_namespace(self, ns: str | None) -> bool:
        return ns is not None and self.router.upstream(ns) is not None

    def repository(self, name: str, ns: str | None = None) -> Repository:
        """Whatever `ns` says, a name under a mirrored namespace never comes back writable."""
        route = self.router.route(name, ns) if self.session is not None else None
        if route is not None:
            return self._mirrored(name, route)
        namespace = self.router.mirrored_namespace(name)
        if namespace is not None:
            return SealedRepository(self.local.repository(name), namespace.name)
        return self.local.repository(name)

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - lives as long as the registry itself
    def _mirrored(self, name: str, route: Route) -> MirroredRepository:
        """Built once per name and route: the stores are stateless views over shared state."""
        mirrored = Mirrored(
            route=route,
            local=None if self.router.mirrored_namespace(name) else self.local.repository(name),
            cache=self.local.repository(route.cache_name),
            upstream=UpstreamRepository(self.clients[route.upstream.name], route.remote),
            fills=self.fills,
            manifests_in_flight=self.manifests_in_flight,
            pulls=self.pulls,
            offline=self.config.offline,
        )
        return MirroredRepository(name, mirrored, self.tags_in_flight)

    async def catalog(self) -> list[str]:
        return await self.local.catalog()
