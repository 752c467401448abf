"""`/v2/<name>/referrers/<digest>`: the manifests whose `subject` is that digest, as an index."""

from __future__ import annotations

import json

from aiohttp import web

from ..mediatypes import OCI_INDEX
from .base import digest_param, repository


async def list_referrers(request: web.Request) -> web.Response:
    """An unknown subject is not an error: the spec answers it with an empty index."""
    digest = digest_param(request)
    descriptors = await repository(request).referrers.list(digest)
    headers = {"Content-Type": OCI_INDEX}
    wanted = request.query.get("artifactType")
    if wanted is not None:
        descriptors = [d for d in descriptors if d.artifact_type == wanted]
        headers["OCI-Filters-Applied"] = "artifactType"
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [d.to_json() for d in sorted(descriptors, key=lambda d: d.digest)]}
    return web.Response(body=json.dumps(body).encode(), headers=headers)
