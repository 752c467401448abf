"""The composition root: the one place that picks concrete classes and wires them together.

`ocireg serve`, every command-line tool and the test fixtures build their object graph here,
so the server and a tool working on the same data folder can never disagree about how a
name is routed, which store sits under the mirror or what the upload limits are.

Dependency direction: `registry.app` and `registry.tools` depend on this module; this module
depends on `registry.storage` and on `mirror`; nothing under `mirror` or `registry.storage`
depends on it. The tools reach the mirror only through the names exported here.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from mirror.fill import stored
from mirror.registry import MirrorRegistry
from mirror.routing import Router

from .config import Config
from .storage.driver.base import Driver
from .storage.driver.filesystem import FilesystemDriver
from .storage.local import LocalRegistry
from .storage.protocols import Registry


class StoreMissing(Exception):
    """A tool that reads an existing store was pointed at a folder that does not exist."""


def mirror_configured(config: Config) -> bool:
    """The mirror exists iff an upstream is configured: without one it could only answer
    from the local store, which the store does by itself."""
    return bool(config.mirror.upstreams)


@dataclass
class Services:
    """What a running ocireg is made of. `repositories` is what handlers and tools ask for a
    repository: the mirror when there is one (it falls back to the store for pushed names),
    else the store itself."""

    config: Config
    driver: Driver
    local: LocalRegistry
    mirror: MirrorRegistry | None
    router: Router = field(repr=False)

    @property
    def repositories(self) -> Registry:
        return self.mirror if self.mirror is not None else self.local

    @property
    def upstream_names(self) -> frozenset[str]:
        return frozenset(self.router.upstreams)

    def is_mirrored(self, name: str) -> bool:
        """Whether `name` lies in an upstream's cache namespace (never pushed to, evictable)."""
        return self.router.mirrored_namespace(name) is not None

    async def open(self) -> None:
        """Upstream connections open with the server or tool run, never at construction."""
        if self.mirror is not None:
            await self.mirror.open()

    async def close(self) -> None:
        """Settles running fills and closes upstream connections."""
        if self.mirror is not None:
            await self.mirror.close()


def build_services(config: Config, *, driver: Driver | None = None, require_store: bool = False) -> Services:
    """Builds driver -> store -> mirror once. `driver` replaces the filesystem driver over
    `config.storage.root` (tests inject failing or faster ones). `require_store` is for tools
    that read an existing store: a mistyped folder must not look like a clean, empty store,
    and must not be created by the check."""
    if require_store and driver is None and not os.path.isdir(config.storage.root):
        raise StoreMissing(f"{config.storage.root}: no such data folder")
    if driver is None:
        driver = FilesystemDriver(config.storage.root)
    local = LocalRegistry(driver)
    mirror = MirrorRegistry(local, config.mirror) if mirror_configured(config) else None
    router = mirror.router if mirror is not None else Router(config.mirror)
    return Services(config=config, driver=driver, local=local, mirror=mirror, router=router)


@asynccontextmanager
async def open_services(config: Config, *, driver: Driver | None = None,
                        require_store: bool = False) -> AsyncIterator[Services]:
    """Services for one tool run: opened before, closed after, also when the tool fails."""
    services = build_services(config, driver=driver, require_store=require_store)
    await services.open()
    try:
        yield services
    finally:
        await services.close()


__all__ = ["MirrorRegistry", "Services", "StoreMissing", "build_services", "mirror_configured", "open_services",
           "stored"]
