"""create_app(config): driver -> stores -> mirror -> routes, every failure through one mapper."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

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

MIRROR = web.AppKey("mirror", MirrorRegistry)


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


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_MANIFEST_BYTES + 1)
    app[CONFIG] = config
    local = LocalRegistry(FilesystemDriver(config.storage.root))
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
