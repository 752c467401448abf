"""What a mirrored repository's stores share: where pushed content lives, where the cache
lives, the upstream, and the fetches in flight."""

from __future__ import annotations

from dataclasses import dataclass

from registry.errors import RegistryError
from registry.storage.local import LocalRepository

from .fills import Fills
from .inflight import InFlight
from .pulls import PullClock
from .routing import Route
from .upstream import FetchedManifest, UpstreamRepository

UPSTREAM_FAILURES = frozenset({"UNAVAILABLE", "TOOMANYREQUESTS", "UNAUTHORIZED", "DENIED"})


@dataclass
class Mirrored:
    route: Route
    local: LocalRepository | None  # content pushed under the requested name (rule 0)
    cache: LocalRepository  # content pulled through this route
    upstream: UpstreamRepository
    fills: Fills
    manifests_in_flight: InFlight[FetchedManifest]
    pulls: PullClock
    offline: bool

    async def upstream_allowed(self) -> bool:
        """The default route applies only to names no local repository has."""
        if self.offline:
            return False
        if self.route.by_default and self.local is not None:
            return not await self.local.exists()
        return True

    def denied(self) -> RegistryError:
        return denied(self.cache.name, self.route.upstream.name)

    def writable(self) -> LocalRepository:
        """Where a push, tag or delete under the requested name goes: never into the cache,
        which holds only what the upstream sent."""
        if self.local is None:
            raise self.denied()
        return self.local

    def not_cached(self, code: str, what: str) -> RegistryError:
        why = "the mirror is offline" if self.offline else f"{self.route.upstream.name} is not asked for this name"
        return RegistryError(code, f"{what} is not cached and {why}", {"name": self.cache.name})


def denied(name: str, upstream: str) -> RegistryError:
    return RegistryError("DENIED", f"{name} is a mirror of {upstream}; "
                         "push to a name outside the mirrored namespaces", {"name": name})


def is_upstream_failure(err: RegistryError) -> bool:
    """Failures of the upstream itself, as opposed to content it does not have."""
    return err.code in UPSTREAM_FAILURES
