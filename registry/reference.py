"""The distribution spec's grammar for repository names, tags and digests.

Everything a client sends is checked here before it becomes part of a path on disk: a name that
passes `parse_name` has no `..`, no leading `_` component and no character outside [a-z0-9._/-].
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .errors import DigestInvalid, NameInvalid, TagInvalid, UnsupportedAlgorithm

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
MAX_NAME_LENGTH = 255

ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True, order=True)
class Digest:
    """A validated digest of a supported algorithm; `str()` gives `algo:hex`."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        if not DIGEST_RE.fullmatch(text):
            raise DigestInvalid("invalid digest", {"digest": text})
        algorithm, _, hexpart = text.partition(":")
        length = ALGORITHMS.get(algorithm)
        if length is None:
            raise UnsupportedAlgorithm(f"unsupported digest algorithm {algorithm}", {"digest": text})
        if len(hexpart) != length or not re.fullmatch(r"[a-f0-9]+", hexpart):
            raise DigestInvalid("invalid digest", {"digest": text})
        return cls(algorithm, hexpart)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


def parse_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH or not NAME_RE.fullmatch(name):
        raise NameInvalid("invalid repository name", {"name": name[:300]})
    return name


def parse_tag(tag: str) -> str:
    if not TAG_RE.fullmatch(tag):
        raise TagInvalid("invalid tag", {"tag": tag[:300]})
    return tag


def is_digest(reference: str) -> bool:
    return ":" in reference


def parse_reference(reference: str) -> Digest | str:
    """A manifest reference is a digest when it contains a colon, else a tag."""
    return Digest.parse(reference) if is_digest(reference) else parse_tag(reference)
