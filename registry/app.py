"""create_app(config): driver -> stores -> mirror -> routes, every failure through one mapper."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from mirror.registry import MirrorRegistry

from .config import Config
from .errors import error_middleware
from .handlers.base import API_VERSION_HEADER
from .keys import CONFIG, REGISTRY
from .mediatypes import MAX_MANIFEST_BYTES
from .routes import add_routes
from .storage.driver.filesystem import FilesystemDriver
from .storage.local import LocalRegistry
from .storage.protocols import Registry
from .storage.uploads import expire_sessions

MIRROR = web.AppKey("mirror", MirrorRegistry)
LOCAL = web.AppKey("local", LocalRegistry)  # the store under the mirror: sessions, hashes
log = logging.getLogger("ocireg")


async def _common_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The API version on every answer; `OCI-Namespace` when `ns` picked an upstream."""
    response.headers.update(API_VERSION_HEADER)
    ns = request.query.get("ns")
    mirror = request.app.get(MIRROR)
    if mirror is not None and mirror.is_namespace(ns):
        response.headers["OCI-Namespace"] = str(ns)


async def _mirror_connections(app: web.Application) -> AsyncIterator[None]:
    mirror = app[MIRROR]
    await mirror.open()
    yield
    await mirror.close()


def _session_expiry(local: LocalRegistry, expiry: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """Sweep idle upload sessions while the app runs: at start (sessions a restart left),
    then a few times per expiry period (at most every five minutes)."""
    async def sweep_forever() -> None:
        while True:
            try:
                removed = await expire_sessions(local.driver, local.hashes, expiry)
                if removed:
                    log.info("removed %d upload sessions idle for more than %gs", removed, expiry)
            except Exception:
                log.exception("could not remove idle upload sessions")
            await asyncio.sleep(min(max(expiry / 4, 0.05), 300.0))

    async def run(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(sweep_forever())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return run


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_MANIFEST_BYTES + 1)
    app[CONFIG] = config
    local = LocalRegistry(FilesystemDriver(config.storage.root))
    local.hashes.limit = config.uploads.max_sessions
    app[LOCAL] = local
    app.cleanup_ctx.append(_session_expiry(local, config.uploads.expiry))
    registry: Registry = local
    if config.mirror.upstreams:
        mirror = MirrorRegistry(local, config.mirror)
        app[MIRROR] = registry = mirror
        app.cleanup_ctx.append(_mirror_connections)
    app[REGISTRY] = registry
    app.on_response_prepare.append(_common_headers)
    add_routes(app)
    return app


def configure_logging(config: Config) -> None:
    logging.basicConfig(level=config.log.level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
