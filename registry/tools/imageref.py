"""Image references as users write them (`alpine:3.20`, `ghcr.io/org/app@sha256:...`) mapped
to the names ocireg stores them under."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import RegistryError
from ..reference import Digest, parse_name, parse_tag

DOCKER_HUB = "docker.io"
DEFAULT_TAG = "latest"


class ImageRefError(ValueError):
    """A reference that names no image ocireg can store; the message says why."""


@dataclass(frozen=True)
class ImageRef:
    name: str
    tag: str | None
    digest: Digest | None

    @property
    def reference(self) -> str:
        return str(self.digest) if self.digest else self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag or DEFAULT_TAG}"


def _registry_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse_image(text: str, upstreams: set[str] | None) -> ImageRef:
    """With `upstreams`, Docker's conventions: no registry means Docker Hub, one component
    means `library/`, another registry must be an upstream. With None, the name as written
    (how archives and local pushes name images). Either way a `host:port/` prefix (ocireg
    itself) is dropped."""
    rest, _, digest_text = text.strip().partition("@")
    slash, colon = rest.rfind("/"), rest.rfind(":")
    tag = rest[colon + 1:] if colon > slash else None
    name = rest[:colon] if colon > slash else rest
    first, _, remainder = name.partition("/")
    if remainder and (":" in first or first == "localhost"):
        name = remainder
    elif upstreams is not None:
        name = _docker_name(text, name, upstreams)
    try:
        return ImageRef(parse_name(name), parse_tag(tag) if tag else None,
                        Digest.parse(digest_text) if digest_text else None)
    except RegistryError as err:
        raise ImageRefError(f"{text}: {err.message}") from None


def _docker_name(text: str, name: str, upstreams: set[str]) -> str:
    first, _, remainder = name.partition("/")
    if remainder and _registry_host(first):
        if first not in upstreams:
            raise ImageRefError(f"{text}: no upstream named {first} is configured")
    elif DOCKER_HUB in upstreams:
        name = f"{DOCKER_HUB}/{name}"
    if name.startswith(f"{DOCKER_HUB}/") and name.count("/") == 1:
        name = f"{DOCKER_HUB}/library/{name.split('/', 1)[1]}"
    return name


def read_image_list(path: str) -> list[str]:
    """One reference a line; `#` starts a comment."""
    with open(path, encoding="utf-8") as handle:
        lines = (line.split("#", 1)[0].strip() for line in handle)
        return [line for line in lines if line]
