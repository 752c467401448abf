"""Manifests real clients push, in the shapes they produce them, and what the parser learns."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from registry.errors import RegistryError
from registry.mediatypes import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_EMPTY_JSON,
    OCI_INDEX,
    OCI_MANIFEST,
    parse_manifest,
)
from registry.reference import Digest

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
IN_TOTO = "application/vnd.in-toto+json"


def _desc(media_type: str, seed: str, **extra: Any) -> dict[str, Any]:
    data = seed.encode()
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data), **extra}


def _digest(seed: str) -> Digest:
    return Digest.of(seed.encode())


def _parse(doc: dict[str, Any], content_type: str | None) -> Any:
    return parse_manifest(json.dumps(doc, indent=3).encode(), content_type)


def test_buildkit_image_index_with_attestation() -> None:
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        _desc(OCI_MANIFEST, "image", platform={"architecture": "amd64", "os": "linux"}),
        _desc(OCI_MANIFEST, "attestation", platform={"architecture": "unknown", "os": "unknown"},
              annotations={"vnd.docker.reference.digest": str(_digest("image")),
                           "vnd.docker.reference.type": "attestation-manifest"})]}
    parsed = _parse(index, OCI_INDEX)
    assert parsed.manifests == (_digest("image"), _digest("attestation"))
    attestation = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": _desc(OCI_CONFIG, "cfg"),
                   "layers": [_desc(IN_TOTO, "sbom", annotations={"in-toto.io/predicate-type": "https://spdx.dev/Document"}),
                              _desc(IN_TOTO, "provenance", annotations={
                                  "in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"})]}
    assert _parse(attestation, OCI_MANIFEST).blobs == (_digest("cfg"), _digest("sbom"), _digest("provenance"))


def test_docker_manifest_list_and_foreign_layers() -> None:
    listing = {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        _desc(DOCKER_MANIFEST, "win", platform={"architecture": "amd64", "os": "windows",
                                                "os.version": "10.0.17763.5576"})]}
    assert _parse(listing, DOCKER_LIST).manifests == (_digest("win"),)
    windows = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
               "config": _desc("application/vnd.docker.container.image.v1+json", "cfg"),
               "layers": [_desc("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "base",
                                urls=["https://mcr.microsoft.com/v2/windows/blobs/x"]),
                          _desc("application/vnd.docker.image.rootfs.diff.tar.gzip", "app")]}
    assert _parse(windows, DOCKER_MANIFEST).blobs == (_digest("cfg"), _digest("app"))


def test_oras_artifact_with_empty_config_and_no_layers() -> None:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example+type",
           "config": _desc(OCI_EMPTY_JSON, "{}", data="e30="), "layers": [],
           "annotations": {"org.opencontainers.image.created": "2026-12-01T00:00:00Z"}}
    parsed = _parse(doc, OCI_MANIFEST)
    assert parsed.blobs == (_digest("{}"),)
    assert parsed.artifact_type == "application/vnd.example+type"


def test_signature_referring_to_a_subject() -> None:
    """Notation and cosign (OCI 1.1 mode): the empty config may also be a layer; it is checked once."""
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.cncf.notary.signature",
           "config": _desc(OCI_EMPTY_JSON, "{}"),
           "layers": [_desc("application/jose+json", "sig"), _desc(OCI_EMPTY_JSON, "{}")],
           "subject": _desc(OCI_MANIFEST, "image")}
    parsed = _parse(doc, OCI_MANIFEST)
    assert parsed.blobs == (_digest("{}"), _digest("sig"))
    assert parsed.subject == _digest("image")


def test_helm_chart_and_cosign_tag_signature() -> None:
    chart = {"schemaVersion": 2, "config": _desc("application/vnd.cncf.helm.config.v1+json", "chart"),
             "layers": [_desc("application/vnd.cncf.helm.chart.content.v1.tar+gzip", "tgz")]}
    assert _parse(chart, OCI_MANIFEST).artifact_type == "application/vnd.cncf.helm.config.v1+json"
    signature = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": _desc(OCI_CONFIG, "cfg"),
                 "layers": [_desc("application/vnd.dev.cosign.simplesigning.v1+json", "payload",
                                  annotations={"dev.cosignproject.cosign/signature": "MEUCIQ=="})]}
    assert _parse(signature, f"{OCI_MANIFEST}; charset=utf-8").media_type == OCI_MANIFEST


def test_media_type_from_shape_when_none_is_named() -> None:
    assert _parse({"schemaVersion": 2, "manifests": []}, None).media_type == OCI_INDEX
    image = {"schemaVersion": 2, "config": _desc(OCI_CONFIG, "c"), "layers": []}
    assert _parse(image, None).media_type == OCI_MANIFEST
    with pytest.raises(RegistryError, match="index"):
        _parse(image, OCI_INDEX)


def test_content_type_and_body_must_agree() -> None:
    doc = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": _desc(OCI_CONFIG, "c"), "layers": []}
    with pytest.raises(RegistryError, match="Content-Type") as err:
        _parse(doc, OCI_MANIFEST)
    assert err.value.code == "MANIFEST_INVALID"


def test_a_digest_listed_many_times_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    parse = Digest.parse

    def counting_parse(text: str) -> Digest:
        parsed.append(text)
        return parse(text)

    monkeypatch.setattr(Digest, "parse", counting_parse)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": _desc(OCI_CONFIG, "c"),
           "layers": [_desc("application/octet-stream", "layer")] * 5000, "subject": _desc(OCI_MANIFEST, "s")}
    assert _parse(doc, OCI_MANIFEST).blobs == (_digest("c"), _digest("layer"))
    assert sorted(parsed) == sorted(str(_digest(seed)) for seed in ("c", "layer", "s"))
