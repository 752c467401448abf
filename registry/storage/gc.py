"""Mark and sweep, safe while the server runs.

Mark: every blob a manifest of any repository refers to, and every blob linked within the grace
period (a push in progress). Sweep: blob files nobody marks, older than the grace period,
re-checked just before removal (a push that reuses old content touches it, which restarts its
grace), with the links that pointed at them. Uploads in flight live outside the blob store and
are not touched until they have been idle for `UPLOAD_EXPIRY`. A grace of zero gives up that
protection: only use it with the server stopped.

Options shrink what is kept before the mark: `untagged` drops manifests no tag reaches and no
kept manifest is the subject of; `older_than` and `max_size` evict mirrored images (never
pushed ones) by when they were last pulled, which the mirror records on the manifest link.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import RegistryError
from ..mediatypes import ParsedManifest
from ..reference import Digest
from . import paths
from .driver.base import Driver, PathNotFound
from .driver.filesystem import FilesystemDriver
from .inventory import (
    Inventory,
    RepoInventory,
    empty_upload_folders,
    is_temporary,
    read_manifest,
    run_blocking,
    take_inventory,
    upload_files,
)

log = logging.getLogger("ocireg.gc")
UPLOAD_EXPIRY = 7 * 86400.0


@dataclass(frozen=True)
class GcOptions:
    dry_run: bool = False
    untagged: bool = False
    max_size: int | None = None
    older_than: float | None = None
    grace: float = 3600.0
    upload_expiry: float = UPLOAD_EXPIRY

    @property
    def session_limit(self) -> float:
        """How long a session may be idle: with a grace of zero no request is in flight."""
        return self.upload_expiry if self.grace > 0 else 0.0


@dataclass
class GcReport:
    manifests_removed: list[str] = field(default_factory=list)
    blobs_removed: int = 0
    uploads_removed: int = 0
    leftovers_removed: int = 0
    bytes_freed: int = 0
    bytes_kept: int = 0


class Store:
    """Manifests read once per run, and the driver operations gc performs (or only reports)."""

    def __init__(self, driver: Driver, dry_run: bool) -> None:
        self.driver = driver
        self.dry_run = dry_run
        self._parsed: dict[Digest, ParsedManifest | None] = {}

    async def load(self, inventory: Inventory) -> None:
        """Read every linked manifest not read yet, so marking is pure computation; one that is
        missing or does not parse counts as no manifest."""
        for repo in inventory.repositories:
            for digest in repo.manifests:
                if digest not in self._parsed:
                    try:
                        self._parsed[digest] = await read_manifest(self.driver, digest)
                    except (PathNotFound, OSError, RegistryError):
                        self._parsed[digest] = None

    def manifest(self, digest: Digest) -> ParsedManifest | None:
        """Only digests linked as manifests are asked for, and `load` read all of those."""
        return self._parsed[digest]

    async def renewed(self, relative: str, seen: float) -> bool:
        """True when the file changed since the inventory saw it at `seen`."""
        try:
            return (await self.driver.stat(relative)).mtime > seen
        except PathNotFound:
            return False

    async def remove(self, relative: str) -> None:
        if not self.dry_run:
            await self.driver.delete(relative)


def _closure(store: Store, roots: set[Digest], linked: set[Digest]) -> set[Digest]:
    """Roots, their children (indexes), and referrers of anything kept, within one repository."""
    subjects = {d: parsed.subject for d in linked if (parsed := store.manifest(d)) is not None and parsed.subject}
    kept: set[Digest] = set()
    todo = [d for d in roots if d in linked]
    while todo:
        digest = todo.pop()
        if digest in kept:
            continue
        kept.add(digest)
        parsed = store.manifest(digest)
        todo.extend(child for child in (parsed.manifests if parsed else ()) if child in linked)
        todo.extend(ref for ref, subject in subjects.items() if subject == digest)
    return kept


async def _drop_manifests(store: Store, repo: RepoInventory, keep: set[Digest], report: GcReport,
                          grace: float) -> None:
    now = time.time()
    for digest, mtime in list(repo.manifests.items()):
        if digest in keep or now - mtime < grace:
            continue
        await store.remove(paths.manifest_link(repo.name, digest))
        del repo.manifests[digest]
        report.manifests_removed.append(f"{repo.name}@{digest}")
    for tag, digest in list(repo.tags.items()):
        if digest not in repo.manifests:
            await store.remove(paths.tag(repo.name, tag))
            del repo.tags[tag]


async def _untagged(store: Store, inventory: Inventory, report: GcReport, grace: float) -> None:
    for repo in inventory.repositories:
        linked = set(repo.manifests)
        await _drop_manifests(store, repo, _closure(store, set(repo.tags.values()), linked), report, grace)


def _blobs_of(store: Store, digests: set[Digest]) -> set[Digest]:
    found = set(digests)
    for digest in digests:
        parsed = store.manifest(digest)
        if parsed is not None:
            found.update(parsed.blobs)
    return found


async def _evict_mirrored(store: Store, inventory: Inventory, is_mirrored: Callable[[str], bool],
                    options: GcOptions, report: GcReport) -> None:
    """Least recently pulled mirrored images go first, until the store fits and nothing stale is left."""
    images = []  # (last pulled, repo, closure)
    refcount: Counter[Digest] = Counter()
    for repo in inventory.repositories:
        linked = set(repo.manifests)
        for root in set(repo.tags.values()) or linked:
            closure = _closure(store, {root}, linked)
            blobs = _blobs_of(store, closure)
            refcount.update(blobs)
            if is_mirrored(repo.name):
                pulled = max((repo.manifests[d] for d in closure), default=0.0)
                images.append((pulled, repo, closure, blobs))
    total = sum(inventory.blobs.get(d, (0, 0.0))[0] for d in refcount)
    now = time.time()
    for pulled, repo, closure, blobs in sorted(images, key=lambda item: item[0]):
        too_old = options.older_than is not None and now - pulled > options.older_than
        too_big = options.max_size is not None and total > options.max_size
        if not (too_old or too_big):
            continue
        refcount.subtract(blobs)
        total -= sum(inventory.blobs.get(d, (0, 0.0))[0] for d in blobs if refcount[d] <= 0)
        keep = set(repo.manifests) - closure
        await _drop_manifests(store, repo, keep, report, grace=0.0)
        for digest in list(repo.layers):
            if digest in blobs:
                await store.remove(paths.layer_link(repo.name, digest))
                del repo.layers[digest]


def _mark(store: Store, inventory: Inventory, grace: float) -> set[Digest]:
    """Blobs some manifest refers to, and blobs linked within the grace period: a push in
    progress links its blobs before its manifest arrives."""
    marked: set[Digest] = set()
    now = time.time()
    for repo in inventory.repositories:
        marked.update(_blobs_of(store, set(repo.manifests)))
        marked.update(d for d, linked in repo.layers.items() if now - linked < grace)
    return marked


async def _unlink_layers(store: Store, inventory: Inventory, marked: set[Digest]) -> None:
    """A link to a blob no manifest needs goes with the blob, so a client that asks for it
    again uploads it again instead of trusting content about to vanish."""
    for repo in inventory.repositories:
        for digest in [d for d in repo.layers if d not in marked]:
            if await store.renewed(paths.layer_link(repo.name, digest), repo.layers[digest]):
                continue  # re-linked by a push since the inventory was taken
            await store.remove(paths.layer_link(repo.name, digest))
            del repo.layers[digest]


async def _sweep(store: Store, inventory: Inventory, marked: set[Digest], report: GcReport, grace: float) -> None:
    """A fresh inventory guards against content referenced or linked since the first mark,
    and each blob's age is read again just before it goes (reuse renews it)."""
    again = marked
    if not store.dry_run:
        fresh = await take_inventory(store.driver)
        await store.load(fresh)
        again = _mark(store, fresh, grace)
    now = time.time()
    for digest, (size, _) in inventory.blobs.items():
        if digest in marked or digest in again:
            report.bytes_kept += size
            continue
        path = paths.blob_data(digest)
        try:
            if now - (await store.driver.stat(path)).mtime < grace:
                report.bytes_kept += size
                continue
        except PathNotFound:
            continue
        await store.remove(path)
        if not store.dry_run:
            await store.driver.prune(path.rpartition("/")[0])
        report.blobs_removed += 1
        report.bytes_freed += size


