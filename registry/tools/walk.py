"""Everything an image consists of: its manifests (an index and the children wanted) and blobs.

Reading through a mirrored repository fetches what is missing, which is how `seed` fills the
cache and how `export` completes what a partial pull left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..mediatypes import INDEX_TYPES, read_stored_manifest
from ..reference import Digest
from ..storage.protocols import Descriptor, Repository

ATTESTATION_FOR = "vnd.docker.reference.digest"


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r}: expected os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, entry: dict[str, Any]) -> bool:
        platform = entry.get("platform") or {}
        return (platform.get("os") == self.os and platform.get("architecture") == self.architecture
                and (self.variant is None or platform.get("variant") == self.variant))


@dataclass
class ImageContent:
    manifests: list[tuple[Descriptor, bytes]] = field(default_factory=list)
    blobs: dict[Digest, int] = field(default_factory=dict)


def _wanted_children(doc: dict[str, Any], platforms: list[Platform]) -> list[Digest]:
    """All children, or the named platforms and the attestations that describe them."""
    entries = [entry for entry in doc.get("manifests", []) if isinstance(entry, dict)]
    if not platforms:
        return [Digest.parse(entry["digest"]) for entry in entries]
    chosen = {entry["digest"] for entry in entries if any(p.matches(entry) for p in platforms)}
    attestations = {entry["digest"] for entry in entries
                    if (entry.get("annotations") or {}).get(ATTESTATION_FOR) in chosen}
    return [Digest.parse(entry["digest"]) for entry in entries if entry["digest"] in chosen | attestations]


async def walk_image(repo: Repository, digest: Digest, platforms: list[Platform],
                     content: ImageContent | None = None) -> ImageContent:
    content = content if content is not None else ImageContent()
    descriptor, body = await repo.manifests.get(digest)
    content.manifests.append((descriptor, body))
    if descriptor.media_type in INDEX_TYPES:
        for child in _wanted_children(json.loads(body), platforms):
            await walk_image(repo, child, platforms, content)
        return content
    doc = json.loads(body)
    sizes = {d["digest"]: int(d.get("size", 0)) for d in [doc.get("config") or {}, *doc.get("layers", [])]
             if isinstance(d, dict) and "digest" in d}
    for blob in read_stored_manifest(body).blobs:
        content.blobs[blob] = sizes.get(str(blob), 0)
    return content
