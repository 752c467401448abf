"""`ocireg import`: an OCI layout archive (ours, skopeo's, buildkit's) into the store.

Blobs are streamed from the archive into the content store, each verified against its digest.
Nothing is linked or tagged until every image in the archive has been checked complete, so a
corrupted or partial archive leaves no visible trace; importing twice changes nothing."""

from __future__ import annotations

import json
import tarfile
from typing import Any

from ..errors import RegistryError
from ..mediatypes import MAX_MANIFEST_BYTES, parse_manifest
from ..reference import Digest, parse_name
from ..storage.local import LocalRegistry, LocalRepository
from ..storage.uploads import LocalUploadStore
from .archive import (
    CONTAINERD_NAME,
    INDEX_FILE,
    REF_NAME,
    ArchiveError,
    member_digest,
    member_path,
    open_archive,
    read_member,
)
from .errors import CommandError
from .imageref import ImageRef, ImageRefError, parse_image
from .progress import Progress, human_bytes

SCRATCH = "ocireg-import"
READ = 1024 * 1024


async def _ingest_blobs(store: LocalRegistry, path: str, progress: Progress) -> dict[str, Any]:
    """Streams every blob into the content store; returns index.json."""
    uploads = store.repository(SCRATCH).uploads
    index: dict[str, Any] | None = None
    with open_archive(path) as tar:
        for member in tar:
            if not member.isfile():
                continue
            if member_path(member.name) == INDEX_FILE:
                index = _read_index(tar, member)
                continue
            digest = member_digest(member.name)
            if digest is not None:
                await _ingest_blob(uploads, tar, member, digest)
                progress.add(nbytes=member.size)
    if index is None:
        raise ArchiveError(f"no {INDEX_FILE}: not an OCI image layout")
    return index


async def _ingest_blob(uploads: LocalUploadStore, tar: tarfile.TarFile, member: tarfile.TarInfo,
                       digest: Digest) -> None:
    """Hashed while written, and never more than the member's declared size."""
    handle = read_member(tar, member)
    upload = await uploads.start(digest.algorithm)
    try:
        remaining = member.size
        while remaining > 0:
            chunk = handle.read(min(READ, remaining))
            if not chunk:
                raise ArchiveError(f"{member.name[:200]}: the archive ends inside it")
            remaining -= len(chunk)
            await upload.write(chunk)
    except BaseException:
        await upload.cancel()  # a truncated archive leaves no upload behind
        raise
    try:
        await upload.publish(digest)
    except RegistryError as err:
        if err.code != "DIGEST_INVALID":  # a full disk is no fault of the archive
            raise
        raise ArchiveError(f"{member.name[:200]}: content does not match its digest (corrupted archive)") from None


