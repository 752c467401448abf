"""A read of the whole store: every repository's links and tags, and every blob file.

gc and verify both start from this; it reads the layout of `paths` directly (blocking calls, run
on a worker thread) because they visit everything and a driver round-trip per file would
dominate their time."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import RegistryError
from ..mediatypes import ParsedManifest, parse_manifest
from ..reference import ALGORITHMS, Digest
from . import paths


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
    """Blocking: a stored manifest, parsed; raises OSError or RegistryError."""
    with open(os.path.join(root, paths.blob_data(digest)), "rb") as handle:
        return parse_manifest(handle.read(), None)


def take_inventory(root: str) -> Inventory:
    """Blocking: call it from a worker thread."""
    return Inventory([_repo(root, name) for name in _repository_names(root)], _blobs(root))
