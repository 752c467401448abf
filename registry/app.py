"""create_app(config): the services of `compose` behind the route table, every failure through one mapper.

Dependency direction: this module depends on `compose` (which alone knows the concrete store and
mirror classes), `routes` and the handlers; nothing below it imports it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from .compose import Services, build_services
from .config import Config
from .handlers.base import API_VERSION_HEADER
from .handlers.errors import error_middleware
from .keys import CONFIG, REGISTRY, SERVICES
from .mediatypes import MAX_MANIFEST_BYTES
from .routes import add_routes
from .storage.local import LocalRegistry
from .storage.uploads import expire_sessions

LOCAL = web.AppKey("local", LocalRegistry)  # the store under the mirror: sessions, hashes
log = logging.getLogger("ocireg")


async def _common_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The API version on every answer; `OCI-Namespace` when `ns` picked an upstream."""
    response.headers.update(API_VERSION_HEADER)
    ns = request.query.get("ns")
    mirror = request.app[SERVICES].mirror
    if mirror is not None and mirror.is_namespace(ns):
        response.headers["OCI-Namespace"] = str(ns)


async def _open_services(app: web.Application) -> AsyncIterator[None]:
    """Upstream connections live as long as the app runs, whoever built the services."""
    services = app[SERVICES]
    await services.open()
    yield
    await services.close()


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


def create_app(config: Config, services: Services | None = None, *,
               middlewares: Sequence[Middleware] = ()) -> web.Application:
    """`services` defaults to `build_services(config)`. `middlewares` run inside the error
    middleware, before the handlers: what they raise is rendered as an OCI error, and
    `routes.action_of` tells them what a request asks (the slot for access control)."""
    if services is None:
        services = build_services(config)
    app = web.Application(middlewares=[error_middleware, *middlewares], client_max_size=MAX_MANIFEST_BYTES + 1)
    app[CONFIG] = config
    app[SERVICES] = services
    local = services.local
    # Only the server caps upload sessions: the limit protects it from clients, not from its operator's tools.
    local.hashes.limit = config.uploads.max_sessions
    app[LOCAL] = local
    app.cleanup_ctx.append(_session_expiry(local, config.uploads.expiry))
    app.cleanup_ctx.append(_open_services)
    app[REGISTRY] = services.repositories
    app.on_response_prepare.append(_common_headers)
    add_routes(app)
    return app


def configure_logging(config: Config) -> None:
    logging.basicConfig(level=config.log.level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