def _read_index(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Any:
    if member.size > MAX_MANIFEST_BYTES:
        raise ArchiveError(f"{INDEX_FILE} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        return json.loads(read_member(tar, member).read())
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise ArchiveError(f"{INDEX_FILE} is not valid JSON") from None


def _entries(index: Any, default_name: str | None) -> list[tuple[ImageRef, Digest, Any]]:
    """index.json's images, each checked for shape: whatever the archive holds, a bad entry is
    an ArchiveError naming it, never a KeyError or AttributeError from deep inside."""
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise ArchiveError(f"{INDEX_FILE} is not an image index: it has no list of manifests")
    entries = []
    for position, entry in enumerate(manifests):
        digest = entry.get("digest") if isinstance(entry, dict) else None
        annotations = (entry.get("annotations") or {}) if isinstance(entry, dict) else None
        if not isinstance(digest, str) or not isinstance(annotations, dict):
            raise ArchiveError(f"{INDEX_FILE}: entry {position} is not a descriptor with a digest")
        try:
            entries.append((_entry_image(digest, annotations, default_name), Digest.parse(digest), entry.get("size")))
        except RegistryError as err:
            raise ArchiveError(f"{INDEX_FILE}: entry {position}: {err.message}: {digest[:80]!r}") from None
    return entries


def _text(annotations: dict[str, Any], key: str) -> str | None:
    value = annotations.get(key)
    if value is not None and not isinstance(value, str):
        raise ArchiveError(f"{INDEX_FILE}: annotation {key} is not a string")
    return value or None


def _entry_image(digest: str, annotations: dict[str, Any], default_name: str | None) -> ImageRef:
    """Names are taken as written: an image exported from `team/app` comes back there, one
    exported from the mirror's cache (`docker.io/library/app`) back into the cache."""
    full = _text(annotations, CONTAINERD_NAME)
    ref = _text(annotations, REF_NAME)
    named = full or (ref if ref and ("/" in ref or ref.count(":") == 1) else None)
    if named is not None:
        return parse_image(named, None)
    if default_name is None:
        raise ImageRefError(f"index entry {digest[:80]} names no repository (ref name "
                            f"{ref!r}); give one with --name")
    return parse_image(f"{default_name}:{ref}" if ref else default_name, None)


async def _check_complete(store: LocalRegistry, digest: Digest) -> None:
    content = store.content
    if not await content.exists(digest):
        raise ArchiveError(f"{digest} is referenced but not in the archive or the store")
    body = await content.read(digest)
    parsed = parse_manifest(body, None)
    for child in parsed.manifests:
        await _check_complete(store, child)
    for blob in parsed.blobs:
        if not await content.exists(blob):
            raise ArchiveError(f"blob {blob} of manifest {digest} is missing")
    await _check_sizes(store, digest, body)


def _descriptors(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = [doc.get("config"), *(doc.get("layers") or []), *(doc.get("manifests") or [])]
    return [d for d in found if isinstance(d, dict) and isinstance(d.get("digest"), str)]


async def _check_sizes(store: LocalRegistry, digest: Digest, body: bytes) -> None:
    """Every descriptor's size must be the size of the content it names: a client trusts the
    descriptor (Content-Length checks, progress, preallocation) and would be misled."""
    content = store.content
    for descriptor in _descriptors(json.loads(body)):  # parse_manifest accepted it: an object
        try:
            named = Digest.parse(descriptor["digest"])
        except RegistryError:  # a foreign layer's, which parse_manifest lets pass
            continue
        if await content.exists(named):
            _same_size(descriptor.get("size"), await content.size(named), f"{named} (named by {digest})")


def _same_size(declared: Any, actual: int, what: str) -> None:
    if isinstance(declared, bool) or not isinstance(declared, int) or declared != actual:
        raise ArchiveError(f"{what} holds {actual} bytes but its descriptor says {declared!r}")


async def _link(repo: LocalRepository, store: LocalRegistry, digest: Digest) -> str:
    """Blobs, then children, then the manifest itself: links never point at incomplete images.
    The manifest goes through the same `put` a client's push does, so whatever a push records
    beside the link (the referrers index, for a manifest with a `subject`) is recorded too."""
    content = store.content
    body = await content.read(digest)
    parsed = parse_manifest(body, None)
    for blob in parsed.blobs:
        await repo.blobs.link(blob, await content.size(blob))
    for child in parsed.manifests:
        await _link(repo, store, child)
    await repo.manifests.put(body, parsed.media_type, digest)
    return parsed.media_type


async def _link_image(store: LocalRegistry, image: ImageRef, digest: Digest) -> None:
    """Each image is complete when its tag appears: the tag is written last."""
    repo = store.repository(parse_name(image.name))
    await _link(repo, store, digest)
    if image.tag:
        await repo.tags.set(image.tag, digest)


async def import_archive(store: LocalRegistry, path: str, default_name: str | None, progress: Progress) -> int:
    """Archive-wide failures raise CommandError naming the archive: nothing was linked then."""
    try:
        entries = _entries(await _ingest_blobs(store, path, progress), default_name)
        for _, digest, size in entries:
            await _check_complete(store, digest)
            _same_size(size, await store.content.size(digest), f"{digest} (named by {INDEX_FILE})")
    except OSError as err:
        raise CommandError(f"{path}: {err.strerror or err}; nothing imported") from None
    except (ArchiveError, ImageRefError, ValueError, RecursionError, tarfile.TarError) as err:
        raise CommandError(f"{path}: {err}; nothing imported") from None
    except RegistryError as err:
        raise CommandError(f"{path}: {err.message}; nothing imported") from None
    for image, digest, _ in entries:
        try:
            await _link_image(store, image, digest)
        except (RegistryError, OSError) as err:  # a gc or a full disk between check and link
            why = err.message if isinstance(err, RegistryError) else err.strerror or str(err)
            raise CommandError(f"{path}: {image}: {why}; {progress.items} of {len(entries)} images "
                               "imported") from None
        progress.add(items=1)
    names = ", ".join(str(image) if image.tag else f"{image.name}@{digest}" for image, digest, _ in entries)
    return progress.finish(f"imported {len(entries)} images ({human_bytes(progress.bytes)} read): {names}")
