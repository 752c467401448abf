"""Manifest media types and what a manifest's JSON says about the content it depends on.

The registry stores the exact bytes a client pushed; this module reads them to learn which
blobs and child manifests must exist, and which subject (if any) the manifest refers to. It
also refuses what Go clients could not read back or the image spec forbids, so nothing stored
is unpullable, and bounds the work one manifest can cause: its depth, its numbers and the
number of distinct references it makes.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .errors import DigestInvalid, ManifestInvalid, UnsupportedAlgorithm
from .reference import Digest
from .storage.protocols import Descriptor

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
OCI_EMPTY_JSON = "application/vnd.oci.empty.v1+json"

IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_REFERENCES = 10_000
STORED_MAX_DEPTH = 512
INT64_MAX = 2**63 - 1

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'[]{}"'))
_AS_PARENS = bytes.maketrans(b"[{]}", b"(())")
_STRINGS = re.compile(rb'"[^"]*"')


@dataclass(frozen=True)
class ParsedManifest:
    """What the registry needs from a manifest; the bytes themselves stay untouched.

    `blobs` and `manifests` hold each digest once, in the order the manifest first names it.
    """

    media_type: str
    blobs: tuple[Digest, ...] = ()
    manifests: tuple[Digest, ...] = ()
    subject: Digest | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    def descriptor(self, digest: Digest, size: int) -> Descriptor:
        """The descriptor a referrers index lists for this manifest."""
        return Descriptor(self.media_type, digest, size, self.artifact_type, self.annotations or None)


def _invalid(message: str, detail: Any = None) -> ManifestInvalid:
    return ManifestInvalid(message, detail)


def _excerpt(value: Any) -> str:
    """What the client sent, short enough to quote back in an error."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 100 else text[:100] + "..."


def _check_depth(body: bytes, limit: int = MAX_DEPTH) -> None:
    """Refuse nesting beyond `limit` before the recursive parser sees it.

    Only brackets outside strings count: escapes go first, then every byte but brackets and
    quotes, then whole strings. Each pass then deletes every innermost pair at once, so the
    passes a balanced text needs to vanish are its depth; a run of opening brackets longer
    than the limit ends it early. Every step runs at C speed.
    """
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _STRINGS.sub(b"", unescaped.translate(_AS_PARENS, _NOT_STRUCTURE))
    too_deep = b"(" * (limit + 1)
    for _ in range(limit + 1):
        if not brackets:
            return
        if too_deep in brackets:
            break
        inner = brackets.replace(b"()", b"")
        if len(inner) == len(brackets):
            raise _invalid("manifest is not valid JSON: unbalanced brackets")
        brackets = inner
    raise _invalid(f"manifest JSON nests deeper than {limit} levels", {"maxDepth": limit})


def _bounded_int(text: str) -> int:
    """Go decodes sizes into int64: anything wider is refused before int() does the work."""
    if len(text.lstrip("-")) > len(str(INT64_MAX)) or not -INT64_MAX - 1 <= (value := int(text)) <= INT64_MAX:
        raise _invalid("manifest has an integer outside the 64-bit range", {"integer": text[:40]})
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _invalid("manifest has a number that is not finite", {"number": text[:40]})
    return value


def _no_constant(name: str) -> NoReturn:
    raise _invalid(f"manifest has {name}, which JSON does not allow")


