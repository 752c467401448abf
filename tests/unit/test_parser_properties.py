"""Properties of every parser that reads client input: names, tags, digests and manifests.

Whatever arrives, a parser either returns a value or raises RegistryError (which becomes a
4xx); what it accepts round-trips, and what the grammar generates it accepts.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.errors import RegistryError
from registry.mediatypes import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INT64_MAX,
    MAX_DEPTH,
    OCI_INDEX,
    OCI_MANIFEST,
    accepts,
    declared_media_type,
    load_json,
    parse_manifest,
)
from registry.reference import (
    ALGORITHMS,
    MAX_NAME_LENGTH,
    NAME_RE,
    TAG_RE,
    Digest,
    parse_name,
    parse_reference,
    parse_tag,
)
from registry.storage.protocols import Descriptor

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEDIA_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST, "application/json", "text/plain",
               "application/vnd.docker.distribution.manifest.v1+prettyjws", ""]

alnums = st.text(alphabet="az09", min_size=1, max_size=4)
components = st.builds(lambda first, rest: first + "".join(sep + part for sep, part in rest), alnums,
                       st.lists(st.tuples(st.sampled_from([".", "_", "__", "-", "---"]), alnums), max_size=3))
names = st.lists(components, min_size=1, max_size=5).map("/".join)
tags = st.from_regex(TAG_RE, fullmatch=True)
digests = st.builds(lambda algorithm, data: Digest.of(data, algorithm), st.sampled_from(sorted(ALGORITHMS)),
                    st.binary(max_size=64))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), INT64_MAX),
                         st.floats(allow_nan=False, allow_infinity=False), st.text())
json_values = st.recursive(json_scalars, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=30)


def _raises_only_registry_errors(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except RegistryError:
        return None


@PROPERTY
@given(st.text())
def test_reference_parsers_raise_only_registry_errors(text: str) -> None:
    for parser in (parse_name, parse_tag, parse_reference, Digest.parse):
        _raises_only_registry_errors(parser, text)


@PROPERTY
@given(st.text(alphabet="a0._/-A%", max_size=24) | st.text(alphabet=st.characters(codec="ascii"), max_size=300))
def test_accepted_names_cannot_escape_the_store(text: str) -> None:
    name = _raises_only_registry_errors(parse_name, text)
    if name is not None:
        assert re.fullmatch(r"[a-z0-9._/-]+", name)
        assert not any(part in ("", ".", "..") or part.startswith(("_", ".")) for part in name.split("/"))


@PROPERTY
@given(names)
def test_grammar_names_parse(name: str) -> None:
    assert NAME_RE.fullmatch(name)
    assert parse_name(name) == name
    long_name = "/".join([name] * (MAX_NAME_LENGTH // len(name) + 1))
    assert _raises_only_registry_errors(parse_name, long_name) is None


@PROPERTY
@given(tags)
def test_grammar_tags_parse_as_tags(tag: str) -> None:
    assert parse_tag(tag) == tag
    assert parse_reference(tag) == tag


@PROPERTY
@given(digests)
def test_digests_round_trip(digest: Digest) -> None:
    assert Digest.parse(str(digest)) == digest
    assert parse_reference(str(digest)) == digest


@PROPERTY
@given(st.binary(max_size=2048), st.sampled_from(MEDIA_TYPES))
def test_manifest_parser_on_arbitrary_bytes(body: bytes, content_type: str) -> None:
    _raises_only_registry_errors(parse_manifest, body, content_type or None)
    declared_media_type(body)


@PROPERTY
@given(json_values, st.sampled_from(MEDIA_TYPES))
def test_manifest_parser_on_arbitrary_json(value: Any, content_type: str) -> None:
    body = json.dumps(value).encode()
    _raises_only_registry_errors(parse_manifest, body, content_type or None)
    for key in ("schemaVersion", "mediaType", "config", "layers", "manifests", "subject", "annotations"):
        shaped = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": [], key: value}
        _raises_only_registry_errors(parse_manifest, json.dumps(shaped).encode(), content_type or None)
    for key in ("mediaType", "digest", "size", "urls", "annotations"):
        layer = dict(_descriptor(OCI_MANIFEST, b""), **{key: value})
        shaped = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": layer, "layers": [layer]}
        _raises_only_registry_errors(parse_manifest, json.dumps(shaped).encode(), OCI_MANIFEST)


@PROPERTY
@given(st.text(max_size=200))
def test_accepts_never_raises(header: str) -> None:
    assert isinstance(accepts(header, OCI_MANIFEST), bool)


@PROPERTY
@given(json_values)
def test_json_round_trips(value: Any) -> None:
    assert load_json(json.dumps(value).encode()) == value
    assert load_json(json.dumps(value, ensure_ascii=False, indent=1).encode()) == value


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _nest(value: Any, shapes: list[bool], key: str) -> Any:
    for as_object in shapes:
        value = {key: value} if as_object else [value, key]
    return value


@PROPERTY
@given(st.lists(st.booleans(), min_size=MAX_DEPTH - 3, max_size=MAX_DEPTH + 3),
       st.text(alphabet='[]{}"\\ab', max_size=12))
def test_depth_limit_is_exact_whatever_the_strings_hold(shapes: list[bool], text: str) -> None:
    """Brackets, quotes and backslashes inside strings must not fool the bracket scan."""
    value = _nest(text, shapes, text)
    body = json.dumps(value).encode()
    if _depth(value) <= MAX_DEPTH:
        assert load_json(body) == value
    else:
        with pytest.raises(RegistryError, match="deeper"):
            load_json(body)


def _descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data), **extra}


blob_data = st.binary(max_size=16)
annotation_maps = st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3)
KNOWN_TYPES = ["application/vnd.oci.image.config.v1+json", "application/vnd.oci.empty.v1+json",
               "application/vnd.oci.image.layer.v1.tar+gzip", "application/spdx+json",
               "application/vnd.in-toto+json", "application/vnd.docker.container.image.v1+json"]
media_types = st.one_of(st.sampled_from(KNOWN_TYPES), st.text(max_size=30))


@st.composite
def image_manifests(draw: st.DrawFn) -> tuple[dict[str, Any], list[bytes], bytes | None]:
    """A valid image manifest, the blobs it needs, and its subject's bytes if it has one."""
    config = draw(blob_data)
    layers = draw(st.lists(blob_data, max_size=6))
    foreign = draw(st.lists(blob_data, max_size=2))
    media_type = draw(st.sampled_from([OCI_MANIFEST, DOCKER_MANIFEST]))
    doc: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": media_type,
        "config": _descriptor(draw(media_types), config),
        "layers": [_descriptor(draw(media_types), layer, annotations=draw(annotation_maps)) for layer in layers]
        + [_descriptor(draw(media_types), layer, urls=["https://example.com/x"]) for layer in foreign],
    }
    if draw(st.booleans()):
        doc["artifactType"] = draw(media_types)
    if draw(st.booleans()):
        doc["annotations"] = draw(annotation_maps)
    subject = draw(st.none() | blob_data)
    if subject is not None:
        doc["subject"] = _descriptor(OCI_MANIFEST, subject)
    return doc, [config, *layers], subject


