"""Pull through the mirror with real clients and compare every digest with the upstream's.

skopeo cannot send containerd's `ns`, so it reaches the upstream by the name prefix
(`MIRROR/docker.io/library/app`, rule 2) and as the default upstream (`MIRROR/app`, rule 3, with
`library/` added for a one-component Docker Hub name). `copy --all --preserve-digests` to a
`dir:` layout fails on any manifest it would have to rewrite, so equal bytes out mean the mirror
served what the upstream holds. containerd pulls `docker.io/library/app` with a hosts.toml that
names ocireg as the mirror, which makes every request carry `?ns=docker.io` (rule 1).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.helpers.client import MANIFEST_ACCEPT, describe
from tests.helpers.containerd import Containerd, write_hosts_toml
from tests.helpers.images import AMD64, ARM64, DOCKER_LIST, OCI_INDEX, MultiArchImage
from tests.helpers.registries import RegistryEndpoint
from tests.helpers.skopeo import Skopeo
from tests.helpers.upstream import (
    APP,
    LIST,
    Upstream,
    assert_dir_holds,
    oci_error_codes,
)

from .conftest import HUB


def _pull(skopeo: Skopeo, reference: str, out: Path) -> Path:
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
           f"docker://{reference}", f"dir:{out}")  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("name", "reference", "image", "upstream_repo"),
    [
        ("docker.io/library/app", ":v1", APP, "library/app"),
        ("docker.io/library/app", "@" + APP.digest, APP, "library/app"),
        ("docker.io/library/app", ":list", LIST, "library/app"),
        ("app", ":v1", APP, "library/app"),
        ("library/app", "@" + LIST.digest, LIST, "library/app"),
    ],
    ids=["prefix-tag", "prefix-digest", "prefix-docker-list", "default-tag", "default-digest"],
)
def test_skopeo_pulls_through_the_mirror(
    mirror: RegistryEndpoint,
    upstream: Upstream,
    skopeo: Skopeo,
    tmp_path: Path,
    name: str,
    reference: str,
    image: MultiArchImage,
    upstream_repo: str,
) -> None:
    """Every manifest and blob comes out byte for byte as the upstream holds it."""
    if reference.startswith(":"):
        assert upstream.manifest_digest(upstream_repo, reference[1:]) == image.digest
    out = _pull(skopeo, mirror.ref(name + reference), tmp_path / "out")
    assert_dir_holds(out, image)
    # The mirrored copy is stored under the upstream's name: with the upstream gone, that name
    # serves it, whichever route filled the cache.
    upstream.stop()
    cached = _pull(skopeo, mirror.ref(f"docker.io/{upstream_repo}{reference}"), tmp_path / "cached")
    assert_dir_holds(cached, image)


def test_tag_list_comes_from_the_upstream(
    mirror: RegistryEndpoint, skopeo: Skopeo, http: requests.Session
) -> None:
    """tags/list of a mirrored repository, by prefix, by ns and by default route."""
    assert sorted(skopeo.list_tags(f"docker://{mirror.ref('docker.io/library/app')}")) == [
        "list",
        "v1",
    ]
    for path in ("/v2/docker.io/library/app/tags/list", f"/v2/library/app/tags/list?ns={HUB}",
                 "/v2/app/tags/list"):  # fmt: skip
        response = http.get(f"{mirror.url}{path}")
        assert response.status_code == 200, describe(response)
        assert sorted(response.json()["tags"]) == ["list", "v1"], describe(response)


def test_head_requests_of_uncached_content(
    mirror: RegistryEndpoint, http: requests.Session
) -> None:
    """HEAD (containerd resolves tags with it) answers digest, type and size before any GET."""
    amd64 = APP.child(AMD64)
    for path, blob, media_type in (
        ("/v2/docker.io/library/app/manifests/v1", APP.index, OCI_INDEX),
        (
            f"/v2/docker.io/library/app/manifests/{amd64.digest}",
            amd64.manifest,
            amd64.manifest.media_type,
        ),
        (f"/v2/docker.io/library/app/blobs/{amd64.layers[0].digest}", amd64.layers[0], None),
    ):
        response = http.head(f"{mirror.url}{path}", headers={"Accept": MANIFEST_ACCEPT})
        assert response.status_code == 200, describe(response)
        assert response.headers["Docker-Content-Digest"] == blob.digest, describe(response)
        assert int(response.headers["Content-Length"]) == blob.size, describe(response)
        if media_type:
            assert response.headers["Content-Type"] == media_type, describe(response)


def test_unknown_upstream_content_maps_to_oci_not_found(
    mirror: RegistryEndpoint, http: requests.Session
) -> None:
    """An upstream 404 is the spec's 404 with MANIFEST_UNKNOWN / NAME_UNKNOWN / BLOB_UNKNOWN."""
    missing = "sha256:" + "0" * 64
    for path, codes in (
        ("/v2/docker.io/library/app/manifests/nope", {"MANIFEST_UNKNOWN"}),
        ("/v2/docker.io/library/nope/manifests/v1", {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}),
        (f"/v2/docker.io/library/app/manifests/{missing}", {"MANIFEST_UNKNOWN"}),
        (f"/v2/docker.io/library/app/blobs/{missing}", {"BLOB_UNKNOWN"}),
    ):
        response = http.get(f"{mirror.url}{path}", headers={"Accept": MANIFEST_ACCEPT})
        assert response.status_code == 404, describe(response)
        assert set(oci_error_codes(response)) <= codes and oci_error_codes(response), describe(
            response
        )