def load_json(body: bytes) -> Any:
    """RFC 8259 JSON as Go clients read it: UTF-8 without a BOM, finite numbers, bounded depth."""
    if body.startswith(_BOMS):
        raise _invalid("manifest must be UTF-8 JSON without a byte order mark")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _invalid(f"manifest is not UTF-8: {err.reason} at byte {err.start}") from None
    if "\0" in text:
        raise _invalid("manifest is not UTF-8 JSON: it has NUL bytes (UTF-16 or UTF-32?)")
    _check_depth(body)
    try:
        return json.loads(text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise _invalid(f"manifest is not valid JSON: {err}") from None


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT64_MAX


def _string_map(value: Any, where: str) -> dict[str, str]:
    """Annotations: the spec allows only string values, and referrers indexes repeat them."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _invalid(f"{where} must be an object of strings")
    return value


def _descriptor(entry: Any, where: str) -> str:
    """Check one descriptor's fields as the image spec types them; returns its digest's text."""
    if not isinstance(entry, dict):
        raise _invalid(f"{where} must be a descriptor object")
    if not isinstance(entry.get("mediaType"), str):
        raise _invalid(f"{where}.mediaType must be a string")
    if not _is_size(entry.get("size")):
        raise _invalid(f"{where}.size must be a non-negative 64-bit integer", {"size": _excerpt(entry.get("size"))})
    urls = entry.get("urls")
    if urls is not None and (not isinstance(urls, list) or not all(isinstance(url, str) for url in urls)):
        raise _invalid(f"{where}.urls must be a list of strings")
    _string_map(entry.get("annotations"), f"{where}.annotations")
    digest = entry.get("digest")
    if not isinstance(digest, str):
        raise _invalid(f"{where}: descriptor without a digest")
    return digest


def _digest(text: str, where: str) -> Digest:
    try:
        return Digest.parse(text)
    except (DigestInvalid, UnsupportedAlgorithm) as err:
        raise _invalid(f"{where}.digest: {err.message}", {"digest": _excerpt(text)}) from None


def _descriptors(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc[key]
    if not isinstance(value, list):
        raise _invalid(f"{key} must be a list")
    return value


def _distinct(found: list[tuple[str, str]], what: str) -> tuple[Digest, ...]:
    """Each digest once, in order, from (digest text, where) pairs: a blob listed 48,000 times
    is parsed once and costs one existence check, and the distinct ones are bounded so the
    checks a single PUT can cause are too."""
    first_seen: dict[str, str] = {}
    for text, where in found:
        first_seen.setdefault(text, where)
    if len(first_seen) > MAX_REFERENCES:
        raise _invalid(f"manifest references {len(first_seen)} distinct {what}; at most {MAX_REFERENCES} "
                       "are accepted", {"limit": MAX_REFERENCES})
    return tuple(_digest(text, where) for text, where in first_seen.items())


def _required_blobs(doc: dict[str, Any]) -> tuple[Digest, ...]:
    """Config and layers; foreign layers with `urls` live elsewhere and need not be here."""
    found = [(_descriptor(doc["config"], "config"), "config")]
    for position, layer in enumerate(_descriptors(doc, "layers")):
        where = f"layers[{position}]"
        digest = _descriptor(layer, where)
        if not layer.get("urls"):
            found.append((digest, where))
    return _distinct(found, "blobs")


def _children(doc: dict[str, Any]) -> tuple[Digest, ...]:
    found = []
    for position, child in enumerate(_descriptors(doc, "manifests")):
        where = f"manifests[{position}]"
        found.append((_descriptor(child, where), where))
    return _distinct(found, "manifests")


def _media_type(doc: dict[str, Any], content_type: str | None) -> str:
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    given = (content_type or "").split(";")[0].strip() or None
    schema1 = _is_size(doc.get("schemaVersion")) and doc["schemaVersion"] == 1
    if given in DOCKER_SCHEMA1 or declared in DOCKER_SCHEMA1 or schema1:
        raise _invalid("Docker schema1 manifests are not supported; push schema2 or OCI instead")
    if declared and given and given != declared:
        raise _invalid("Content-Type does not match the manifest's mediaType",
                       {"contentType": _excerpt(given), "mediaType": _excerpt(declared)})
    media_type = declared or given
    if media_type is None:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES:
        raise _invalid(f"unsupported manifest media type {_excerpt(media_type)}", {"mediaType": _excerpt(media_type)})
    return media_type


def _check_shape(doc: dict[str, Any], media_type: str) -> None:
    """An index lists manifests, an image manifest a config and layers, never both: a body
    shaped as one but labelled the other would be stored without the checks it needs."""
    is_index = media_type in INDEX_TYPES
    required, forbidden = (("manifests",), ("config", "layers")) if is_index else (("config", "layers"), ("manifests",))
    missing = [key for key in required if key not in doc]
    unexpected = [key for key in forbidden if key in doc]
    if missing or unexpected:
        kind = "an index" if is_index else "an image manifest"
        raise _invalid(f"{media_type} is {kind}: it needs {' and '.join(required)} and has no "
                       f"{' or '.join(forbidden)}", {"mediaType": media_type, "missing": missing,
                                                     "unexpected": unexpected})


def _artifact_type(doc: dict[str, Any], media_type: str) -> str | None:
    """The spec's rule for referrers: artifactType, else the config's media type."""
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("artifactType must be a string")
    if artifact_type is not None or media_type in INDEX_TYPES:
        return artifact_type
    return str(doc["config"]["mediaType"])


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Validate a manifest as Go clients will read it and learn what it depends on.

    `content_type` is the media type the client or upstream sent, if any; it must agree with
    the body's own `mediaType`, and the body's shape with both.
    """
    doc = load_json(body)
    if not isinstance(doc, dict):
        raise _invalid("manifest must be a JSON object")
    media_type = _media_type(doc, content_type)
    version = doc.get("schemaVersion")
    if type(version) is not int or version != 2:
        raise _invalid("schemaVersion must be the integer 2", {"schemaVersion": _excerpt(version)})
    _check_shape(doc, media_type)
    is_index = media_type in INDEX_TYPES
    blobs = () if is_index else _required_blobs(doc)
    children = _children(doc) if is_index else ()
    subject = doc.get("subject")
    return ParsedManifest(
        media_type=media_type,
        blobs=blobs,
        manifests=children,
        subject=_digest(_descriptor(subject, "subject"), "subject") if subject is not None else None,
        artifact_type=_artifact_type(doc, media_type),
        annotations=_string_map(doc.get("annotations"), "annotations"),
    )


def _any_number(text: str) -> float:
    """Stored readers use no numbers: any integer reads, however long, and none raises."""
    return float(text)


def _load_stored(body: bytes) -> Any:
    """JSON as earlier, laxer versions accepted it: any UTF encoding, a BOM, NaN, long integers."""
    try:
        text = body.decode(json.detect_encoding(body)).removeprefix("\ufeff")
    except (UnicodeDecodeError, LookupError):
        raise _invalid("stored manifest is not JSON text") from None
    _check_depth(text.encode(), STORED_MAX_DEPTH)
    try:
        return json.loads(text, parse_int=_any_number)
    except json.JSONDecodeError as err:
        raise _invalid(f"stored manifest is not valid JSON: {err}") from None


def _stored_digests(entries: Any, skip_foreign: bool = False) -> list[Digest]:
    found = []
    for entry in entries if isinstance(entries, list) else [entries]:
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            continue
        if skip_foreign and entry.get("urls"):
            continue
        with suppress(DigestInvalid, UnsupportedAlgorithm):
            found.append(Digest.parse(entry["digest"]))
    return found


def read_stored_manifest(body: bytes) -> ParsedManifest:
    """What bytes already kept refer to, for readers of the store (gc, delete, export).

    Manifests an earlier version accepted, or a mirror cached from upstream, may fail today's
    checks on a push; they still hold on to everything they name, in whatever field, so gc
    never frees a blob that a stored manifest needs. Raises ManifestInvalid only for bytes that
    are no JSON object at all.
    """
    doc = _load_stored(body)
    if not isinstance(doc, dict):
        raise _invalid("stored manifest is not a JSON object")
    declared = doc.get("mediaType")
    media_type = declared if declared in MANIFEST_TYPES else OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    subject = _stored_digests(doc.get("subject"))
    annotations = doc.get("annotations")
    artifact_type = doc.get("artifactType")
    return ParsedManifest(
        media_type=media_type,
        blobs=tuple(dict.fromkeys(_stored_digests(doc.get("config")) + _stored_digests(doc.get("layers"), True))),
        manifests=tuple(dict.fromkeys(_stored_digests(doc.get("manifests")))),
        subject=subject[0] if subject else None,
        artifact_type=artifact_type if isinstance(artifact_type, str) else None,
        annotations=annotations if isinstance(annotations, dict) and all(
            isinstance(value, str) for value in annotations.values()) else {},
    )


def declared_media_type(body: bytes) -> str | None:
    """The `mediaType` stored bytes name for themselves, if they are readable and name one."""
    try:
        doc = _load_stored(body)
    except ManifestInvalid:
        return None
    value = doc.get("mediaType") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


def accepts(accept_header: str | None, media_type: str) -> bool:
    """False only when the client named manifest types and this one is not among them.

    Curl users send `Accept: application/json` or nothing at all; they get what is stored.
    """
    if not accept_header:
        return True
    offered = {part.split(";")[0].strip() for part in accept_header.split(",")}
    if media_type in offered or "*/*" in offered or "application/*" in offered:
        return True
    return not (offered & MANIFEST_TYPES)
