"""oras (Python) pushes artifacts with a `subject`; the referrers API must then find them.

What the distribution spec v1.1 requires and these tests check:
- a manifest PUT with a `subject` answers `OCI-Subject: <subject digest>`;
- `GET /v2/<name>/referrers/<digest>` answers 200 with an image index
  (Content-Type application/vnd.oci.image.index.v1+json) of descriptors of the referring
  manifests, each with `artifactType` (the config media type when the manifest has none) and
  the manifest's annotations; an unknown subject or one without referrers gives an empty list;
- `?artifactType=` filters, and the answer says so with `OCI-Filters-Applied: artifactType`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import oras.client  # type: ignore[import-untyped]
import oras.oci  # type: ignore[import-untyped]
import pytest

from tests.helpers.client import RegistryClient, describe
from tests.helpers.images import (
    AMD64,
    ARM64,
    OCI,
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    MultiArchImage,
    build_image,
)
from tests.helpers.registries import RegistryEndpoint

REPO = "team/app/api"
SBOM_TYPE = "application/vnd.example.sbom.v1+json"
SIGNATURE_TYPE = "application/vnd.example.signature.v1+json"


@dataclass(frozen=True)
class Artifact:
    """A manifest oras pushed, as the referrers API should describe it."""

    tag: str
    digest: str
    size: int
    artifact_type: str
    annotations: dict[str, str]
    payload: bytes


@dataclass(frozen=True)
class Pushed:
    """The image, and the artifacts attached to its amd64 manifest and to its index."""

    image: MultiArchImage
    sbom: Artifact
    signature: Artifact
    index_sbom: Artifact


def oras_client(registry: RegistryEndpoint) -> oras.client.OrasClient:
    client = oras.client.OrasClient(hostname=registry.hostport, insecure=True)
    client.session.trust_env = False  # loopback only, whatever proxy the environment names
    return client


def push_artifact(
    registry: RegistryEndpoint, workdir: Path, tag: str, artifact_type: str, subject: Blob
) -> Artifact:
    """`oras push` one file with `subject`; its config media type is the artifact type."""
    workdir.mkdir(parents=True, exist_ok=True)
    payload = f'{{"artifact": "{tag}", "subject": "{subject.digest}"}}'.encode()
    (workdir / f"{tag}.json").write_bytes(payload)
    (workdir / "config.json").write_bytes(b"{}")
    annotations = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "e2e.tag": tag}
    response = oras_client(registry).push(
        target=registry.ref(f"{REPO}:{tag}"),
        files=[f"{workdir / tag}.json:application/json"],
        manifest_config=f"{workdir / 'config.json'}:{artifact_type}",
        manifest_annotations=annotations,
        subject=oras.oci.Subject(
            mediaType=subject.media_type, digest=subject.digest, size=subject.size
        ),
        disable_path_validation=True,
        quiet=True,
    )
    body = response.request.body
    assert isinstance(body, bytes), body
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    assert response.status_code == 201, describe(response)
    assert response.headers.get("Docker-Content-Digest") == digest, describe(response)
    assert response.headers.get("OCI-Subject") == subject.digest, describe(response, "OCI-Subject")
    return Artifact(tag, digest, len(body), artifact_type, annotations, payload)


@pytest.fixture
def pushed(registry: RegistryEndpoint, tmp_path: Path) -> Pushed:
    image = build_image(OCI)
    RegistryClient(registry.url).push_image(REPO, image, "v1")
    amd64 = image.child(AMD64).manifest
    work = tmp_path / "artifacts"
    return Pushed(
        image,
        sbom=push_artifact(registry, work, "sbom", SBOM_TYPE, amd64),
        signature=push_artifact(registry, work, "sig", SIGNATURE_TYPE, amd64),
        index_sbom=push_artifact(registry, work, "index-sbom", SBOM_TYPE, image.index),
    )


def referrers(
    registry: RegistryEndpoint, digest: str, artifact_type: str | None = None
) -> dict[str, Any]:
    """GET the referrers index, checking what every answer must have; returns the parsed body."""
    response = RegistryClient(registry.url).referrers(REPO, digest, artifact_type)
    assert response.status_code == 200, describe(response)
    assert response.headers["Content-Type"].split(";")[0] == OCI_INDEX, describe(response)
    if artifact_type:
        assert response.headers.get("OCI-Filters-Applied") == "artifactType", describe(response)
    body: dict[str, Any] = response.json()
    assert (body["schemaVersion"], body["mediaType"]) == (2, OCI_INDEX), describe(response)
    return body


def assert_describes(descriptors: list[dict[str, Any]], expected: list[Artifact]) -> None:
    """The descriptors are exactly `expected`, each with type, size and annotations right."""
    by_digest = {d["digest"]: d for d in descriptors}
    assert sorted(by_digest) == sorted(a.digest for a in expected), descriptors
    for artifact in expected:
        descriptor = by_digest[artifact.digest]
        assert descriptor["mediaType"] == OCI_MANIFEST, descriptor
        assert descriptor["size"] == artifact.size, descriptor
        assert descriptor["artifactType"] == artifact.artifact_type, descriptor
        assert artifact.annotations.items() <= descriptor.get("annotations", {}).items(), descriptor


def test_referrers_list_artifacts_of_a_manifest(registry: RegistryEndpoint, pushed: Pushed) -> None:
    """Both artifacts attached to the amd64 manifest, and only those, are listed."""
    body = referrers(registry, pushed.image.child(AMD64).digest)
    assert_describes(body["manifests"], [pushed.sbom, pushed.signature])


def test_referrers_filter_by_artifact_type(registry: RegistryEndpoint, pushed: Pushed) -> None:
    amd64 = pushed.image.child(AMD64).digest
    assert_describes(referrers(registry, amd64, SBOM_TYPE)["manifests"], [pushed.sbom])
    assert_describes(referrers(registry, amd64, SIGNATURE_TYPE)["manifests"], [pushed.signature])
    assert referrers(registry, amd64, "application/vnd.example.none")["manifests"] == []


def test_referrers_of_an_index_and_of_a_manifest_without_any(
    registry: RegistryEndpoint, pushed: Pushed
) -> None:
    """An index can be a subject; a subject without referrers (or unknown) lists none, not 404."""
    assert_describes(referrers(registry, pushed.image.digest)["manifests"], [pushed.index_sbom])
    assert referrers(registry, pushed.image.child(ARM64).digest)["manifests"] == []
    unknown = "sha256:" + hashlib.sha256(b"never pushed").hexdigest()
    assert referrers(registry, unknown)["manifests"] == []


def test_oras_pulls_the_artifact_back(
    registry: RegistryEndpoint, pushed: Pushed, tmp_path: Path
) -> None:
    """The artifact is an ordinary manifest too: oras pulls its file back by tag."""
    files = oras_client(registry).pull(
        target=registry.ref(f"{REPO}:sbom"), outdir=str(tmp_path / "pulled")
    )
    assert [Path(f).read_bytes() for f in files] == [pushed.sbom.payload]
