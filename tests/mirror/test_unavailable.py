"""An upstream that is stopped, failing or rate-limiting, and ocireg told to stay offline.

What was cached keeps pulling (tags served stale, digests never ask upstream); what was not
fails with an error that says which upstream is the trouble, never a stack trace or a hang.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers.client import MANIFEST_ACCEPT, describe
from tests.helpers.faultproxy import FaultProxy, Mode, fault_proxy
from tests.helpers.images import AMD64
from tests.helpers.procs import free_port
from tests.helpers.registries import RegistryEndpoint
from tests.helpers.skopeo import Skopeo
from tests.helpers.upstream import (
    APP,
    LIST,
    OTHER,
    MirrorConfig,
    Upstream,
    UpstreamEntry,
    assert_dir_holds,
    oci_error_codes,
    oci_error_text,
    skopeo_fails,
)

from .conftest import HUB, MirrorFactory


def _pull(skopeo: Skopeo, reference: str, out: Path) -> None:
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
           f"docker://{reference}", f"dir:{out}")  # fmt: skip


def _get(http: requests.Session, mirror: RegistryEndpoint, path: str) -> requests.Response:
    return http.get(f"{mirror.url}{path}", headers={"Accept": MANIFEST_ACCEPT}, timeout=30)


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with fault_proxy(upstream.url) as running:
        yield running


def test_upstream_stopped_cached_pulls_uncached_fails_clearly(
    mirror: RegistryEndpoint, upstream: Upstream, skopeo: Skopeo, tmp_path: Path,
    http: requests.Session,
) -> None:  # fmt: skip
    _pull(skopeo, mirror.ref("docker.io/library/app:v1"), tmp_path / "warm")

    upstream.stop()

    for n, name in enumerate(("docker.io/library/app:v1", f"docker.io/library/app@{APP.digest}",
                              "app:v1", f"library/app@{APP.digest}")):  # fmt: skip
        out = tmp_path / f"cold-{n}"
        _pull(skopeo, mirror.ref(name), out)
        assert_dir_holds(out, APP)
    by_ns = _get(http, mirror, f"/v2/library/app/manifests/v1?ns={HUB}")
    assert by_ns.status_code == 200 and by_ns.content == APP.index.data, describe(by_ns)

    other_layer = OTHER.child(AMD64).layers[0].digest
    for path in (
        "/v2/docker.io/library/other/manifests/v1",  # uncached repository
        "/v2/docker.io/library/app/manifests/list",  # uncached tag of a cached repository
        f"/v2/docker.io/library/app/manifests/{LIST.digest}",  # uncached digest
        f"/v2/docker.io/library/other/blobs/{other_layer}",  # uncached blob
        "/v2/library/other/manifests/v1",  # by default route
        f"/v2/library/other/manifests/v1?ns={HUB}",  # by ns
    ):
        response = _get(http, mirror, path)
        assert response.status_code == 503, describe(response, "uncached, upstream stopped")
        assert oci_error_codes(response) == ["UNAVAILABLE"], describe(response)
        assert HUB in oci_error_text(response), describe(response, "error does not name upstream")
    stderr = skopeo_fails(skopeo, "inspect", "--raw", "--tls-verify=false",
                          f"docker://{mirror.ref('docker.io/library/other:v1')}")  # fmt: skip
    assert HUB in stderr, stderr


@pytest.mark.parametrize("status", [503, 500, 429])
def test_failing_upstream_serves_stale_tags(
    mirror_factory: MirrorFactory, proxy: FaultProxy, http: requests.Session, status: int
) -> None:
    """5xx and 429 from upstream: a cached tag is served stale; uncached content is an error.

    A 429 keeps its status and Retry-After for the client, so it can back off.
    """
    mirror = mirror_factory(MirrorConfig([UpstreamEntry(HUB, proxy.url, tag_ttl="0s")]))
    amd64 = APP.child(AMD64)
    warm = _get(http, mirror, "/v2/docker.io/library/app/manifests/v1")
    assert warm.status_code == 200, describe(warm)
    assert _get(http, mirror, f"/v2/docker.io/library/app/manifests/{amd64.digest}").ok

    proxy.set(Mode.FAIL, status=status)
    proxy.clear()
    stale = _get(http, mirror, "/v2/docker.io/library/app/manifests/v1")
    assert stale.status_code == 200, describe(stale, f"cached tag while upstream answers {status}")
    assert stale.content == APP.index.data
    assert proxy.requests, "tag_ttl 0s, yet the tag was not revalidated"
    proxy.clear()
    child = _get(http, mirror, f"/v2/docker.io/library/app/manifests/{amd64.digest}")
    assert child.status_code == 200 and child.content == amd64.manifest.data, describe(child)
    assert proxy.requests == [], "a cached digest contacted the upstream"

    uncached = _get(http, mirror, "/v2/docker.io/library/other/manifests/v1")
    if status == 429:
        assert uncached.status_code == 429, describe(uncached)
        assert oci_error_codes(uncached) == ["TOOMANYREQUESTS"], describe(uncached)
        assert uncached.headers.get("Retry-After") == proxy.retry_after, describe(uncached)
    else:
        assert uncached.status_code == 503, describe(uncached)
        assert oci_error_codes(uncached) == ["UNAVAILABLE"], describe(uncached)
    assert HUB in oci_error_text(uncached), describe(uncached)


def test_max_stale_zero_never_serves_a_stale_tag(
    mirror_factory: MirrorFactory, upstream: Upstream, http: requests.Session
) -> None:
    """`max_stale = "0s"`: with the upstream down a tag fails, but cached digests still serve."""
    mirror = mirror_factory(
        MirrorConfig([UpstreamEntry(HUB, upstream.url, tag_ttl="0s", max_stale="0s")])
    )
    assert _get(http, mirror, "/v2/docker.io/library/app/manifests/v1").status_code == 200
    upstream.stop()
    tag = _get(http, mirror, "/v2/docker.io/library/app/manifests/v1")
    assert tag.status_code == 503, describe(tag, "served a tag older than max_stale")
    assert oci_error_codes(tag) == ["UNAVAILABLE"], describe(tag)
    digest = _get(http, mirror, f"/v2/docker.io/library/app/manifests/{APP.digest}")
    assert digest.status_code == 200 and digest.content == APP.index.data, describe(digest)


@pytest.mark.parametrize("how", ["flag", "config"])
def test_offline_serves_the_cache_and_never_asks_upstream(
    mirror_factory: MirrorFactory, proxy: FaultProxy, skopeo: Skopeo, tmp_path: Path,
    http: requests.Session, how: str,
) -> None:  # fmt: skip
    """Warm the cache online, restart on the same data offline: cache only, upstream untouched.

    The upstream stays up (behind a counting proxy), so a request that reached it would pull
    fine: only the proxy's empty log shows that offline means offline.
    """
    entries = [UpstreamEntry(HUB, proxy.url, tag_ttl="0s")]
    online = mirror_factory(MirrorConfig(entries, default=HUB))
    _pull(skopeo, online.ref("docker.io/library/app:v1"), tmp_path / "warm")
    online.process.stop()
    proxy.clear()

    if how == "flag":
        offline = mirror_factory(MirrorConfig(entries, default=HUB), extra_args=["--offline"])
    else:
        offline = mirror_factory(MirrorConfig(entries, default=HUB, offline=True))

    for n, name in enumerate(("docker.io/library/app:v1", f"docker.io/library/app@{APP.digest}",
                              "app:v1")):  # fmt: skip
        out = tmp_path / f"offline-{n}"
        _pull(skopeo, offline.ref(name), out)
        assert_dir_holds(out, APP)
    uncached = (
        "/v2/docker.io/library/other/manifests/v1",
        "/v2/docker.io/library/app/manifests/list",
        f"/v2/library/other/manifests/v1?ns={HUB}",
    )
    for path in uncached:
        response = _get(http, offline, path)
        assert 400 <= response.status_code < 500 or response.status_code == 503, describe(response)
        assert oci_error_codes(response), describe(response, "not an OCI error body")
    skopeo_fails(skopeo, "inspect", "--raw", "--tls-verify=false",
                 f"docker://{offline.ref('docker.io/library/other:v1')}")  # fmt: skip
    assert proxy.requests == [], f"offline ocireg contacted the upstream: {proxy.requests}"


def test_starts_with_the_upstream_down(
    mirror_factory: MirrorFactory, http: requests.Session
) -> None:
    """Nothing listens at the upstream's address: ocireg starts, and says which upstream failed."""
    closed = f"http://127.0.0.1:{free_port()}"
    mirror = mirror_factory(MirrorConfig([UpstreamEntry(HUB, closed)], default=HUB))
    assert http.get(f"{mirror.url}/v2/").status_code == 200
    paths = (
        "/v2/docker.io/library/app/manifests/v1",
        f"/v2/library/app/manifests/v1?ns={HUB}",
        "/v2/app/manifests/v1",
        f"/v2/docker.io/library/app/blobs/{APP.digest}",
    )
    for path in paths:
        response = _get(http, mirror, path)
        assert response.status_code == 503, describe(response)
        assert oci_error_codes(response) == ["UNAVAILABLE"], describe(response)
        assert HUB in oci_error_text(response), describe(response)


def test_head_of_a_cached_tag_while_the_upstream_is_down(
    mirror: RegistryEndpoint, upstream: Upstream, http: requests.Session
) -> None:
    """containerd resolves with HEAD: a stale tag answers it too, with the cached digest."""
    assert _get(http, mirror, f"/v2/library/app/manifests/v1?ns={HUB}").status_code == 200
    upstream.stop()
    for path in (
        f"/v2/library/app/manifests/v1?ns={HUB}",
        "/v2/docker.io/library/app/manifests/v1",
    ):
        head = http.head(f"{mirror.url}{path}", headers={"Accept": MANIFEST_ACCEPT})
        assert head.status_code == 200, describe(head)
        assert head.headers["Docker-Content-Digest"] == APP.digest, describe(head)
        assert int(head.headers["Content-Length"]) == APP.index.size, describe(head)
