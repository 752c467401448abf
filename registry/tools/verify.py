"""`ocireg verify`: re-hash every blob and check every link, manifest and tag.

With `--repair`, corrupted blobs move to `<data>/quarantine/` and every link or tag that points
at missing content is dropped, so the next pull through the mirror fetches it again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..errors import RegistryError
from ..reference import Digest
from ..storage import paths
from ..storage.driver.base import Driver, PathNotFound
from ..storage.driver.filesystem import FilesystemDriver
from ..storage.hashing import digest_of
from ..storage.inventory import (
    Inventory,
    RepoInventory,
    find_leftovers,
    read_manifest,
    remove_leftover,
    run_blocking,
    take_inventory,
)
from .progress import Progress, human_bytes

QUARANTINE = "quarantine"
HASHING_JOBS = 4  # blobs hashed at once: a worker thread each, so the cores and the disk queue stay busy


Problem = tuple[str, str]  # (what: a repository, tag or blob; why)


@dataclass
class Findings:
    corrupted: set[Digest] = field(default_factory=set)
    vanished: set[Digest] = field(default_factory=set)  # removed since the inventory (a gc running)
    fixable: list[Problem] = field(default_factory=list)  # a link or tag --repair drops
    unfixable: list[Problem] = field(default_factory=list)  # a pushed image missing content
    repaired: int = 0
    leftovers: int = 0
    leftover_bytes: int = 0


async def _check_blobs(driver: Driver, inventory: Inventory, findings: Findings, progress: Progress) -> None:
    """Every blob re-hashed, a few at once, in digest order."""
    todo: Iterator[tuple[Digest, tuple[int, float]]] = iter(sorted(inventory.blobs.items()))

    async def work() -> None:
        for digest, (size, _) in todo:
            try:
                if await digest_of(driver, paths.blob_data(digest), digest.algorithm) != digest.hex:
                    findings.corrupted.add(digest)
            except PathNotFound:
                findings.vanished.add(digest)
            progress.add(items=1, nbytes=size)

    await asyncio.gather(*(work() for _ in range(HASHING_JOBS)))


class Checker:
    def __init__(self, driver: Driver, inventory: Inventory, findings: Findings, repair: bool,
                 mirrored: set[str]) -> None:
        self.driver = driver
        self.present = set(inventory.blobs) - findings.corrupted - findings.vanished
        self.findings = findings
        self.repair = repair
        self.mirrored = mirrored

    async def _drop(self, relative: str, problem: Problem) -> None:
        self.findings.fixable.append(problem)
        if self.repair and await self.driver.exists(relative):
            await self.driver.delete(relative)
            self.findings.repaired += 1

    async def repository(self, repo: RepoInventory) -> None:
        for digest in list(repo.layers):
            if digest not in self.present:
                await self._drop(paths.layer_link(repo.name, digest),
                                 (repo.name, f"blob {digest} is missing or corrupted"))
                del repo.layers[digest]
        for digest in list(repo.manifests):
            if digest not in self.present:
                await self._drop(paths.manifest_link(repo.name, digest),
                           (repo.name, f"manifest {digest} is missing or corrupted"))
                del repo.manifests[digest]
            else:
                await self._references(repo, digest)
        for tag, digest in repo.tags.items():
            if digest not in repo.manifests:
                await self._drop(paths.tag(repo.name, tag),
                                 (f"{repo.name}:{tag}", f"points at {digest}, which is not here"))

    async def _references(self, repo: RepoInventory, digest: Digest) -> None:
        """Pushed images must be complete; a mirror fetches what it lacks on demand."""
        if repo.name in self.mirrored:
            return
        try:
            parsed = await read_manifest(self.driver, digest)
        except RegistryError as err:
            self.findings.unfixable.append((repo.name, f"manifest {digest} does not parse: {err.message}"))
            return
        for blob in parsed.blobs:
            if blob not in self.present:
                self.findings.unfixable.append((repo.name, f"manifest {digest} needs blob {blob}, which is missing"))
        for child in parsed.manifests:
            if child not in repo.manifests:
                self.findings.unfixable.append((repo.name, f"index {digest} needs manifest {child}, which is missing"))


async def _quarantine(driver: Driver, digest: Digest) -> None:
    await driver.move(paths.blob_data(digest), f"{QUARANTINE}/{digest.algorithm}-{digest.hex}")


async def _leftovers(driver: Driver, inventory: Inventory, upload_expiry: float, repair: bool,
                     findings: Findings) -> None:
    """Space nothing will ever read again is a fault too: a disk filled by failed pushes
    must not be reported clean."""
    for leftover in await find_leftovers(driver, inventory, upload_expiry, time.time()):
        findings.fixable.append((leftover.path, f"{leftover.why}, {human_bytes(leftover.size)}"))
        findings.leftovers += 1
        findings.leftover_bytes += leftover.size
        if repair:
            await remove_leftover(driver, leftover)


def verify(root: str, repair: bool, is_mirrored: Callable[[str], bool], progress: Progress,
           upload_expiry: float) -> int:
    """Blocking: `verify_store` over the data folder at `root`, for the command line."""
    return run_blocking(lambda: verify_store(FilesystemDriver(root), repair, is_mirrored, progress, upload_expiry))


async def verify_store(driver: Driver, repair: bool, is_mirrored: Callable[[str], bool], progress: Progress,
                       upload_expiry: float) -> int:
    """Returns the exit status: non-zero while anything is wrong, or, with repair, while
    anything is left that repairing could not mend."""
    findings = Findings()
    inventory = await take_inventory(driver)
    await _leftovers(driver, inventory, upload_expiry, repair, findings)
    progress.total_items = len(inventory.blobs)
    await _check_blobs(driver, inventory, findings, progress)
    for digest in sorted(findings.corrupted):
        findings.fixable.append((f"blob {digest}", "content does not match its digest"))
        if repair:
            await _quarantine(driver, digest)
    mirrored = {repo.name for repo in inventory.repositories if is_mirrored(repo.name)}
    checker = Checker(driver, inventory, findings, repair, mirrored)
    for repo in inventory.repositories:
        await checker.repository(repo)
    for what, why in findings.fixable:
        if repair:
            progress.note(f"repaired: {what}: {why}")
        else:
            progress.fail(what, why)
    for what, why in findings.unfixable:
        progress.fail(what, why)
    total = sum(size for size, _ in inventory.blobs.values())
    summary = (f"verified {len(inventory.blobs)} blobs ({human_bytes(total)}) in "
               f"{len(inventory.repositories)} repositories")
    if repair and findings.fixable:
        summary += (f"; repaired: {len(findings.corrupted)} blobs quarantined, {findings.repaired} links dropped, "
                    f"{findings.leftovers} leftovers removed ({human_bytes(findings.leftover_bytes)})")
    return progress.finish(summary)
