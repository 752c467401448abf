"""The test images themselves: the e2e tests are only as good as the images they push.

No process here; these check what containerd and skopeo would otherwise reject late and
obscurely (diff_ids, sizes, annotations), and that the bytes are the same on every run.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from tests.helpers.images import (
    AMD64,
    ARM64,
    ATTESTATION,
    DOCKER,
    DOCKER_LAYER_GZIP,
    IN_TOTO,
    OCI,
    OCI_MANIFEST,
    Flavour,
    build_image,
    layout_blob,
    layout_entry,
    write_oci_layout,
)


@pytest.mark.parametrize("flavour", [OCI, DOCKER], ids=["oci", "docker"])
def test_images_are_deterministic_and_seeded(flavour: Flavour) -> None:
    assert build_image(flavour).digest == build_image(flavour).digest
    assert build_image(flavour, seed="other").digest != build_image(flavour).digest


@pytest.mark.parametrize("flavour", [OCI, DOCKER], ids=["oci", "docker"])
def test_index_describes_its_children(flavour: Flavour) -> None:
    image = build_image(flavour)
    index = image.index.json()
    assert index["mediaType"] == flavour.index
    entries = {entry["digest"]: entry for entry in index["manifests"]}
    assert list(entries) == image.child_digests()
    for child in image.children:
        assert entries[child.digest]["size"] == child.manifest.size
        assert entries[child.digest]["mediaType"] == child.manifest.media_type
    platforms = [entries[c.digest]["platform"]["architecture"] for c in image.children]
    assert platforms == ["amd64", "arm64", "unknown"]


@pytest.mark.parametrize("flavour", [OCI, DOCKER], ids=["oci", "docker"])
def test_layers_match_config_diff_ids(flavour: Flavour) -> None:
    """containerd refuses to unpack a layer whose uncompressed digest is not the diff_id."""
    image = build_image(flavour, layer_size=4096)
    for name in (AMD64, ARM64):
        child = image.child(name)
        config = child.config.json()
        assert (config["os"], config["architecture"]) == tuple(name.split("/"))
        diff_ids = [
            "sha256:" + hashlib.sha256(gzip.decompress(x.data)).hexdigest() for x in child.layers
        ]
        assert config["rootfs"]["diff_ids"] == diff_ids
        assert child.layers[0].media_type == flavour.layer
        assert child.layers[0].size > 4096  # the payload is incompressible


def test_attestation_is_buildkit_shaped() -> None:
    image = build_image(DOCKER)
    attestation = image.child(ATTESTATION)
    assert attestation.manifest.media_type == OCI_MANIFEST
    assert attestation.annotations == {
        "vnd.docker.reference.digest": image.child(AMD64).digest,
        "vnd.docker.reference.type": "attestation-manifest",
    }
    assert [layer.media_type for layer in attestation.layers] == [IN_TOTO]
    assert image.child(AMD64).layers[0].media_type == DOCKER_LAYER_GZIP


def test_layout_holds_every_blob(tmp_path: Path) -> None:
    image = build_image(OCI)
    layout = write_oci_layout(image, tmp_path / "layout", tag="v1")
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert layout_entry(layout, "v1")["digest"] == image.digest
    for blob in image.blobs():
        assert layout_blob(layout, blob.digest) == blob.data
