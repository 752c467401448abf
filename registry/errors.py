"""The one table of OCI error codes, and the failures the registry raises, one class each.

Storage, parsers and the mirror raise a domain class (`BlobUnknown`, `DigestInvalid`, ...);
each class names its OCI code, and only the `CODES` table maps a code to its HTTP status and
default message, so no raise site ever picks a status on its own. Nothing here knows about
HTTP libraries: `registry.handlers.errors` renders a failure as a response, so code that runs
without a server (tools, the mirror's fetches) can raise and catch these freely.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, overload

if TYPE_CHECKING:
    from aiohttp import web


class ErrorCode(StrEnum):
    """The code in an error body. A `StrEnum`, so a member equals, hashes and serialises as
    its spelling: comparisons with plain strings and the JSON on the wire stay as they were."""

    BLOB_UNKNOWN = "BLOB_UNKNOWN"
    BLOB_UPLOAD_INVALID = "BLOB_UPLOAD_INVALID"
    BLOB_UPLOAD_UNKNOWN = "BLOB_UPLOAD_UNKNOWN"
    DIGEST_INVALID = "DIGEST_INVALID"
    MANIFEST_BLOB_UNKNOWN = "MANIFEST_BLOB_UNKNOWN"
    MANIFEST_INVALID = "MANIFEST_INVALID"
    MANIFEST_UNKNOWN = "MANIFEST_UNKNOWN"
    NAME_INVALID = "NAME_INVALID"
    NAME_UNKNOWN = "NAME_UNKNOWN"
    SIZE_INVALID = "SIZE_INVALID"
    RANGE_INVALID = "RANGE_INVALID"
    TAG_INVALID = "TAG_INVALID"
    PAGINATION_NUMBER_INVALID = "PAGINATION_NUMBER_INVALID"
    UNAUTHORIZED = "UNAUTHORIZED"
    DENIED = "DENIED"
    UNSUPPORTED = "UNSUPPORTED"
    TOOMANYREQUESTS = "TOOMANYREQUESTS"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    UNAVAILABLE = "UNAVAILABLE"
    STORAGE_FULL = "STORAGE_FULL"
    INTERNAL = "INTERNAL"
    CLIENT_CLOSED_REQUEST = "CLIENT_CLOSED_REQUEST"


@dataclass(frozen=True)
class CodeInfo:
    status: int
    message: str


CODES: Mapping[ErrorCode, CodeInfo] = {
    ErrorCode.BLOB_UNKNOWN: CodeInfo(404, "blob unknown to registry"),
    ErrorCode.BLOB_UPLOAD_INVALID: CodeInfo(400, "blob upload invalid"),
    ErrorCode.BLOB_UPLOAD_UNKNOWN: CodeInfo(404, "blob upload unknown to registry"),
    ErrorCode.DIGEST_INVALID: CodeInfo(400, "provided digest did not match uploaded content"),
    ErrorCode.MANIFEST_BLOB_UNKNOWN: CodeInfo(400, "manifest references a manifest or blob unknown to registry"),
    ErrorCode.MANIFEST_INVALID: CodeInfo(400, "manifest invalid"),
    ErrorCode.MANIFEST_UNKNOWN: CodeInfo(404, "manifest unknown to registry"),
    ErrorCode.NAME_INVALID: CodeInfo(400, "invalid repository name"),
    ErrorCode.NAME_UNKNOWN: CodeInfo(404, "repository name not known to registry"),
    ErrorCode.SIZE_INVALID: CodeInfo(400, "provided length did not match content length"),
    ErrorCode.RANGE_INVALID: CodeInfo(416, "invalid content range"),
    ErrorCode.TAG_INVALID: CodeInfo(400, "invalid tag"),
    ErrorCode.PAGINATION_NUMBER_INVALID: CodeInfo(400, "invalid number of results requested"),
    ErrorCode.UNAUTHORIZED: CodeInfo(401, "authentication required"),
    ErrorCode.DENIED: CodeInfo(403, "requested access to the resource is denied"),
    ErrorCode.UNSUPPORTED: CodeInfo(415, "the operation is unsupported"),
    ErrorCode.TOOMANYREQUESTS: CodeInfo(429, "too many requests"),
    ErrorCode.NOT_FOUND: CodeInfo(404, "no such route"),
    ErrorCode.METHOD_NOT_ALLOWED: CodeInfo(405, "method not allowed on this route"),
    ErrorCode.UNAVAILABLE: CodeInfo(503, "service unavailable"),
    ErrorCode.STORAGE_FULL: CodeInfo(507, "the registry's storage is full"),
    ErrorCode.INTERNAL: CodeInfo(500, "internal server error"),
    # Never seen by a client; what the access log records for a request its client abandoned.
    ErrorCode.CLIENT_CLOSED_REQUEST: CodeInfo(499, "the client closed the connection before the answer"),
}


class RegistryError(Exception):
    """A failure the client should see, named by its OCI code.

    Raise a subclass: its class-level `code` picks the status and default message from
    `CODES`. This class itself, and subclasses defined outside this module that do not derive
    from the classes below, still take the older form `RegistryError("CODE", message, detail,
    status=, headers=, close=)`, so raise sites not yet converted keep their exact answers.
    """

    code: ErrorCode = ErrorCode.INTERNAL
    status_override: int | None = None
    close: bool = False
    _code_first: ClassVar[bool] = True  # whether the first argument is the code (older form)

    @overload
    def __init__(self, message: str | None = None, detail: Any = None) -> None: ...

    @overload
    def __init__(self, code: str, /, message: str | None = None, detail: Any = None, *,
                 status: int | None = None, headers: Mapping[str, str] | None = None,
                 close: bool = False) -> None: ...

    def __init__(self, *args: Any, message: str | None = None, detail: Any = None,
                 status: int | None = None, headers: Mapping[str, str] | None = None,
                 close: bool = False) -> None:
        if self._code_first:
            self.code = ErrorCode(args[0])
            args = args[1:]
        elif status is not None or headers is not None or close:
            raise TypeError(f"{type(self).__name__} takes its status and headers from its class")
        message, detail = _positional(args, message, detail)
        self.message = message or CODES[self.code].message
        self.detail = detail
        if status is not None:
            self.status_override = status
        self._headers = dict(headers or {})
        if close:
            self.close = close
        super().__init__(f"{self.code}: {self.message}")

    @property
    def status(self) -> int:
        return self.status_override or CODES[self.code].status

    @property
    def headers(self) -> dict[str, str]:
        """Header fields the answer carries besides the body (a range's size, a retry time)."""
        return dict(self._headers)

    def response(self, method: str) -> web.Response:
        """This failure as an HTTP answer, for callers written before the rendering moved to
        `registry.handlers.errors`; imported late so this module needs no HTTP library."""
        from .handlers.errors import error_response

        return error_response(self, method)


def _positional(args: tuple[Any, ...], message: str | None, detail: Any) -> tuple[str | None, Any]:
    """`message` and `detail`, given by position or by keyword (not both)."""
    if len(args) > 2 or (args and message is not None) or (len(args) == 2 and detail is not None):
        raise TypeError("message and detail given twice, or too many arguments")
    if args:
        message = args[0]
    if len(args) == 2:
        detail = args[1]
    return message, detail


class _Domain(RegistryError):
    """The base of the classes that name their code: their arguments are message and detail."""

    _code_first = False


# Something asked for is not there.


class NotFound(_Domain):
    pass


class BlobUnknown(NotFound):
    code = ErrorCode.BLOB_UNKNOWN


class ManifestUnknown(NotFound):
    code = ErrorCode.MANIFEST_UNKNOWN


class UploadUnknown(NotFound):
    code = ErrorCode.BLOB_UPLOAD_UNKNOWN


class NameUnknown(NotFound):
    code = ErrorCode.NAME_UNKNOWN


class ContentCorrupted(_Domain):
    """Stored bytes that no longer match their digest. Answered like a missing blob, but not a
    `NotFound`: a mirror must not fetch it again as if it were a miss, and repair is a tool's job."""

    code = ErrorCode.BLOB_UNKNOWN


# What the client sent does not fit the protocol.


class InvalidInput(_Domain):
    pass


class NameInvalid(InvalidInput):
    code = ErrorCode.NAME_INVALID


class TagInvalid(InvalidInput):
    code = ErrorCode.TAG_INVALID


class DigestInvalid(InvalidInput):
    code = ErrorCode.DIGEST_INVALID


class UnsupportedAlgorithm(InvalidInput):
    """A well-formed digest of an algorithm this registry does not hash: a bad request (400),
    not the unsupported media type (415) that UNSUPPORTED means elsewhere."""

    code = ErrorCode.UNSUPPORTED
    status_override = 400


class ManifestInvalid(InvalidInput):
    code = ErrorCode.MANIFEST_INVALID


class ManifestReferenceUnknown(InvalidInput):
    code = ErrorCode.MANIFEST_BLOB_UNKNOWN


class RangeInvalid(InvalidInput):
    code = ErrorCode.RANGE_INVALID


class RangeNotSatisfiable(InvalidInput):
    """No requested byte range lies inside the blob; the answer states the size (RFC 9110
    section 15.5.17) so the client can ask again correctly."""

    code = ErrorCode.RANGE_INVALID

    def __init__(self, size: int, message: str = "range not satisfiable") -> None:
        super().__init__(message, {"size": size})
        self.size = size

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


class UploadInvalid(InvalidInput):
    code = ErrorCode.BLOB_UPLOAD_INVALID


class PaginationInvalid(InvalidInput):
    code = ErrorCode.PAGINATION_NUMBER_INVALID


class SizeInvalid(InvalidInput):
    code = ErrorCode.SIZE_INVALID


class Unsupported(InvalidInput):
    code = ErrorCode.UNSUPPORTED


# The registry cannot do it now.


class UploadBusy(_Domain):
    """Another request is writing to the upload session; the spec's code for a write that does
    not continue where the session stands is RANGE_INVALID. Whoever notices (this process's
    claims, or the driver's lock on a file another process writes) answers the same words."""

    code = ErrorCode.RANGE_INVALID

    def __init__(self, upload_id: str) -> None:
        super().__init__("another request is writing to this upload session", {"uuid": upload_id})
        self.upload_id = upload_id


class TooManyRequests(_Domain):
    code = ErrorCode.TOOMANYREQUESTS


class Denied(_Domain):
    code = ErrorCode.DENIED


FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})  # what a write that ran out of room raises


