"""The error model: each domain class answers with its code and status, the table covers every
code, and the HTTP rendering is byte-for-byte what clients got before the classes existed."""

from __future__ import annotations

import errno
import json
import subprocess
import sys

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from registry import errors
from registry.errors import (
    CODES,
    BlobUnknown,
    ContentCorrupted,
    Denied,
    DigestInvalid,
    ErrorCode,
    InvalidInput,
    ManifestInvalid,
    ManifestReferenceUnknown,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    NotFound,
    PaginationInvalid,
    RangeInvalid,
    RangeNotSatisfiable,
    RegistryError,
    SizeInvalid,
    StorageFull,
    TagInvalid,
    TooManyRequests,
    Unsupported,
    UnsupportedAlgorithm,
    UploadBusy,
    UploadInvalid,
    UploadUnknown,
    UpstreamDenied,
    UpstreamFailure,
    UpstreamRateLimited,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from registry.handlers.errors import HttpError, error_middleware, error_response
from registry.mediatypes import OCI_MANIFEST, declared_media_type, parse_manifest, read_stored_manifest
from registry.ranges import parse_ranges
from registry.reference import Digest, parse_name, parse_tag

DOMAIN = [
    (BlobUnknown, "BLOB_UNKNOWN", 404),
    (ManifestUnknown, "MANIFEST_UNKNOWN", 404),
    (UploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404),
    (NameUnknown, "NAME_UNKNOWN", 404),
    (ContentCorrupted, "BLOB_UNKNOWN", 404),
    (NameInvalid, "NAME_INVALID", 400),
    (TagInvalid, "TAG_INVALID", 400),
    (DigestInvalid, "DIGEST_INVALID", 400),
    (UnsupportedAlgorithm, "UNSUPPORTED", 400),
    (ManifestInvalid, "MANIFEST_INVALID", 400),
    (ManifestReferenceUnknown, "MANIFEST_BLOB_UNKNOWN", 400),
    (RangeInvalid, "RANGE_INVALID", 416),
    (UploadInvalid, "BLOB_UPLOAD_INVALID", 400),
    (PaginationInvalid, "PAGINATION_NUMBER_INVALID", 400),
    (SizeInvalid, "SIZE_INVALID", 400),
    (Unsupported, "UNSUPPORTED", 415),
    (TooManyRequests, "TOOMANYREQUESTS", 429),
    (Denied, "DENIED", 403),
    (StorageFull, "STORAGE_FULL", 507),
    (UpstreamUnavailable, "UNAVAILABLE", 503),
    (UpstreamRateLimited, "TOOMANYREQUESTS", 429),
    (UpstreamUnauthorized, "UNAUTHORIZED", 401),
    (UpstreamDenied, "DENIED", 403),
]


def body_of(response: web.Response) -> object:
    assert response.body is not None
    return json.loads(bytes(response.body))  # type: ignore[arg-type]


def test_every_code_has_one_table_entry() -> None:
    assert set(CODES) == set(ErrorCode)
    assert {str(code) for code in CODES} == {code.value for code in ErrorCode}


def test_codes_are_their_spelling() -> None:
    """Keys, comparisons and JSON behave as the plain strings they replaced."""
    assert "BLOB_UNKNOWN" in CODES
    assert ErrorCode.BLOB_UNKNOWN == "BLOB_UNKNOWN"
    assert json.dumps({"code": ErrorCode.TAG_INVALID}) == '{"code": "TAG_INVALID"}'
    assert f"{ErrorCode.DENIED}" == "DENIED"


@pytest.mark.parametrize(("cls", "code", "status"), DOMAIN)
def test_domain_class_has_its_code_and_status(cls: type[RegistryError], code: str, status: int) -> None:
    err = cls("went wrong", {"k": 1})
    assert (err.code, err.status) == (code, status)
    assert (err.message, err.detail) == ("went wrong", {"k": 1})
    assert str(err) == f"{code}: went wrong"


def test_classes_that_word_their_own_answer() -> None:
    """The words the store and the range parser have always answered with, in one place."""
    busy = UploadBusy("u-1")
    assert (busy.code, busy.status, busy.message, busy.detail) == (
        "RANGE_INVALID", 416, "another request is writing to this upload session", {"uuid": "u-1"})
    unsatisfiable = RangeNotSatisfiable(7)
    assert (unsatisfiable.code, unsatisfiable.status, unsatisfiable.message, unsatisfiable.detail) == (
        "RANGE_INVALID", 416, "range not satisfiable", {"size": 7})


def test_default_message_comes_from_the_table() -> None:
    err = BlobUnknown(detail={"digest": "sha256:x"})
    assert err.message == "blob unknown to registry"
    assert err.detail == {"digest": "sha256:x"}


def test_families() -> None:
    assert isinstance(BlobUnknown(), NotFound)
    assert not isinstance(ContentCorrupted(), NotFound), "a corrupted blob is no miss to refetch"
    assert isinstance(UnsupportedAlgorithm(), InvalidInput)
    assert isinstance(UpstreamRateLimited(), UpstreamFailure)
    assert not isinstance(Denied(), UpstreamFailure)
    assert isinstance(StorageFull(), OSError)


def test_domain_class_refuses_an_http_status() -> None:
    with pytest.raises(TypeError):
        BlobUnknown("x", status=500)


def test_storage_full_keeps_the_cause() -> None:
    full = StorageFull.of(OSError(errno.ENOSPC, "No space left on device"))
    assert full.errno == errno.ENOSPC
    assert (full.code, full.status) == ("STORAGE_FULL", 507)
    assert full.detail == {"reason": "No space left on device"}
    assert full.message.startswith("the registry's storage is full")


def test_legacy_form_sets_what_it_names() -> None:
    err = RegistryError("UNSUPPORTED", "unsupported digest algorithm md5", {"digest": "md5:x"}, status=400,
                        headers={"X-A": "b"}, close=True)
    assert (err.code, err.message, err.detail, err.status) == ("UNSUPPORTED", "unsupported digest algorithm md5",
                                                               {"digest": "md5:x"}, 400)
    assert err.headers == {"X-A": "b"} and err.close
    assert RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": "u"}).message == "blob upload unknown to registry"
    with pytest.raises(ValueError):
        RegistryError("NO_SUCH_CODE")


def test_legacy_form_renders_as_before() -> None:
    """The exact bytes the old `RegistryError.response` produced."""
    err = RegistryError("RANGE_INVALID", "range not satisfiable", {"size": 5}, headers={"Content-Range": "bytes */5"})
    response = error_response(err, "GET")
    assert response.status == 416
    assert response.body == (b'{"errors": [{"code": "RANGE_INVALID", "message": "range not satisfiable", '
                             b'"detail": {"size": 5}}]}')
    assert response.headers["Content-Range"] == "bytes */5"
    assert response.content_type == "application/json"
    assert err.response("GET").body == response.body


def test_range_not_satisfiable_states_the_size() -> None:
    response = error_response(RangeNotSatisfiable(100), "GET")
    assert response.status == 416
    assert response.headers["Content-Range"] == "bytes */100"
    assert body_of(response) == {"errors": [{"code": "RANGE_INVALID", "message": "range not satisfiable",
                                             "detail": {"size": 100}}]}


def test_rate_limit_passes_retry_after_on() -> None:
    limited = UpstreamRateLimited("upstream hub is rate-limiting pulls", {"upstream": "hub"}, retry_after="30")
    assert error_response(limited, "GET").headers["Retry-After"] == "30"
    assert "Retry-After" not in error_response(UpstreamRateLimited(), "GET").headers


def test_head_has_no_body() -> None:
    response = error_response(ManifestUnknown(), "HEAD")
    assert response.status == 404
    assert response.body is None
    assert response.content_type != "application/json"


def test_close_ends_the_connection() -> None:
    stalled = HttpError(ErrorCode.BLOB_UPLOAD_INVALID, "no body bytes arrived", status=408, close=True)
    assert error_response(stalled, "PATCH").keep_alive is False
    assert error_response(BlobUnknown(), "GET").keep_alive is None


def test_http_error_chooses_its_status_and_headers() -> None:
    err = HttpError(ErrorCode.SIZE_INVALID, "body exceeds 4 bytes", {"limit": 4}, status=413, headers={"A": "b"})
    response = error_response(err, "PUT")
    assert (response.status, response.headers["A"]) == (413, "b")
    assert body_of(response) == {"errors": [{"code": "SIZE_INVALID", "message": "body exceeds 4 bytes",
                                             "detail": {"limit": 4}}]}
    assert HttpError(ErrorCode.NOT_FOUND).status == 404


def test_middleware_still_importable_from_the_error_table() -> None:
    assert errors.error_middleware is error_middleware
    with pytest.raises(AttributeError):
        _ = errors.no_such_name


def test_error_table_loads_no_http_library() -> None:
    code = "import sys, registry.errors; assert 'aiohttp' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_parsers_raise_their_domain_class() -> None:
    with pytest.raises(DigestInvalid):
        Digest.parse("sha256:short")
    with pytest.raises(UnsupportedAlgorithm) as unsupported:
        Digest.parse("md5:" + "0" * 32)
    assert (unsupported.value.status, unsupported.value.detail) == (400, {"digest": "md5:" + "0" * 32})
    with pytest.raises(NameInvalid):
        parse_name("Upper/Case")
    with pytest.raises(TagInvalid):
        parse_tag("-dash")
    with pytest.raises(RangeNotSatisfiable) as unsatisfiable:
        parse_ranges("bytes=100-", 100)
    assert unsatisfiable.value.size == 100


def test_a_bad_digest_in_a_manifest_is_the_manifest_s_fault() -> None:
    """Digest errors inside a manifest become MANIFEST_INVALID naming the field."""
    layer = {"mediaType": "application/octet-stream", "size": 1, "digest": "md5:" + "0" * 32}
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 1, "digest": "sha256:" + "0" * 64}
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]})
    with pytest.raises(ManifestInvalid, match="unsupported digest algorithm md5"):
        parse_manifest(body.encode(), OCI_MANIFEST)
    assert read_stored_manifest(body.encode()).blobs == (Digest("sha256", "0" * 64),)
    assert declared_media_type(b"\xff not json") is None


