"""`ocireg export`: images out of the store into an OCI layout archive, for a CI cache.

Content a partial pull left out is fetched through the mirror first, so the archive holds whole
images; the archive itself is written under a temporary name and renamed when complete."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ..compose import Services, stored
from ..errors import RegistryError
from ..reference import Digest
from .archive import CONTAINERD_NAME, OCI_INDEX, REF_NAME, write_archive
from .errors import CommandError
from .imageref import ImageRef, ImageRefError, parse_image
from .progress import Progress, human_bytes
from .walk import walk_image


async def resolve_name(services: Services, text: str) -> ImageRef:
    """A name pushed to ocireg as written (`team/app:v1`) is exported as such; anything else is
    read with Docker's conventions (`alpine` is `docker.io/library/alpine`)."""
    local = parse_image(text, None)
    if not services.is_mirrored(local.name) and await services.local.repository(local.name).exists():
        return local
    return parse_image(text, set(services.upstream_names))


async def _collect(services: Services, image: ImageRef) -> tuple[dict[str, Any], dict[Digest, str]]:
    repo = services.repositories.repository(image.name)
    digest = image.digest or await repo.tags.resolve(image.reference)
    content = await walk_image(repo, digest, [])
    for blob in content.blobs:
        await stored(await repo.blobs.open(blob))
    digests = [*content.blobs, *(descriptor.digest for descriptor, _ in content.manifests)]
    paths = {digest: services.local.content.path(digest) for digest in digests}
    top = content.manifests[0][0]
    entry = {"mediaType": top.media_type, "digest": str(top.digest), "size": top.size,
             "annotations": {CONTAINERD_NAME: str(image)}}
    return entry, paths


def _name_entries(entries: list[tuple[ImageRef, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each image's tag is its ref name (`oci-archive:cache.tar:3.20`), unless two share it:
    then the full reference is, so no name is ambiguous."""
    tags = [image.tag for image, _ in entries if image.tag]
    for image, entry in entries:
        if image.tag:
            unique = tags.count(image.tag) == 1
            entry["annotations"][REF_NAME] = image.tag if unique else f"{image.name}:{image.tag}"
    return [entry for _, entry in entries]


async def export(services: Services, texts: list[str], output: str, progress: Progress) -> int:
    entries: list[tuple[ImageRef, dict[str, Any]]] = []
    blobs: dict[Digest, str] = {}
    progress.total_items = len(texts)
    for text in texts:
        try:
            image = await resolve_name(services, text)
            entry, paths = await _collect(services, image)
        except (RegistryError, ImageRefError) as err:
            progress.fail(text, err.message if isinstance(err, RegistryError) else str(err))
            continue
        entries.append((image, entry))
        blobs.update(paths)
        progress.add(items=1)
    if progress.failures:
        return progress.finish(f"nothing written to {output}")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": _name_entries(entries)}
    progress.items, progress.total_items = 0, len(blobs)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.to_thread(write_archive, output, index, sorted(blobs.items()),
                                lambda size: loop.call_soon_threadsafe(progress.add, 1, size))
    except OSError as err:
        raise CommandError(f"cannot write {output}: {err.strerror or err}; nothing written") from None
    total = sum(os.path.getsize(path) for path in blobs.values())  # noqa: ASYNC240 - stats after the write
    return progress.finish(f"exported {len(entries)} images ({len(blobs)} blobs, {human_bytes(total)}) to {output}")