@PROPERTY
@given(image_manifests(), st.booleans())
def test_valid_image_manifests_parse(drawn: tuple[dict[str, Any], list[bytes], bytes | None],
                                     with_type: bool) -> None:
    doc, needed, subject = drawn
    body = json.dumps(doc).encode()
    parsed = parse_manifest(body, doc["mediaType"] if with_type else None)
    assert parsed.media_type == doc["mediaType"]
    assert parsed.blobs == tuple(dict.fromkeys(Digest.of(data) for data in needed))
    assert parsed.manifests == ()
    assert parsed.subject == (Digest.of(subject) if subject is not None else None)
    assert parsed.artifact_type == doc.get("artifactType", doc["config"]["mediaType"])
    assert parsed.annotations == doc.get("annotations", {})
    descriptor = parsed.descriptor(Digest.of(body), len(body))
    assert Descriptor.from_json(json.loads(json.dumps(descriptor.to_json()))) == Descriptor(
        descriptor.media_type, descriptor.digest, descriptor.size, descriptor.artifact_type or None,
        descriptor.annotations or None)


@PROPERTY
@given(st.lists(blob_data, max_size=8), st.sampled_from([OCI_INDEX, DOCKER_LIST]), st.none() | media_types)
def test_valid_indexes_parse(children: list[bytes], media_type: str, artifact_type: str | None) -> None:
    platform = {"os": "linux", "architecture": "amd64"}
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type,
                           "manifests": [_descriptor(OCI_MANIFEST, child, platform=platform) for child in children]}
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    parsed = parse_manifest(json.dumps(doc).encode(), media_type)
    assert parsed.media_type == media_type
    assert parsed.blobs == ()
    assert parsed.manifests == tuple(dict.fromkeys(Digest.of(child) for child in children))
    assert parsed.artifact_type == artifact_type
