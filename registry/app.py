"""create_app(config): driver -> stores -> routes, with every response passing one error mapper."""

from __future__ import annotations

import logging

from aiohttp import web

from .config import Config
from .errors import error_middleware
from .handlers.base import API_VERSION_HEADER
from .keys import CONFIG, REGISTRY
from .mediatypes import MAX_MANIFEST_BYTES
from .routes import add_routes
from .storage.driver.filesystem import FilesystemDriver
from .storage.local import LocalRegistry
from .storage.protocols import Registry


async def _api_version(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(API_VERSION_HEADER)


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_MANIFEST_BYTES + 1)
    app[CONFIG] = config
    registry: Registry = LocalRegistry(FilesystemDriver(config.storage.root))
    app[REGISTRY] = registry
    app.on_response_prepare.append(_api_version)
    add_routes(app)
    return app


def configure_logging(config: Config) -> None:
    logging.basicConfig(level=config.log.level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
