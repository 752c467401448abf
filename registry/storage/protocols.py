"""The small interfaces a repository is made of.

Handlers talk only to these; the local store (registry/storage) and the mirror (mirror/) both
implement them, so a handler never learns where content comes from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, Any, Protocol, runtime_checkable

from ..reference import Digest


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.artifact_type:
            doc["artifactType"] = self.artifact_type
        if self.annotations:
            doc["annotations"] = self.annotations
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Descriptor:
        return cls(doc["mediaType"], Digest.parse(doc["digest"]), int(doc["size"]),
                   doc.get("artifactType"), doc.get("annotations"))


class BlobContent(Protocol):
    """Bytes of a blob: a local file (served with sendfile) or a stream still arriving."""

    @property
    def size(self) -> int: ...
    @property
    def path(self) -> str | None: ...

    def chunks(self, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]: ...


@runtime_checkable
class GrowingBlob(BlobContent, Protocol):
    """Content still being written (the mirror's fill): readers send with sendfile what is
    readable so far and wait for more, instead of copying every byte through Python."""

    def open_file(self, offset: int) -> IO[bytes] | None:
        """The file to send from, or None to read the span from `chunks` instead."""

    async def readable(self, offset: int) -> int:
        """The end of what may be sent, past `offset`; waits for it; raises on a failed fill."""


class BlobStore(Protocol):
    async def stat(self, digest: Digest) -> Descriptor: ...
    async def open(self, digest: Digest) -> BlobContent: ...
    async def delete(self, digest: Digest) -> None: ...
    async def mount(self, digest: Digest, source: Repository) -> Descriptor | None: ...


class UploadWriter(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def offset(self) -> int: ...

    async def write(self, chunk: bytes) -> None: ...

    async def claim(self) -> None:
        """Become the session's one writer now, before a body is read; refused (RANGE_INVALID)
        while another request writes. `close` ends the claim."""

    async def truncate(self, offset: int) -> None:
        """Drop the bytes past `offset`: a chunk that was refused or failed is not kept."""

    async def commit(self, digest: Digest) -> Descriptor: ...
    async def cancel(self) -> None: ...
    async def close(self) -> None: ...


class UploadStore(Protocol):
    async def start(self, algorithm: str = "sha256") -> UploadWriter: ...
    async def resume(self, upload_id: str) -> UploadWriter: ...


class ManifestStore(Protocol):
    async def get(self, digest: Digest) -> tuple[Descriptor, bytes]: ...
    async def stat(self, digest: Digest) -> Descriptor: ...
    async def put(self, body: bytes, content_type: str | None,
                  digest: Digest) -> tuple[Descriptor, Digest | None]: ...
    async def delete(self, digest: Digest) -> None: ...


class TagStore(Protocol):
    async def resolve(self, tag: str) -> Digest: ...
    async def set(self, tag: str, digest: Digest) -> None: ...
    async def delete(self, tag: str) -> None: ...
    async def list(self) -> list[str]: ...


class ReferrerIndex(Protocol):
    async def list(self, subject: Digest) -> list[Descriptor]: ...


class Repository(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def blobs(self) -> BlobStore: ...
    @property
    def uploads(self) -> UploadStore: ...
    @property
    def manifests(self) -> ManifestStore: ...
    @property
    def tags(self) -> TagStore: ...
    @property
    def referrers(self) -> ReferrerIndex: ...

    async def exists(self) -> bool: ...


class Registry(Protocol):
    """Where handlers get repositories: local ones, or mirrored ones once the mirror wraps this."""

    def repository(self, name: str, ns: str | None = None) -> Repository: ...
    async def catalog(self) -> list[str]: ...
