"""The one table of OCI error codes and the middleware that renders every failure.

Storage and handlers raise `RegistryError(code, ...)`; only this module knows which HTTP
status a code maps to, so no handler ever picks a status on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger("ocireg")


@dataclass(frozen=True)
class ErrorCode:
    status: int
    message: str


CODES: Mapping[str, ErrorCode] = {
    "BLOB_UNKNOWN": ErrorCode(404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": ErrorCode(400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": ErrorCode(404, "blob upload unknown to registry"),
    "DIGEST_INVALID": ErrorCode(400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": ErrorCode(400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": ErrorCode(400, "manifest invalid"),
    "MANIFEST_UNKNOWN": ErrorCode(404, "manifest unknown to registry"),
    "NAME_INVALID": ErrorCode(400, "invalid repository name"),
    "NAME_UNKNOWN": ErrorCode(404, "repository name not known to registry"),
    "SIZE_INVALID": ErrorCode(400, "provided length did not match content length"),
    "RANGE_INVALID": ErrorCode(416, "invalid content range"),
    "TAG_INVALID": ErrorCode(400, "invalid tag"),
    "PAGINATION_NUMBER_INVALID": ErrorCode(400, "invalid number of results requested"),
    "UNAUTHORIZED": ErrorCode(401, "authentication required"),
    "DENIED": ErrorCode(403, "requested access to the resource is denied"),
    "UNSUPPORTED": ErrorCode(415, "the operation is unsupported"),
    "TOOMANYREQUESTS": ErrorCode(429, "too many requests"),
    "NOT_FOUND": ErrorCode(404, "no such route"),
    "METHOD_NOT_ALLOWED": ErrorCode(405, "method not allowed on this route"),
    "UNAVAILABLE": ErrorCode(503, "service unavailable"),
    "STORAGE_FULL": ErrorCode(507, "the registry's storage is full"),
    "INTERNAL": ErrorCode(500, "internal server error"),
    # Never seen by a client; what the access log records for a request its client abandoned.
    "CLIENT_CLOSED_REQUEST": ErrorCode(499, "the client closed the connection before the answer"),
}


class RegistryError(Exception):
    """A failure the client should see, named by its OCI code."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        detail: Any = None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        entry = CODES[code]
        self.code = code
        self.message = message or entry.message
        self.detail = detail
        self.status = status or entry.status
        self.headers = dict(headers or {})
        self.close = close
        super().__init__(f"{code}: {self.message}")

    def response(self, method: str) -> web.Response:
        """HEAD responses carry the status and headers only: HTTP forbids a body there. With
        `close` the connection ends after the answer (the rest of a body will never be read)."""
        body = {"errors": [{"code": self.code, "message": self.message, "detail": self.detail}]}
        if method == "HEAD":
            response = web.Response(status=self.status, headers=self.headers)
        else:
            response = web.json_response(body, status=self.status, headers=self.headers)
        if self.close:
            response.force_close()
        return response


_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "SIZE_INVALID"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure, ours or aiohttp's, into an OCI error body."""
    try:
        return await handler(request)
    except RegistryError as err:
        return err.response(request.method)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "UNSUPPORTED")
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return RegistryError(code, exc.reason, status=exc.status, headers=headers).response(request.method)
    except Exception as exc:
        if _client_gone(request, exc):
            log.info("client went away during %s %s: %s", request.method, request.path, exc)
            return RegistryError("CLIENT_CLOSED_REQUEST", close=True).response(request.method)
        log.exception("failure on %s %s", request.method, request.path)
        return RegistryError("INTERNAL", type(exc).__name__).response(request.method)


def _client_gone(request: web.Request, exc: Exception) -> bool:
    """A reset or broken pipe on the client's own connection. A ConnectionError of anything
    else (an upstream) while the client is still there stays a server error."""
    transport = request.transport
    return isinstance(exc, ConnectionError) and (transport is None or transport.is_closing())
