"""skopeo against the registry: multi-arch push and pull by exact bytes, tags, delete.

skopeo runs with `--all --preserve-digests`, so any manifest it would have to rewrite makes it
fail rather than hide a difference: equal digests out mean the registry stored and served the
very bytes that went in.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.client import RegistryClient, describe
from tests.helpers.images import (
    DOCKER,
    DOCKER_LIST,
    OCI,
    OCI_INDEX,
    MultiArchImage,
    build_image,
    layout_blob,
    layout_entry,
    write_oci_layout,
)
from tests.helpers.registries import RegistryEndpoint
from tests.helpers.skopeo import Skopeo, layout_reference


def push(skopeo: Skopeo, image: MultiArchImage, tmp_path: Path, destination: str) -> None:
    """Write `image` as an OCI layout and `skopeo copy --all` it to `destination`."""
    layout = write_oci_layout(image, tmp_path / f"in-{image.digest[7:19]}")
    skopeo.copy_all(layout_reference(layout, image), destination)


def assert_served_exactly(skopeo: Skopeo, repo: str, image: MultiArchImage) -> None:
    """The index by tag, and every child by digest, come back byte for byte."""
    assert skopeo.inspect_raw(f"docker://{repo}:v1") == image.index.data
    for child in image.children:
        assert skopeo.inspect_raw(f"docker://{repo}@{child.digest}") == child.manifest.data, (
            child.name
        )


def test_oci_index_round_trips_through_nested_repository(
    registry: RegistryEndpoint, skopeo: Skopeo, tmp_path: Path
) -> None:
    """An OCI index (amd64, arm64, attestation) pushed to team/app/api pulls back identical."""
    image = build_image(OCI)
    repo = registry.ref("team/app/api")
    push(skopeo, image, tmp_path, f"docker://{repo}:v1")

    assert_served_exactly(skopeo, repo, image)
    out = tmp_path / "out"
    skopeo.copy_all(f"docker://{repo}:v1", f"oci:{out}:v1")
    entry = layout_entry(out, "v1")
    assert (entry["mediaType"], entry["digest"]) == (OCI_INDEX, image.digest)
    for blob in image.blobs():
        assert layout_blob(out, blob.digest) == blob.data, blob.digest


def test_docker_manifest_list_round_trips_through_nested_repository(
    registry: RegistryEndpoint, skopeo: Skopeo, tmp_path: Path
) -> None:
    """A Docker manifest list keeps its media type and exact (indented) bytes.

    It is copied out to a `dir:` layout: skopeo would have to convert it to an OCI index to
    write an `oci:` one, which --preserve-digests forbids.
    """
    image = build_image(DOCKER)
    repo = registry.ref("team/app/list")
    push(skopeo, image, tmp_path, f"docker://{repo}:v1")

    response = RegistryClient(registry.url).get_manifest("team/app/list", "v1")
    assert response.status_code == 200, describe(response)
    assert response.headers["Content-Type"] == DOCKER_LIST, describe(response)
    assert response.headers["Docker-Content-Digest"] == image.digest, describe(response)
    assert_served_exactly(skopeo, repo, image)

    out = tmp_path / "out"
    skopeo.copy_all(f"docker://{repo}:v1", f"dir:{out}")
    assert (out / "manifest.json").read_bytes() == image.index.data
    for child in image.children:
        assert (out / f"{child.digest[7:]}.manifest.json").read_bytes() == child.manifest.data
        for blob in (child.config, *child.layers):
            assert (out / blob.digest[7:]).read_bytes() == blob.data, blob.digest


def test_list_tags_then_delete(registry: RegistryEndpoint, skopeo: Skopeo, tmp_path: Path) -> None:
    """list-tags sees both tags; deleting v1 removes its index only, v2 and the children stay."""
    first, second = build_image(OCI, seed="first"), build_image(OCI, seed="second")
    repo = registry.ref("team/app/api")
    push(skopeo, first, tmp_path, f"docker://{repo}:v1")
    push(skopeo, second, tmp_path, f"docker://{repo}:v2")
    assert sorted(skopeo.list_tags(f"docker://{repo}")) == ["v1", "v2"]

    skopeo.delete(f"docker://{repo}:v1")

    client = RegistryClient(registry.url)
    for reference in ("v1", first.digest):
        response = client.get_manifest("team/app/api", reference)
        assert response.status_code == 404, describe(response, f"{reference} after delete")
        codes = [e["code"] for e in response.json()["errors"]]
        assert codes == ["MANIFEST_UNKNOWN"], describe(response)
    assert skopeo.list_tags(f"docker://{repo}") == ["v2"]
    assert skopeo.inspect_raw(f"docker://{repo}:v2") == second.index.data
    amd64 = first.child("linux/amd64")
    assert skopeo.inspect_raw(f"docker://{repo}@{amd64.digest}") == amd64.manifest.data
