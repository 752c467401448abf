"""A tag moved upstream: revalidated after tag_ttl (by HEAD), trusted from cache within it.

One upstream, configured twice under two names, each behind its own counting proxy:
`zero.test` with tag_ttl "0s" (revalidate on every pull) and `hour.test` with tag_ttl "1h".
Mirrored content is stored per upstream name, so the two caches are independent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers.client import MANIFEST_ACCEPT, describe
from tests.helpers.faultproxy import FaultProxy, ProxiedRequest, fault_proxy
from tests.helpers.images import OCI, build_image
from tests.helpers.registries import RegistryEndpoint
from tests.helpers.skopeo import Skopeo
from tests.helpers.upstream import (
    APP,
    MirrorConfig,
    Upstream,
    UpstreamEntry,
    assert_dir_holds,
)

from .conftest import MirrorFactory

MOVED = build_image(OCI, seed="mirror-app-moved")


@pytest.fixture
def proxies(upstream: Upstream) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    with fault_proxy(upstream.url) as zero, fault_proxy(upstream.url) as hour:
        yield zero, hour


@pytest.fixture
def two_ttls(
    mirror_factory: MirrorFactory, proxies: tuple[FaultProxy, FaultProxy]
) -> RegistryEndpoint:
    zero, hour = proxies
    return mirror_factory(MirrorConfig([
        UpstreamEntry("zero.test", zero.url, tag_ttl="0s"),
        UpstreamEntry("hour.test", hour.url, tag_ttl="1h"),
    ]))  # fmt: skip


def _tag(http: requests.Session, mirror: RegistryEndpoint, prefix: str) -> requests.Response:
    response = http.get(
        f"{mirror.url}/v2/{prefix}/library/app/manifests/v1", headers={"Accept": MANIFEST_ACCEPT}
    )
    assert response.status_code == 200, describe(response)
    return response


def _manifest_requests(proxy: FaultProxy) -> list[ProxiedRequest]:
    return [r for r in proxy.requests if "/manifests/" in r.target]


def test_tag_moved_upstream(
    two_ttls: RegistryEndpoint, upstream: Upstream, proxies: tuple[FaultProxy, FaultProxy],
    skopeo: Skopeo, http: requests.Session, tmp_path: Path,
) -> None:  # fmt: skip
    zero, hour = proxies
    for prefix in ("zero.test", "hour.test"):
        assert _tag(http, two_ttls, prefix).headers["Docker-Content-Digest"] == APP.digest

    # Unchanged upstream, tag_ttl 0s: revalidated with a HEAD, nothing fetched again.
    zero.clear()
    assert _tag(http, two_ttls, "zero.test").content == APP.index.data
    seen = [(r.method, r.target) for r in _manifest_requests(zero)]
    assert seen == [("HEAD", "/v2/library/app/manifests/v1")], seen

    upstream.seed(MOVED, "library/app", "v1")
    assert upstream.manifest_digest("library/app", "v1") == MOVED.digest
    zero.clear()
    hour.clear()

    moved = _tag(http, two_ttls, "zero.test")
    assert moved.headers["Docker-Content-Digest"] == MOVED.digest, describe(moved, "after tag_ttl")
    assert moved.content == MOVED.index.data
    assert [r.method for r in _manifest_requests(zero)][:1] == ["HEAD"], zero.requests
    old = _tag(http, two_ttls, "hour.test")
    assert old.headers["Docker-Content-Digest"] == APP.digest, describe(old, "within tag_ttl")
    assert old.content == APP.index.data
    assert hour.requests == [], f"a tag within tag_ttl went upstream: {hour.requests}"

    # And with a real client, all children included.
    skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        f"docker://{two_ttls.ref('zero.test/library/app:v1')}",
        f"dir:{tmp_path / 'zero'}",
    )
    assert_dir_holds(tmp_path / "zero", MOVED)
    skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        f"docker://{two_ttls.ref('hour.test/library/app:v1')}",
        f"dir:{tmp_path / 'hour'}",
    )
    assert_dir_holds(tmp_path / "hour", APP)
    assert not [r for r in hour.requests if r.target.endswith("/manifests/v1")], hour.requests