async def _raises(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    if kind == "domain":
        raise TagInvalid("invalid tag", {"tag": "x"})
    if kind == "connection":
        raise ConnectionResetError("upstream reset")
    raise RuntimeError("boom")


async def test_middleware_renders_every_kind_of_failure(aiohttp_client: AiohttpClient) -> None:
    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/fail/{kind}", _raises)
    client = await aiohttp_client(app)
    tagged = await client.get("/fail/domain")
    assert (tagged.status, await tagged.json()) == (400, {"errors": [
        {"code": "TAG_INVALID", "message": "invalid tag", "detail": {"tag": "x"}}]})
    missing = await client.get("/nowhere")
    assert (missing.status, (await missing.json())["errors"][0]["code"]) == (404, "NOT_FOUND")
    wrong = await client.post("/fail/domain")
    assert wrong.status == 405 and wrong.headers["Allow"] == "GET,HEAD"
    assert (await wrong.json())["errors"][0]["code"] == "METHOD_NOT_ALLOWED"
    for kind, name in (("connection", "ConnectionResetError"), ("other", "RuntimeError")):
        failed = await client.get(f"/fail/{kind}")
        assert failed.status == 500, kind
        assert (await failed.json())["errors"] == [{"code": "INTERNAL", "message": name, "detail": None}]
