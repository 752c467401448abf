"""Which reads go upstream, which stay local, and that a mirrored namespace cannot be pushed to."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.helpers.client import MANIFEST_ACCEPT, RegistryClient, describe
from tests.helpers.images import OCI, build_image, write_oci_layout
from tests.helpers.registries import RegistryEndpoint
from tests.helpers.skopeo import Skopeo, layout_reference
from tests.helpers.upstream import (
    APP,
    MirrorConfig,
    Upstream,
    UpstreamEntry,
    oci_error_codes,
    skopeo_fails,
)

from .conftest import HUB, MirrorFactory

LOCAL = build_image(OCI, seed="pushed-locally")


def _manifest(http: requests.Session, mirror: RegistryEndpoint, path: str) -> requests.Response:
    return http.get(f"{mirror.url}{path}", headers={"Accept": MANIFEST_ACCEPT})


def test_pushed_content_is_served_before_the_mirror(
    mirror: RegistryEndpoint, upstream: Upstream, http: requests.Session
) -> None:
    """Rule 0: a name pushed to ocireg is local, also when the request says `ns=docker.io`."""
    RegistryClient(mirror.url).push_image("library/app", LOCAL, "v1")
    for path in ("/v2/library/app/manifests/v1", f"/v2/library/app/manifests/v1?ns={HUB}"):
        response = _manifest(http, mirror, path)
        assert response.status_code == 200, describe(response)
        assert response.headers["Docker-Content-Digest"] == LOCAL.digest, describe(
            response, "served the upstream's tag instead of the pushed one"
        )
    # The upstream's copy is still reachable by its prefixed name.
    prefixed = _manifest(http, mirror, "/v2/docker.io/library/app/manifests/v1")
    assert prefixed.headers.get("Docker-Content-Digest") == APP.digest, describe(prefixed)


def test_without_default_unknown_names_stay_local(
    mirror_factory: MirrorFactory, upstream: Upstream, http: requests.Session
) -> None:
    """No `default`, no prefix, no known ns: a plain 404, and the upstream hears nothing."""
    mirror = mirror_factory(MirrorConfig([UpstreamEntry(HUB, upstream.url)]))
    before = len(upstream.endpoint.access_log())
    for path in (
        "/v2/library/app/manifests/v1",
        "/v2/library/app/manifests/v1?ns=quay.example",
        f"/v2/library/app/blobs/{APP.child('linux/amd64').config.digest}",
    ):
        response = _manifest(http, mirror, path)
        assert response.status_code == 404, describe(response)
        assert oci_error_codes(response) in (
            ["MANIFEST_UNKNOWN"],
            ["NAME_UNKNOWN"],
            ["BLOB_UNKNOWN"],
        ), describe(response)
    assert len(upstream.endpoint.access_log()) == before, "a purely local read reached upstream"
    mirrored = _manifest(http, mirror, "/v2/library/app/manifests/v1?ns=docker.io")
    assert mirrored.headers.get("Docker-Content-Digest") == APP.digest, describe(mirrored)


def test_include_and_exclude_limit_what_is_mirrored(
    mirror_factory: MirrorFactory, upstream: Upstream, http: requests.Session
) -> None:
    """Patterns apply to the upstream-side name; a refused name is purely local (404)."""
    mirror = mirror_factory(MirrorConfig([
        UpstreamEntry(HUB, upstream.url, include=["library/*"], exclude=["library/other"]),
    ]))  # fmt: skip
    allowed = _manifest(http, mirror, "/v2/docker.io/library/app/manifests/v1")
    assert allowed.status_code == 200, describe(allowed)
    before = len(upstream.endpoint.access_log())
    for path in ("/v2/docker.io/library/other/manifests/v1", "/v2/docker.io/team/app/manifests/v1"):
        refused = _manifest(http, mirror, path)
        assert refused.status_code == 404, describe(refused)
    assert len(upstream.endpoint.access_log()) == before, "an excluded name reached upstream"


def test_push_into_a_mirrored_namespace_is_denied(
    mirror: RegistryEndpoint, skopeo: Skopeo, tmp_path: Path, http: requests.Session
) -> None:
    """Uploads and manifest PUTs under `docker.io/...` get 403 DENIED; other names push fine."""
    started = http.post(f"{mirror.url}/v2/docker.io/library/mine/blobs/uploads/")
    assert started.status_code == 403, describe(started)
    assert oci_error_codes(started) == ["DENIED"], describe(started)
    blob = LOCAL.children[0].config
    monolithic = http.post(
        f"{mirror.url}/v2/docker.io/library/mine/blobs/uploads/",
        params={"digest": blob.digest},
        data=blob.data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert monolithic.status_code == 403, describe(monolithic)
    assert oci_error_codes(monolithic) == ["DENIED"], describe(monolithic)
    manifest = LOCAL.children[0].manifest
    put = http.put(
        f"{mirror.url}/v2/docker.io/library/app/manifests/v9",
        data=manifest.data,
        headers={"Content-Type": manifest.media_type},
    )
    assert put.status_code == 403, describe(put)
    assert oci_error_codes(put) == ["DENIED"], describe(put)

    RegistryClient(mirror.url).push_blob("team/app", blob)
    mount = http.post(
        f"{mirror.url}/v2/docker.io/library/mine/blobs/uploads/",
        params={"mount": blob.digest, "from": "team/app"},
    )
    assert mount.status_code == 403, describe(mount, "cross-repository mount into docker.io/")
    assert oci_error_codes(mount) == ["DENIED"], describe(mount)

    layout = write_oci_layout(LOCAL, tmp_path / "local")
    source = layout_reference(layout, LOCAL)
    skopeo.copy_all(source, f"docker://{mirror.ref('team/app')}:v1")  # not mirrored: fine
    denied = skopeo_fails(
        skopeo,
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        source,
        f"docker://{mirror.ref('docker.io/library/mine')}:v1",
    )
    assert "denied" in denied.lower(), denied


def test_ns_of_an_unconfigured_registry_is_not_served_from_the_default(
    mirror: RegistryEndpoint, upstream: Upstream, http: requests.Session
) -> None:
    """`?ns=quay.example` names a registry ocireg does not mirror: never Docker Hub's content.

    containerd sends `ns=<registry>` for every registry whose hosts.toml names ocireg. Rule 3
    (the default upstream) exists for Docker's `registry-mirrors`, which sends no ns; answering
    `quay.example/library/app` with `docker.io/library/app` would hand a client a different
    image under the name it asked for. With no local content, the answer is a plain 404.
    """
    before = len(upstream.endpoint.access_log())
    for path in (
        "/v2/library/app/manifests/v1?ns=quay.example",
        "/v2/app/manifests/v1?ns=quay.example",
    ):
        response = _manifest(http, mirror, path)
        assert response.status_code == 404, describe(
            response, "a request for another registry (ns=quay.example) was answered from docker.io"
        )
    assert len(upstream.endpoint.access_log()) == before, (
        "docker.io was asked for quay.example's image"
    )


def test_no_ns_value_opens_a_mirrored_namespace_to_writes(
    mirror: RegistryEndpoint, http: requests.Session
) -> None:
    """A name under `docker.io/` holds the cache, whatever `ns` a request adds: an ns that names
    no upstream, or names it in another spelling, must not turn it into a pushable name whose
    tag is then served as the upstream's."""
    name = "docker.io/library/app"
    cached = _manifest(http, mirror, f"/v2/{name}/manifests/v1")
    assert cached.headers.get("Docker-Content-Digest") == APP.digest, describe(cached)
    child = LOCAL.children[0]
    blob = child.config
    RegistryClient(mirror.url).push_blob("team/app", blob)
    octets = {"Content-Type": "application/octet-stream"}
    for ns in ("evil", "Docker.IO", "docker.io.", "quay.example", "ghcr.io"):
        base, query = f"{mirror.url}/v2/{name}", {"ns": ns}
        attempts = {
            "upload": http.post(f"{base}/blobs/uploads/", params={**query, "digest": blob.digest},
                                data=blob.data, headers=octets),
            "session": http.post(f"{base}/blobs/uploads/", params=query),
            "mount": http.post(f"{base}/blobs/uploads/",
                               params={**query, "mount": blob.digest, "from": "team/app"}),
            "manifest": http.put(f"{base}/manifests/v1", params=query, data=child.manifest.data,
                                 headers={"Content-Type": child.manifest.media_type}),
            "tag delete": http.delete(f"{base}/manifests/v1", params=query),
            "manifest delete": http.delete(f"{base}/manifests/{APP.digest}", params=query),
            "blob delete": http.delete(f"{base}/blobs/{APP.child('linux/amd64').config.digest}",
                                       params=query),
        }  # fmt: skip
        for what, response in attempts.items():
            assert response.status_code == 403, describe(response, f"{what} with ns={ns}")
            assert oci_error_codes(response) == ["DENIED"], describe(response)
    for path in (f"/v2/{name}/manifests/v1", f"/v2/library/app/manifests/v1?ns={HUB}"):
        served = _manifest(http, mirror, path)
        assert served.headers.get("Docker-Content-Digest") == APP.digest, describe(served)
