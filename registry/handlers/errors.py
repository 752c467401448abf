"""Every failure, ours or aiohttp's, as an OCI error answer.

`registry.errors` says what went wrong and with which code; this module alone turns that into
HTTP: the JSON body, the status, the header fields an error carries, and whether the connection
ends after the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from ..errors import ErrorCode, RegistryError

log = logging.getLogger("ocireg")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED, 413: ErrorCode.SIZE_INVALID}


class HttpError(RegistryError):
    """A failure only the HTTP layer sees (a body over its limit, a stalled client, a route
    aiohttp does not know): it chooses its own status and header fields, and `close` ends the
    connection after the answer, since the rest of the body will never be read."""

    _code_first = False

    def __init__(self, code: ErrorCode, message: str | None = None, detail: Any = None, *,
                 status: int | None = None, headers: Mapping[str, str] | None = None,
                 close: bool = False) -> None:
        self.code = code
        super().__init__(message, detail)
        self.status_override = status
        self._headers = dict(headers or {})
        self.close = close


def error_response(err: RegistryError, method: str) -> web.Response:
    """HEAD responses carry the status and headers only: HTTP forbids a body there. With
    `close` the connection ends after the answer (the rest of a body will never be read)."""
    if method == "HEAD":
        response = web.Response(status=err.status, headers=err.headers)
    else:
        body = {"errors": [{"code": err.code, "message": err.message, "detail": err.detail}]}
        response = web.json_response(body, status=err.status, headers=err.headers)
    if err.close:
        response.force_close()
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure, ours or aiohttp's, into an OCI error body."""
    try:
        return await handler(request)
    except RegistryError as err:
        return error_response(err, request.method)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, ErrorCode.UNSUPPORTED)
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(HttpError(code, exc.reason, status=exc.status, headers=headers), request.method)
    except Exception as exc:
        if _client_gone(request, exc):
            log.info("client went away during %s %s: %s", request.method, request.path, exc)
            return error_response(HttpError(ErrorCode.CLIENT_CLOSED_REQUEST, close=True), request.method)
        log.exception("failure on %s %s", request.method, request.path)
        return error_response(HttpError(ErrorCode.INTERNAL, type(exc).__name__), request.method)


def _client_gone(request: web.Request, exc: Exception) -> bool:
    """A reset or broken pipe on the client's own connection. A ConnectionError of anything
    else (an upstream) while the client is still there stays a server error."""
    transport = request.transport
    return isinstance(exc, ConnectionError) and (transport is None or transport.is_closing())
