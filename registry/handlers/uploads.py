"""`/v2/<name>/blobs/uploads/`: monolithic, chunked and resumable pushes, and mounts."""

from __future__ import annotations

from aiohttp import web

from ..errors import RegistryError, StorageFull
from ..keys import REGISTRY
from ..reference import Digest, parse_name
from ..storage.protocols import Descriptor, Repository, UploadWriter
from .base import ChunkRange, chunk_range, query_digest, repository, stream_body


def _session_headers(name: str, upload: UploadWriter) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload.id}",
        "Range": f"0-{max(upload.offset - 1, 0)}",
        "Docker-Upload-UUID": upload.id,
    }


def _created(name: str, descriptor: Descriptor) -> web.Response:
    return web.Response(status=201, headers={
        "Location": f"/v2/{name}/blobs/{descriptor.digest}",
        "Docker-Content-Digest": str(descriptor.digest),
    })


async def _try_mount(request: web.Request, repo: Repository, mount: str) -> Descriptor | None:
    source_name = request.query.get("from")
    if not source_name:
        return None
    digest = Digest.parse(mount)
    source = request.app[REGISTRY].repository(parse_name(source_name), ns=request.query.get("ns"))
    return await repo.blobs.mount(digest, source)


async def start_upload(request: web.Request) -> web.Response:
    repo = repository(request)
    mount = request.query.get("mount")
    if mount is not None:
        mounted = await _try_mount(request, repo, mount)
        if mounted is not None:
            return _created(repo.name, mounted)
    digest = query_digest(request)
    algorithm = digest.algorithm if digest else request.query.get("digest-algorithm", "sha256")
    upload = await repo.uploads.start(algorithm)
    if digest is None:
        await upload.close()
        return web.Response(status=202, headers=_session_headers(repo.name, upload))
    return _created(repo.name, await _finish(request, upload, digest))


async def _finish(request: web.Request, upload: UploadWriter, digest: Digest) -> Descriptor:
    """A monolithic push: the whole body, then verify. Any failure removes the session."""
    try:
        await stream_body(request, upload)
        return await upload.commit(digest)
    except BaseException:
        await upload.cancel()
        raise


async def _claim(request: web.Request, name: str, upload: UploadWriter) -> ChunkRange | None:
    """Become the session's one writer before any body is read, then check that the chunk
    starts where the session ends (only the writer knows that for sure)."""
    await upload.claim()
    declared = chunk_range(request)
    if declared is not None and declared.start != upload.offset:
        raise RegistryError("RANGE_INVALID", "chunk does not start where the upload ends",
                            {"expected": upload.offset, "got": declared.start},
                            headers=_session_headers(name, upload))
    return declared


async def _append(request: web.Request, upload: UploadWriter, declared: ChunkRange | None) -> None:
    """Append the body to a session. A chunk with a `Content-Range` is kept whole or not at
    all; a stream without one keeps what arrived before it broke off, so it can be resumed,
    unless the disk is full: then what this request wrote goes at once, to free the space."""
    start = upload.offset
    try:
        await stream_body(request, upload, declared.length if declared else None)
    except BaseException as err:
        if declared is not None or isinstance(err, StorageFull):
            await upload.truncate(start)
        raise


async def _commit(upload: UploadWriter, digest: Digest) -> Descriptor:
    """Storage full while publishing: the session's bytes are what fills the disk, and they
    could not be published anyway; the session goes and the client starts over later."""
    try:
        return await upload.commit(digest)
    except RegistryError as err:
        if isinstance(err, StorageFull):
            await upload.cancel()
        raise


async def patch_upload(request: web.Request) -> web.Response:
    repo = repository(request)
    upload = await repo.uploads.resume(request.match_info["uuid"])
    try:
        await _append(request, upload, await _claim(request, repo.name, upload))
    finally:
        await upload.close()
    return web.Response(status=202, headers=_session_headers(repo.name, upload))


async def put_upload(request: web.Request) -> web.Response:
    repo = repository(request)
    digest = query_digest(request)
    if digest is None:
        raise RegistryError("DIGEST_INVALID", "the digest query parameter is required")
    upload = await repo.uploads.resume(request.match_info["uuid"])
    try:
        await _append(request, upload, await _claim(request, repo.name, upload))
        descriptor = await _commit(upload, digest)
    finally:
        await upload.close()
    return _created(repo.name, descriptor)


async def upload_status(request: web.Request) -> web.Response:
    repo = repository(request)
    upload = await repo.uploads.resume(request.match_info["uuid"])
    await upload.close()
    return web.Response(status=204, headers=_session_headers(repo.name, upload))


async def cancel_upload(request: web.Request) -> web.Response:
    upload = await repository(request).uploads.resume(request.match_info["uuid"])
    await upload.cancel()
    return web.Response(status=204)
