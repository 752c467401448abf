"""`ocireg verify`: re-hash every blob and check every link, manifest and tag.

With `--repair`, corrupted blobs move to `<data>/quarantine/` and every link or tag that points
at missing content is dropped, so the next pull through the mirror fetches it again."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..bytestreams import hash_file
from ..errors import RegistryError
from ..reference import Digest
from ..storage import paths
from ..storage.inventory import (
    Inventory,
    RepoInventory,
    find_leftovers,
    read_manifest,
    remove_leftover,
    take_inventory,
)
from .progress import Progress, human_bytes

QUARANTINE = "quarantine"


Problem = tuple[str, str]  # (what: a repository, tag or blob; why)


@dataclass
class Findings:
    corrupted: set[Digest] = field(default_factory=set)
    fixable: list[Problem] = field(default_factory=list)  # a link or tag --repair drops
    unfixable: list[Problem] = field(default_factory=list)  # a pushed image missing content
    repaired: int = 0
    leftovers: int = 0
    leftover_bytes: int = 0


def _check_blobs(root: str, inventory: Inventory, findings: Findings, progress: Progress) -> None:
    for digest, (size, _) in sorted(inventory.blobs.items()):
        if hash_file(os.path.join(root, paths.blob_data(digest)), digest.algorithm) != digest.hex:
            findings.corrupted.add(digest)
        progress.add(items=1, nbytes=size)


class Checker:
    def __init__(self, root: str, inventory: Inventory, findings: Findings, repair: bool, mirrored: set[str]) -> None:
        self.root = root
        self.present = set(inventory.blobs) - findings.corrupted
        self.findings = findings
        self.repair = repair
        self.mirrored = mirrored

    def _drop(self, relative: str, problem: Problem) -> None:
        self.findings.fixable.append(problem)
        if self.repair:
            try:
                os.unlink(os.path.join(self.root, relative))
                self.findings.repaired += 1
            except FileNotFoundError:
                pass

    def repository(self, repo: RepoInventory) -> None:
        for digest in list(repo.layers):
            if digest not in self.present:
                self._drop(paths.layer_link(repo.name, digest), (repo.name, f"blob {digest} is missing or corrupted"))
                del repo.layers[digest]
        for digest in list(repo.manifests):
            if digest not in self.present:
                self._drop(paths.manifest_link(repo.name, digest),
                           (repo.name, f"manifest {digest} is missing or corrupted"))
                del repo.manifests[digest]
            else:
                self._references(repo, digest)
        for tag, digest in repo.tags.items():
            if digest not in repo.manifests:
                self._drop(paths.tag(repo.name, tag), (f"{repo.name}:{tag}", f"points at {digest}, which is not here"))

    def _references(self, repo: RepoInventory, digest: Digest) -> None:
        """Pushed images must be complete; a mirror fetches what it lacks on demand."""
        if repo.name in self.mirrored:
            return
        try:
            parsed = read_manifest(self.root, digest)
        except RegistryError as err:
            self.findings.unfixable.append((repo.name, f"manifest {digest} does not parse: {err.message}"))
            return
        for blob in parsed.blobs:
            if blob not in self.present:
                self.findings.unfixable.append((repo.name, f"manifest {digest} needs blob {blob}, which is missing"))
        for child in parsed.manifests:
            if child not in repo.manifests:
                self.findings.unfixable.append((repo.name, f"index {digest} needs manifest {child}, which is missing"))


def _quarantine(root: str, digest: Digest) -> None:
    folder = os.path.join(root, QUARANTINE)
    os.makedirs(folder, exist_ok=True)
    os.replace(os.path.join(root, paths.blob_data(digest)), os.path.join(folder, f"{digest.algorithm}-{digest.hex}"))


def _leftovers(root: str, upload_expiry: float, repair: bool, findings: Findings) -> None:
    """Space nothing will ever read again is a fault too: a disk filled by failed pushes
    must not be reported clean."""
    for leftover in find_leftovers(root, upload_expiry, time.time()):
        findings.fixable.append((leftover.path, f"{leftover.why}, {human_bytes(leftover.size)}"))
        findings.leftovers += 1
        findings.leftover_bytes += leftover.size
        if repair:
            remove_leftover(root, leftover)


def verify(root: str, repair: bool, is_mirrored: Callable[[str], bool], progress: Progress,
           upload_expiry: float) -> int:
    """Blocking: run it on a worker thread. Returns the exit status: non-zero while anything
    is wrong, or, with --repair, while anything is left that repairing could not mend."""
    findings = Findings()
    _leftovers(root, upload_expiry, repair, findings)
    inventory = take_inventory(root)
    progress.total_items = len(inventory.blobs)
    _check_blobs(root, inventory, findings, progress)
    for digest in sorted(findings.corrupted):
        findings.fixable.append((f"blob {digest}", "content does not match its digest"))
        if repair:
            _quarantine(root, digest)
    mirrored = {repo.name for repo in inventory.repositories if is_mirrored(repo.name)}
    checker = Checker(root, inventory, findings, repair, mirrored)
    for repo in inventory.repositories:
        checker.repository(repo)
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
