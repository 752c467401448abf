"""A read of the whole store: every repository's links and tags, and every blob file.

gc and verify both start from this. It reads the layout of `paths` with the driver's `walk`: one
walk of the blob store and one of the repositories, each fetching thousands of entries per
round trip, rather than a listing and a stat per file."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import RegistryError
from ..mediatypes import ParsedManifest, read_stored_manifest
from ..reference import ALGORITHMS, Digest
from . import paths
from .driver.base import Driver, FileInfo, PathNotFound

T = TypeVar("T")
TEMP_PREFIX = ".tmp-"  # the filesystem driver's atomic writes
TEMP_MARK = f"/{TEMP_PREFIX}"
HEX_RE = re.compile(r"[a-f0-9]+")
TEMP_GRACE = 600.0


@dataclass
class RepoInventory:
    name: str
    layers: dict[Digest, float] = field(default_factory=dict)  # digest -> link mtime
    manifests: dict[Digest, float] = field(default_factory=dict)
    tags: dict[str, Digest] = field(default_factory=dict)


@dataclass
class Inventory:
    repositories: list[RepoInventory] = field(default_factory=list)
    blobs: dict[Digest, tuple[int, float]] = field(default_factory=dict)  # digest -> (size, mtime)
    temporary: list[FileInfo] = field(default_factory=list)  # atomic writes' files the walks met


def is_temporary(info: FileInfo) -> bool:
    """Every path a walk finds has a folder, and only files are named so."""
    return TEMP_MARK in info.path


def _digest(algorithm: str, hexpart: str) -> Digest | None:
    """`Digest.parse` for names taken apart already: a store holds as many as it has files."""
    if ALGORITHMS.get(algorithm) != len(hexpart) or not HEX_RE.fullmatch(hexpart):
        return None
    return Digest(algorithm, hexpart)


def _split_repository_path(path: str) -> tuple[str, str, list[str]] | None:
    """`repositories/<name>/<_part>/<rest...>` as (name, part, rest); None for anything else.
    Name components never start with `_` or `.`, so the first `/_` ends the name."""
    start = len(paths.REPOSITORIES) + 1
    at = path.find(f"/{paths.RESERVED_PREFIX}", start)
    name = path[start:at]
    if at < 0 or not name or name.startswith((paths.RESERVED_PREFIX, ".")) or "/." in name:
        return None
    part, _, rest = path[at + 1:].partition("/")
    return name, part, rest.split("/") if rest else []


def _link_digest(rest: list[str]) -> Digest | None:
    """`<alg>/<hex>` below `_layers` or `_manifests`; None for strays."""
    return _digest(rest[0], rest[1]) if len(rest) == 2 else None


async def _repositories(driver: Driver, temporary: list[FileInfo]) -> list[RepoInventory]:
    """A repository is a name with something in one of its reserved folders."""
    repos: dict[str, RepoInventory] = {}
    tag_files: list[tuple[RepoInventory, str, str]] = []
    async for info in driver.walk(paths.REPOSITORIES):
        if is_temporary(info):
            temporary.append(info)
            continue
        found = _split_repository_path(info.path)
        if found is None:
            continue
        name, part, rest = found
        repo = repos.get(name) or repos.setdefault(name, RepoInventory(name))
        if part in ("_layers", "_manifests") and (digest := _link_digest(rest)) is not None:
            (repo.layers if part == "_layers" else repo.manifests)[digest] = info.mtime
        elif part == "_tags" and len(rest) == 1 and not rest[0].startswith("."):
            tag_files.append((repo, rest[0], info.path))
    for repo, tag, path in tag_files:
        try:
            repo.tags[tag] = Digest.parse((await driver.read_small(path)).decode().strip())
        except (PathNotFound, OSError, ValueError, RegistryError):
            continue
    return sorted(repos.values(), key=lambda repo: repo.name)


def _blob_digest(info: FileInfo) -> Digest | None:
    """`blobs/<alg>/<hex[:2]>/<hex>/data`; None for strays."""
    parts = info.path.split("/")
    return _digest(parts[1], parts[3]) if len(parts) == 5 and parts[4] == "data" else None


async def _blobs(driver: Driver, temporary: list[FileInfo]) -> dict[Digest, tuple[int, float]]:
    found: dict[Digest, tuple[int, float]] = {}
    async for info in driver.walk(paths.BLOBS):
        if is_temporary(info):
            temporary.append(info)
            continue
        digest = _blob_digest(info)
        if digest is not None:
            found[digest] = (info.size, info.mtime)
    return found


async def read_manifest(driver: Driver, digest: Digest) -> ParsedManifest:
    """What a stored manifest refers to, read leniently (it may predate today's push checks, or
    come from an upstream as it was), so gc never frees what it needs. Not checked against its
    digest: bytes that still parse keep what they name until verify quarantines them. Raises
    PathNotFound, OSError or RegistryError."""
    return read_stored_manifest(await driver.read(paths.blob_data(digest)))


async def take_inventory(driver: Driver) -> Inventory:
    """Repositories before blobs: a blob stored after its links were read is young, and the
    grace period keeps it. Temporary files are collected on the way: the store writes nowhere
    else but in upload sessions, so no other walk is needed to find them."""
    temporary: list[FileInfo] = []
    repositories = await _repositories(driver, temporary)
    return Inventory(repositories, await _blobs(driver, temporary), temporary)


def run_blocking(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run store work to its end from synchronous code (the CLI's gc and verify): on this
    thread, or, when a loop already runs here, on a thread of its own, blocking the caller
    as the synchronous versions of these tools always did."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result()


@dataclass(frozen=True)
class Leftover:
    """Something a failed push or a crash left behind: it takes space and nothing reads it."""

    path: str  # relative to the data folder
    why: str
    size: int


async def find_leftovers(driver: Driver, inventory: Inventory, upload_expiry: float, now: float) -> list[Leftover]:
    """Upload sessions idle past `upload_expiry`, empty session folders, and the driver's
    temporary files (in the inventory, or in sessions). A temporary file lives for one write
    and a session folder is empty only while it is created, so either, `TEMP_GRACE` old, was
    abandoned."""
    sessions, strays = await upload_files(driver)
    idle = await _upload_leftovers(driver, sessions, strays, upload_expiry, now)
    inside = tuple(f"{leftover.path}/" for leftover in idle)
    in_uploads = [info for files in (*sessions.values(), strays) for info in files if is_temporary(info)]
    temporary = [Leftover(info.path, "a temporary file of a write that never finished", info.size)
                 for info in [*inventory.temporary, *in_uploads]
                 if now - info.mtime > TEMP_GRACE and not info.path.startswith(inside)]
    return sorted([*idle, *temporary], key=lambda leftover: leftover.path)


async def upload_files(driver: Driver) -> tuple[dict[str, list[FileInfo]], list[FileInfo]]:
    """The files of every upload session by session id, and files lying directly in the
    uploads folder, where only session folders belong."""
    sessions: dict[str, list[FileInfo]] = {}
    strays: list[FileInfo] = []
    async for info in driver.walk(paths.UPLOADS):
        upload_id, _, inside = info.path[len(paths.UPLOADS) + 1:].partition("/")
        if inside:
            sessions.setdefault(upload_id, []).append(info)
        else:
            strays.append(info)
    return sessions, strays


async def empty_upload_folders(driver: Driver, sessions: dict[str, list[FileInfo]],
                               strays: list[FileInfo]) -> dict[str, float]:
    """Session folders with no file in them, by id, with their mtime: a session start cut
    short. Only drivers with folders have them."""
    known = {*sessions, *(info.path[len(paths.UPLOADS) + 1:] for info in strays)}
    empty: dict[str, float] = {}
    for upload_id in await driver.list(paths.UPLOADS):
        if upload_id in known:
            continue
        try:
            empty[upload_id] = (await driver.stat(paths.upload_dir(upload_id))).mtime
        except PathNotFound:
            continue
    return empty


async def _upload_leftovers(driver: Driver, sessions: dict[str, list[FileInfo]], strays: list[FileInfo],
                            expiry: float, now: float) -> list[Leftover]:
    """Hidden names (a temporary file) are no sessions: if anything, they are temporary files."""
    found = [Leftover(info.path, "a file where upload sessions are kept", info.size) for info in strays
             if not _hidden(info.path[len(paths.UPLOADS) + 1:])]
    for upload_id, mtime in (await empty_upload_folders(driver, sessions, strays)).items():
        if now - mtime > TEMP_GRACE and not _hidden(upload_id):
            found.append(Leftover(paths.upload_dir(upload_id), "an empty upload session folder", 0))
    for upload_id, files in sessions.items():
        if not _hidden(upload_id) and (idle := now - max(info.mtime for info in files)) > expiry:
            found.append(Leftover(paths.upload_dir(upload_id), f"an upload session idle for {_age(idle)} "
                                  f"(expiry {_age(expiry)})", sum(info.size for info in files)))
    return found


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


async def remove_leftover(driver: Driver, leftover: Leftover) -> None:
    """Gone already (the server expired it meanwhile) is as good as removed."""
    await driver.delete(leftover.path)
