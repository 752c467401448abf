"""The one URL table of the /v2 API, most specific routes first.

Names match loosely here (`.+`) and strictly in the handlers, so a bad name gets a
NAME_INVALID error instead of an anonymous 404.
"""

from __future__ import annotations

from aiohttp import web

from .handlers import base, blobs, listing, manifests, referrers, uploads

NAME = "{name:.+}"

TABLE: list[tuple[str, str, object]] = [
    ("GET", "/v2/", base.base),
    ("GET", "/v2/_catalog", listing.catalog),
    ("GET", f"/v2/{NAME}/tags/list", listing.list_tags),
    ("GET", f"/v2/{NAME}/referrers/{{digest}}", referrers.list_referrers),
    ("POST", f"/v2/{NAME}/blobs/uploads/", uploads.start_upload),
    ("GET", f"/v2/{NAME}/blobs/uploads/{{uuid}}", uploads.upload_status),
    ("PATCH", f"/v2/{NAME}/blobs/uploads/{{uuid}}", uploads.patch_upload),
    ("PUT", f"/v2/{NAME}/blobs/uploads/{{uuid}}", uploads.put_upload),
    ("DELETE", f"/v2/{NAME}/blobs/uploads/{{uuid}}", uploads.cancel_upload),
    ("GET", f"/v2/{NAME}/blobs/{{digest}}", blobs.get_blob),
    ("DELETE", f"/v2/{NAME}/blobs/{{digest}}", blobs.delete_blob),
    ("GET", f"/v2/{NAME}/manifests/{{reference}}", manifests.get_manifest),
    ("PUT", f"/v2/{NAME}/manifests/{{reference}}", manifests.put_manifest),
    ("DELETE", f"/v2/{NAME}/manifests/{{reference}}", manifests.delete_manifest),
]


def add_routes(app: web.Application) -> None:
    """GET routes answer HEAD too (aiohttp adds it), with the same headers and no body."""
    for method, path, handler in TABLE:
        if method == "GET":
            app.router.add_get(path, handler)  # type: ignore[arg-type]
        else:
            app.router.add_route(method, path, handler)  # type: ignore[arg-type]
