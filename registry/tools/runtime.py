"""The same registry the server builds, opened for a command-line tool and closed after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mirror.registry import MirrorRegistry

from ..config import Config
from ..storage.driver.filesystem import FilesystemDriver
from ..storage.local import LocalRegistry


@asynccontextmanager
async def open_registry(config: Config) -> AsyncIterator[MirrorRegistry]:
    """Tools share the server's data directory; every write is atomic, so both may run at once."""
    registry = MirrorRegistry(LocalRegistry(FilesystemDriver(config.storage.root)), config.mirror)
    await registry.open()
    try:
        yield registry
    finally:
        await registry.close()
