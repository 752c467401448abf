"""Distribution's linked-blob rule through the mirror: a mirrored name serves a blob only when
its upstream repository has it, however the bytes came into the local content store."""

from __future__ import annotations

import requests

from tests.helpers.client import MANIFEST_ACCEPT, RegistryClient, describe
from tests.helpers.images import OCI, build_image
from tests.helpers.registries import RegistryEndpoint
from tests.helpers.upstream import APP, MirrorConfig, Upstream, UpstreamEntry, oci_error_codes

from .conftest import HUB, MirrorFactory

PRIVATE = build_image(OCI, seed="pushed-privately")


def test_a_private_blob_is_not_served_through_a_mirrored_name(
    mirror: RegistryEndpoint, upstream: Upstream, http: requests.Session
) -> None:
    """Bytes pushed to `team/secret` are in the shared content store; no mirrored name that
    the upstream does not hold them under may read, mount or list them."""
    RegistryClient(mirror.url).push_image("team/secret", PRIVATE, "v1")
    child = PRIVATE.children[0]
    for digest in (child.config.digest, child.layers[0].digest, child.digest):
        for method, path in (
            ("GET", f"/v2/docker.io/library/app/blobs/{digest}"),
            ("HEAD", f"/v2/docker.io/library/app/blobs/{digest}"),
            ("GET", f"/v2/library/app/blobs/{digest}?ns={HUB}"),
            ("GET", f"/v2/docker.io/library/nothere/blobs/{digest}"),
        ):
            response = http.request(method, f"{mirror.url}{path}")
            assert response.status_code == 404, describe(response, "a private blob leaked")
            if method == "GET":
                assert oci_error_codes(response) == ["BLOB_UNKNOWN"], describe(response)
        by_digest = http.get(f"{mirror.url}/v2/docker.io/library/app/manifests/{digest}",
                             headers={"Accept": MANIFEST_ACCEPT})  # fmt: skip
        assert by_digest.status_code == 404, describe(by_digest, "a private manifest leaked")
        mount = http.post(
            f"{mirror.url}/v2/team/thief/blobs/uploads/",
            params={"mount": digest, "from": "docker.io/library/app"},
        )
        assert mount.status_code == 202, describe(mount, "mounted a private blob from a mirrored name")
    catalog = http.get(f"{mirror.url}/v2/_catalog").json()["repositories"]
    assert catalog == ["team/secret"], catalog


def test_stored_bytes_the_upstream_confirms_are_served_without_a_download(
    mirror: RegistryEndpoint, upstream: Upstream, http: requests.Session
) -> None:
    """The same bytes pushed locally first: the upstream's HEAD confirms them, none is fetched."""
    config = APP.child("linux/amd64").config
    RegistryClient(mirror.url).push_blob("team/copy", config)
    response = http.get(f"{mirror.url}/v2/docker.io/library/app/blobs/{config.digest}")
    assert response.status_code == 200 and response.content == config.data, describe(response)
    assert upstream.blob_gets("library/app", config.digest) == 0, "stored bytes were downloaded again"
    catalog = http.get(f"{mirror.url}/v2/_catalog").json()["repositories"]
    assert catalog == ["docker.io/library/app", "team/copy"], catalog


def test_offline_serves_only_what_a_mirrored_name_already_links(
    mirror_factory: MirrorFactory, upstream: Upstream, http: requests.Session
) -> None:
    """Offline nothing can be confirmed: stored bytes that the name does not link stay unknown."""
    mirror = mirror_factory(MirrorConfig([UpstreamEntry(HUB, upstream.url)], offline=True))
    RegistryClient(mirror.url).push_image("team/secret", PRIVATE, "v1")
    child = PRIVATE.children[0]
    for digest in (child.config.digest, child.layers[0].digest, child.digest):
        for path in (f"docker.io/library/app/blobs/{digest}", f"library/app/blobs/{digest}?ns={HUB}"):
            response = http.get(f"{mirror.url}/v2/{path}")
            assert response.status_code == 404, describe(response, "a private blob leaked offline")
            assert oci_error_codes(response) == ["BLOB_UNKNOWN"], describe(response)
    catalog = http.get(f"{mirror.url}/v2/_catalog").json()["repositories"]
    assert catalog == ["team/secret"], catalog