def test_manifest_headers_match_the_upstream(
    mirror: RegistryEndpoint, upstream: Upstream, http: requests.Session
) -> None:
    """Media type, digest and bytes of a tag are the upstream's own, for OCI and Docker lists."""
    for tag, image, media_type in (("v1", APP, OCI_INDEX), ("list", LIST, DOCKER_LIST)):
        theirs = http.get(f"{upstream.url}/v2/library/app/manifests/{tag}",
                          headers={"Accept": MANIFEST_ACCEPT})  # fmt: skip
        ours = http.get(f"{mirror.url}/v2/docker.io/library/app/manifests/{tag}",
                        headers={"Accept": MANIFEST_ACCEPT})  # fmt: skip
        assert ours.status_code == 200, describe(ours)
        assert ours.content == theirs.content == image.index.data, describe(ours)
        assert ours.headers["Docker-Content-Digest"] == theirs.headers["Docker-Content-Digest"]
        assert ours.headers["Content-Type"] == media_type, describe(ours)
        head = http.head(f"{mirror.url}/v2/docker.io/library/app/manifests/{tag}",
                         headers={"Accept": MANIFEST_ACCEPT})  # fmt: skip
        assert head.status_code == 200, describe(head)
        assert head.headers["Docker-Content-Digest"] == image.digest, describe(head)
        assert int(head.headers["Content-Length"]) == image.index.size, describe(head)


def test_ns_request_is_mirrored_and_carries_oci_namespace(
    mirror: RegistryEndpoint, http: requests.Session
) -> None:
    """`?ns=docker.io` (what containerd sends) is answered from the upstream with OCI-Namespace."""
    amd64 = APP.child(AMD64)
    for path, data in (
        ("/v2/library/app/manifests/v1", APP.index.data),
        (f"/v2/library/app/manifests/{amd64.digest}", amd64.manifest.data),
        (f"/v2/library/app/blobs/{amd64.config.digest}", amd64.config.data),
        (f"/v2/library/app/blobs/{amd64.layers[0].digest}", amd64.layers[0].data),
    ):
        response = http.get(f"{mirror.url}{path}", params={"ns": HUB},
                            headers={"Accept": MANIFEST_ACCEPT})  # fmt: skip
        assert response.status_code == 200, describe(response)
        assert response.content == data, describe(response)
        assert response.headers.get("OCI-Namespace") == HUB, describe(response, "no OCI-Namespace")


_REQUEST_LINE = re.compile(r"\b(GET|HEAD) (/v2/[^\s\"]+) HTTP/1\.1")


def test_containerd_pulls_docker_io_through_hosts_toml(
    mirror: RegistryEndpoint, upstream: Upstream, containerd: Containerd, tmp_path: Path
) -> None:
    """ctr with hosts.toml naming ocireg as docker.io's mirror gets the upstream's exact image.

    Only the platform asked for is fetched from the upstream (an index caches its children only
    as clients ask for them), and what was pulled is then served by the cache name even with the
    upstream gone.
    """
    hosts_dir = tmp_path / "hosts"
    write_hosts_toml(hosts_dir, HUB, mirror.url)

    pulled = containerd.ctr(
        "images", "pull", "--http-dump", "--hosts-dir", str(hosts_dir),
        "--platform", ARM64, "docker.io/library/app:v1",
    )  # fmt: skip

    sent = [target for _, target in _REQUEST_LINE.findall(pulled.stderr)]
    assert sent, f"ctr dumped no request:\n{pulled.stderr}"
    assert all(parse_qs(urlsplit(t).query).get("ns") == [HUB] for t in sent), sent
    assert f"unpacking {ARM64}" in pulled.stdout, pulled.stdout
    listed = containerd.ctr("images", "ls").stdout
    assert any(
        line.split()[:1] == ["docker.io/library/app:v1"] and APP.digest in line
        for line in listed.splitlines()
    ), listed
    arm64, amd64 = APP.child(ARM64), APP.child(AMD64)
    assert containerd.content(APP.digest) == APP.index.data
    assert containerd.content(arm64.digest) == arm64.manifest.data
    assert containerd.content(arm64.layers[0].digest) == arm64.layers[0].data

    fetched = {
        e.target.rsplit("/", 1)[1] for e in upstream.endpoint.access_log() if e.method == "GET"
    }
    assert {arm64.digest, arm64.config.digest, arm64.layers[0].digest} <= fetched, fetched
    assert not {amd64.digest, amd64.config.digest, amd64.layers[0].digest} & fetched, (
        "the mirror fetched the platform nobody asked for"
    )

    upstream.stop()
    client = requests.Session()
    client.trust_env = False
    for path, data in (
        (f"/v2/docker.io/library/app/manifests/{arm64.digest}", arm64.manifest.data),
        (f"/v2/docker.io/library/app/blobs/{arm64.layers[0].digest}", arm64.layers[0].data),
        (f"/v2/library/app/manifests/{arm64.digest}?ns={HUB}", arm64.manifest.data),
    ):
        response = client.get(f"{mirror.url}{path}", headers={"Accept": MANIFEST_ACCEPT})
        assert response.status_code == 200, describe(response, "cached content, upstream stopped")
        assert response.content == data
