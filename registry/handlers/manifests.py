"""`/v2/<name>/manifests/<reference>`: pull, push and delete by tag or digest."""

from __future__ import annotations

from aiohttp import web

from ..errors import RegistryError
from ..mediatypes import MAX_MANIFEST_BYTES, accepts
from ..reference import Digest, parse_reference, parse_tag
from ..storage.protocols import Descriptor, Repository
from .base import read_limited, repository


def _existing(reference: str) -> Digest | str:
    """A reference no manifest can have is read or deleted like any absent one: 404, as the
    conformance suite, Distribution and zot have it. Only a PUT is told it is malformed."""
    try:
        return parse_reference(reference)
    except RegistryError:
        raise RegistryError("MANIFEST_UNKNOWN", detail={"reference": reference[:300]}) from None


async def _resolve(repo: Repository, reference: str) -> Digest:
    parsed = _existing(reference)
    return parsed if isinstance(parsed, Digest) else await repo.tags.resolve(parsed)


def _headers(descriptor: Descriptor) -> dict[str, str]:
    return {
        "Content-Type": descriptor.media_type,
        "Docker-Content-Digest": str(descriptor.digest),
        "ETag": f'"{descriptor.digest}"',
    }


def _check_acceptable(request: web.Request, descriptor: Descriptor) -> None:
    accept = ", ".join(request.headers.getall("Accept", []))  # clients send one header per type
    if not accepts(accept, descriptor.media_type):
        raise RegistryError("MANIFEST_UNKNOWN", f"manifest is a {descriptor.media_type}, which the "
                            "Accept header does not allow", {"mediaType": descriptor.media_type})


async def get_manifest(request: web.Request) -> web.StreamResponse:
    repo = repository(request)
    digest = await _resolve(repo, request.match_info["reference"])
    if request.method == "HEAD":
        descriptor = await repo.manifests.stat(digest)
        _check_acceptable(request, descriptor)
        response = web.StreamResponse(status=200, headers=_headers(descriptor))
        response.content_length = descriptor.size
        return response
    descriptor, body = await repo.manifests.get(digest)
    _check_acceptable(request, descriptor)
    return web.Response(body=body, headers=_headers(descriptor))


def _target(request: web.Request, body: bytes) -> tuple[Digest, list[str]]:
    """The digest to store under and the tags to set: `PUT .../<tag>` or `PUT .../<digest>?tag=`."""
    reference = parse_reference(request.match_info["reference"])
    if isinstance(reference, Digest):
        actual = Digest.of(body, reference.algorithm)
        if actual != reference:
            raise RegistryError("DIGEST_INVALID", detail={"expected": str(reference), "actual": str(actual)})
        return reference, [parse_tag(tag) for tag in request.query.getall("tag", [])]
    return Digest.of(body), [reference]


async def put_manifest(request: web.Request) -> web.Response:
    repo = repository(request)
    body = await read_limited(request, MAX_MANIFEST_BYTES, "MANIFEST_INVALID")
    digest, tags = _target(request, body)
    _, subject = await repo.manifests.put(body, request.headers.get("Content-Type"), digest)
    for tag in tags:
        await repo.tags.set(tag, digest)
    headers = {"Location": f"/v2/{repo.name}/manifests/{digest}", "Docker-Content-Digest": str(digest)}
    if subject is not None:
        headers["OCI-Subject"] = str(subject)
    return web.Response(status=201, headers=headers)


async def delete_manifest(request: web.Request) -> web.Response:
    """By digest: the manifest and its tags go. By tag: only the tag (distribution-spec v1.1)."""
    repo = repository(request)
    reference = _existing(request.match_info["reference"])
    if isinstance(reference, Digest):
        await repo.manifests.delete(reference)
    else:
        await repo.tags.delete(reference)
    return web.Response(status=202)
