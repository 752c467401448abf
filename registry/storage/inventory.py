"""A read of the whole store: every repository's links and tags, and every blob file.

gc and verify both start from this; it reads the layout of `paths` directly (blocking calls, run
on a worker thread) because they visit everything and a driver round-trip per file would
dominate their time."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass, field

from ..errors import RegistryError
from ..mediatypes import ParsedManifest, read_stored_manifest
from ..reference import ALGORITHMS, Digest
from . import paths

TEMP_PREFIX = ".tmp-"  # the filesystem driver's atomic writes
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


def _digests(folder: str) -> dict[Digest, float]:
    found: dict[Digest, float] = {}
    for algorithm in ALGORITHMS:
        base = os.path.join(folder, algorithm)
        for name in _names(base):
            try:
                found[Digest.parse(f"{algorithm}:{name}")] = os.stat(os.path.join(base, name)).st_mtime
            except (OSError, RegistryError):
                continue
    return found


def _names(folder: str) -> list[str]:
    try:
        return [name for name in os.listdir(folder) if not name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _repo(root: str, name: str) -> RepoInventory:
    folder = os.path.join(root, paths.repository(name))
    repo = RepoInventory(name, _digests(os.path.join(folder, "_layers")), _digests(os.path.join(folder, "_manifests")))
    for tag in _names(os.path.join(folder, "_tags")):
        try:
            with open(os.path.join(folder, "_tags", tag)) as handle:
                repo.tags[tag] = Digest.parse(handle.read().strip())
        except (OSError, RegistryError):
            continue
    return repo


def _repository_names(root: str) -> list[str]:
    base = os.path.join(root, paths.REPOSITORIES)
    names = []
    for folder, dirs, _ in os.walk(base):
        if any(d.startswith(paths.RESERVED_PREFIX) for d in dirs):
            names.append(os.path.relpath(folder, base))
        dirs[:] = [d for d in dirs if not d.startswith((paths.RESERVED_PREFIX, "."))]
    return sorted(names)


def _blobs(root: str) -> dict[Digest, tuple[int, float]]:
    found: dict[Digest, tuple[int, float]] = {}
    for algorithm in ALGORITHMS:
        base = os.path.join(root, paths.BLOBS, algorithm)
        for prefix in _names(base):
            for hexpart in _names(os.path.join(base, prefix)):
                data = os.path.join(base, prefix, hexpart, "data")
                try:
                    st = os.stat(data)
                    found[Digest.parse(f"{algorithm}:{hexpart}")] = (st.st_size, st.st_mtime)
                except (OSError, RegistryError):
                    continue
    return found


def read_manifest(root: str, digest: Digest) -> ParsedManifest:
    """Blocking: what a stored manifest refers to, read leniently (it may predate today's push
    checks, or come from an upstream as it was), so gc never frees what it needs; raises OSError
    or RegistryError."""
    with open(os.path.join(root, paths.blob_data(digest)), "rb") as handle:
        return read_stored_manifest(handle.read())


def take_inventory(root: str) -> Inventory:
    """Blocking: call it from a worker thread."""
    return Inventory([_repo(root, name) for name in _repository_names(root)], _blobs(root))


@dataclass(frozen=True)
class Leftover:
    """Something a failed push or a crash left behind: it takes space and nothing reads it."""

    path: str  # relative to the data folder
    why: str
    size: int


def find_leftovers(root: str, upload_expiry: float, now: float) -> list[Leftover]:
    """Blocking: upload sessions idle past `upload_expiry`, empty session folders, and the
    driver's temporary files. A temporary file lives for one write and a session folder is
    empty only while it is created, so either, `TEMP_GRACE` old, was abandoned."""
    sessions = _upload_leftovers(root, upload_expiry, now)
    inside = tuple(f"{leftover.path}/" for leftover in sessions)
    temporary = [leftover for leftover in _temp_files(root, now) if not leftover.path.startswith(inside)]
    return sorted([*sessions, *temporary], key=lambda leftover: leftover.path)


def _upload_leftovers(root: str, expiry: float, now: float) -> list[Leftover]:
    found = []
    base = os.path.join(root, paths.UPLOADS)
    for name in _names(base):
        relative = f"{paths.UPLOADS}/{name}"
        try:
            folder = os.stat(os.path.join(base, name))
            entries = [os.stat(os.path.join(base, name, entry)) for entry in os.listdir(os.path.join(base, name))]
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not stat.S_ISDIR(folder.st_mode):
            found.append(Leftover(relative, "a file where upload sessions are kept", folder.st_size))
        elif not entries:
            if now - folder.st_mtime > TEMP_GRACE:
                found.append(Leftover(relative, "an empty upload session folder", 0))
        elif (idle := now - max(entry.st_mtime for entry in entries)) > expiry:
            found.append(Leftover(relative, f"an upload session idle for {_age(idle)} (expiry {_age(expiry)})",
                                  sum(entry.st_size for entry in entries)))
    return found


def _temp_files(root: str, now: float) -> list[Leftover]:
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.startswith(TEMP_PREFIX):
                continue
            path = os.path.join(folder, name)
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(path)
                if now - st.st_mtime > TEMP_GRACE:
                    found.append(Leftover(os.path.relpath(path, root), "a temporary file of a write that never "
                                          "finished", st.st_size))
    return found


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def remove_leftover(root: str, leftover: Leftover) -> None:
    """Blocking. Gone already (the server expired it meanwhile) is as good as removed."""
    path = os.path.join(root, leftover.path)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
