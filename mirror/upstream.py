"""What the mirror asks of one upstream repository: manifests, tags, blobs, in OCI terms."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import aiohttp

from registry.errors import RegistryError
from registry.mediatypes import MAX_MANIFEST_BYTES
from registry.reference import Digest

from .client import MANIFEST_ACCEPT, UpstreamClient

BLOB_READ = 1024 * 1024
MAX_TAG_LIST_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class FetchedManifest:
    digest: Digest
    media_type: str
    body: bytes


@contextmanager
def _answer_of(client: UpstreamClient, what: str) -> Iterator[None]:
    """Failures while reading an upstream's answer are the upstream's, as much as a refused
    connection: a body cut short, a read timeout, a header or JSON that does not parse."""
    try:
        yield
    except RegistryError as err:
        if err.code in ("DIGEST_INVALID", "UNSUPPORTED"):
            raise client.unavailable(f"sent an unusable {what}: {err.message}") from None
        raise
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise client.failed(f"failed while sending {what}", err) from None


class UpstreamRepository:
    def __init__(self, client: UpstreamClient, remote: str) -> None:
        self.client = client
        self.remote = remote

    def _path(self, kind: str, reference: str) -> str:
        return f"/v2/{self.remote}/{kind}/{reference}"

    async def manifest_digest(self, tag: str) -> Digest | None:
        """A HEAD, which Docker Hub does not count as a pull; None when no digest header came."""
        response = await self.client.request("HEAD", self._path("manifests", tag), self.remote,
                                             headers={"Accept": MANIFEST_ACCEPT})
        async with response:
            if response.status != 200:
                raise self.client.failure(response, "MANIFEST_UNKNOWN")
            header = response.headers.get("Docker-Content-Digest")
        with _answer_of(self.client, "manifest digest"):
            return Digest.parse(header) if header else None

    async def manifest(self, reference: str) -> FetchedManifest:
        """The manifest's exact bytes, verified against the digest asked for or announced."""
        response = await self.client.request("GET", self._path("manifests", reference), self.remote,
                                             headers={"Accept": MANIFEST_ACCEPT})
        async with response:
            if response.status != 200:
                raise self.client.failure(response, "MANIFEST_UNKNOWN")
            with _answer_of(self.client, "manifest"):
                body = await self.client.read_limited(response, MAX_MANIFEST_BYTES, "manifest")
                announced = response.headers.get("Docker-Content-Digest")
                media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        with _answer_of(self.client, "manifest digest"):
            expected = Digest.parse(reference) if ":" in reference else (Digest.parse(announced) if announced else None)
        actual = Digest.of(body, expected.algorithm if expected else "sha256")
        if expected is not None and actual != expected:
            raise RegistryError("UNAVAILABLE", f"upstream {self.client.name} sent a manifest whose digest is "
                                f"{actual}, not {expected}", {"upstream": self.client.name})
        return FetchedManifest(actual, media_type, body)

    async def blob_size(self, digest: Digest) -> int:
        response = await self.client.request("HEAD", self._path("blobs", str(digest)), self.remote)
        async with response:
            if response.status != 200:
                raise self.client.failure(response, "BLOB_UNKNOWN")
            with _answer_of(self.client, "blob length"):
                return int(response.headers["Content-Length"])

    async def open_blob(self, digest: Digest) -> aiohttp.ClientResponse:
        """The streaming response of a blob GET (redirects to blob storage followed)."""
        response = await self.client.request("GET", self._path("blobs", str(digest)), self.remote)
        if response.status != 200:
            response.release()
            raise self.client.failure(response, "BLOB_UNKNOWN")
        return response

    async def blob_range(self, digest: Digest, offset: int, length: int) -> AsyncIterator[bytes]:
        response = await self.client.request("GET", self._path("blobs", str(digest)), self.remote,
                                             headers={"Range": f"bytes={offset}-{offset + length - 1}"})
        async with response:
            if response.status != 206:
                raise self.client.failure(response, "BLOB_UNKNOWN")
            if not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                raise self.client.unavailable(f"answered a range of {digest} with another")
            sent = 0
            with _answer_of(self.client, "blob range"):
                async for chunk in response.content.iter_chunked(BLOB_READ):
                    sent += len(chunk)
                    yield chunk
            if sent != length:  # the client was promised `length` bytes: cut it short, loudly
                raise self.client.unavailable(f"sent {sent} of {length} bytes of a range of {digest}")

    async def tags(self) -> list[str]:
        response = await self.client.request("GET", f"/v2/{self.remote}/tags/list", self.remote)
        async with response:
            if response.status != 200:
                raise self.client.failure(response, "NAME_UNKNOWN")
            with _answer_of(self.client, "tag list"):
                body = json.loads(await self.client.read_limited(response, MAX_TAG_LIST_BYTES, "tag list"))
        tags = body.get("tags") if isinstance(body, dict) else None
        return [tag for tag in tags or [] if isinstance(tag, str)]