async def _expire_uploads(store: Store, options: GcOptions, report: GcReport) -> None:
    """Sessions idle past their limit, and folders no session can use (no state: a start cut
    short) once older than the grace. A session's last change is that of its newest file, or
    of its folder, where the driver has folders (an entry added or removed)."""
    sessions, strays = await upload_files(store.driver)
    usage = {upload_id: (0, mtime, False)
             for upload_id, mtime in (await empty_upload_folders(store.driver, sessions, strays)).items()}
    for upload_id, files in sessions.items():
        changed = max(info.mtime for info in files)
        with contextlib.suppress(PathNotFound):
            changed = max(changed, (await store.driver.stat(paths.upload_dir(upload_id))).mtime)
        stateful = any(info.path == paths.upload_state(upload_id) for info in files)
        usage[upload_id] = (sum(info.size for info in files), changed, stateful)
    now = time.time()
    for upload_id, (size, changed, stateful) in usage.items():
        if now - changed <= (options.session_limit if stateful else options.grace):
            continue
        if not store.dry_run:
            with contextlib.suppress(OSError):
                await store.driver.delete(paths.upload_dir(upload_id))
        report.uploads_removed += 1
        report.bytes_freed += size


async def _remove_leftovers(store: Store, inventory: Inventory, grace: float, report: GcReport) -> None:
    """Temporary files (`.tmp-*`) of atomic writes a crash or a full disk cut short: those the
    inventory met, and those in the upload sessions left now."""
    now = time.time()
    in_uploads = [info async for info in store.driver.walk(paths.UPLOADS) if is_temporary(info)]
    for info in [*inventory.temporary, *in_uploads]:
        if now - info.mtime <= grace or not await store.driver.exists(info.path):
            continue
        await store.remove(info.path)
        report.leftovers_removed += 1
        report.bytes_freed += info.size


async def sweep(driver: Driver, options: GcOptions, is_mirrored: Callable[[str], bool]) -> GcReport:
    """The whole collection, through `driver` alone."""
    store = Store(driver, options.dry_run)
    inventory = await take_inventory(driver)
    await store.load(inventory)
    report = GcReport()
    if options.untagged:
        await _untagged(store, inventory, report, options.grace)
    if options.max_size is not None or options.older_than is not None:
        await _evict_mirrored(store, inventory, is_mirrored, options, report)
    marked = _mark(store, inventory, options.grace)
    await _unlink_layers(store, inventory, marked)
    await _sweep(store, inventory, marked, report, options.grace)
    await _expire_uploads(store, options, report)
    await _remove_leftovers(store, inventory, options.grace, report)
    return report


def collect_garbage(root: str, options: GcOptions, is_mirrored: Callable[[str], bool]) -> GcReport:
    """Blocking: `sweep` over the data folder at `root`, for the command line."""
    return run_blocking(lambda: sweep(FilesystemDriver(root), options, is_mirrored))
