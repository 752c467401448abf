"""`ocireg seed`: pull images into the mirror's cache exactly as a client's pull would, so a later
pull (also offline) finds every manifest and blob. Content already cached is not fetched again,
which makes a second run download nothing and an interrupted run resume where it stopped.

It drives the mirror, which it reaches only through `registry.compose`: the mirror itself knows
nothing of the command-line tools."""

from __future__ import annotations

import asyncio

from ..compose import MirrorRegistry, stored
from ..errors import RegistryError
from .imageref import ImageRef
from .progress import Progress, human_bytes
from .walk import Platform, walk_image


async def _seed_one(registry: MirrorRegistry, image: ImageRef, platforms: list[Platform], progress: Progress) -> int:
    """Returns the bytes fetched from upstream for this image."""
    repo = registry.repository(image.name)
    if registry.router.route(image.name, None) is None:
        raise RegistryError("NAME_UNKNOWN", f"{image.name} is in no upstream's namespace")
    digest = image.digest or await repo.tags.resolve(image.reference)
    content = await walk_image(repo, digest, platforms)
    fetched = 0
    for blob in content.blobs:
        fetched_now = await stored(await repo.blobs.open(blob))
        fetched += fetched_now
        progress.add(nbytes=fetched_now)
    progress.add(items=1)
    return fetched


async def seed(registry: MirrorRegistry, images: list[ImageRef], platforms: list[Platform],
               jobs: int, progress: Progress) -> int:
    limit = asyncio.Semaphore(max(jobs, 1))
    fetched: list[int] = []

    async def one(image: ImageRef) -> None:
        async with limit:
            try:
                fetched.append(await _seed_one(registry, image, platforms, progress))
            except RegistryError as err:
                progress.fail(str(image), err.message)

    progress.total_items = len(images)
    await asyncio.gather(*(one(image) for image in images))
    return progress.finish(f"seeded {len(fetched)} of {len(images)} images, "
                           f"{human_bytes(sum(fetched))} fetched from upstream")