class StorageFull(_Domain, OSError):
    """No space (or quota) left. Both an OSError, for callers that handle any failure of the
    disk, and the STORAGE_FULL error (507) that every request failing on it answers with, so
    a mirror fill or a push reports it as what it is."""

    code = ErrorCode.STORAGE_FULL

    @classmethod
    def of(cls, cause: OSError) -> StorageFull:
        """The failure a write that ran out of room raised, keeping its errno."""
        full = cls("the registry's storage is full: nothing more can be stored until space is freed",
                   {"reason": cause.strerror})
        full.errno = cause.errno
        return full


# An upstream registry of the mirror failed us.


class UpstreamFailure(_Domain):
    pass


class UpstreamUnavailable(UpstreamFailure):
    code = ErrorCode.UNAVAILABLE


class UpstreamRateLimited(UpstreamFailure):
    """The upstream answered 429; its Retry-After, when it sent one, is passed on as is."""

    code = ErrorCode.TOOMANYREQUESTS

    def __init__(self, message: str | None = None, detail: Any = None, *, retry_after: str | None = None) -> None:
        super().__init__(message, detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": self.retry_after} if self.retry_after else {}


class UpstreamUnauthorized(UpstreamFailure):
    code = ErrorCode.UNAUTHORIZED


class UpstreamDenied(UpstreamFailure):
    code = ErrorCode.DENIED


def __getattr__(name: str) -> Any:
    """`error_middleware` moved to `registry.handlers.errors`; it is resolved on first use, so
    importing this module never loads the HTTP layer."""
    if name == "error_middleware":
        from .handlers import errors

        return errors.error_middleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
