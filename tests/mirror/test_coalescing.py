"""Concurrent cold pulls of one uncached blob or manifest cause exactly one upstream fetch.

The witness is the upstream's own access log (Distribution logs every request it answers), so
the count does not depend on anything ocireg reports about itself.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from tests.helpers.client import MANIFEST_ACCEPT, describe
from tests.helpers.images import AMD64, Blob
from tests.helpers.registries import RegistryEndpoint
from tests.helpers.upstream import (
    APP,
    MirrorConfig,
    Upstream,
    UpstreamEntry,
    patterned_blob,
)

from .conftest import HUB, MirrorFactory

CLIENTS = 32
BIG_SIZE = 100 * 1000 * 1000


@pytest.fixture(scope="module")
def big_blob() -> Blob:
    return patterned_blob(BIG_SIZE, seed="coalesce")


@dataclass(frozen=True)
class Pulled:
    status: int
    size: int
    digest: str
    error: str | None


def _pull_blob(url: str) -> Pulled:
    session = requests.Session()
    session.trust_env = False
    hasher, size, status = hashlib.sha256(), 0, 0
    try:
        with session.get(url, stream=True, timeout=120) as response:
            status = response.status_code
            for chunk in response.iter_content(1024 * 1024):
                hasher.update(chunk)
                size += len(chunk)
    except requests.RequestException as error:
        return Pulled(status, size, "", repr(error))
    return Pulled(status, size, "sha256:" + hasher.hexdigest(), None)


def _all_at_once(count: int, work: Callable[[], Pulled]) -> list[Pulled]:
    """Run `work` in `count` threads released together by a barrier."""
    barrier = threading.Barrier(count)

    def start() -> Pulled:
        barrier.wait()
        return work()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: start(), range(count)))


def _logged_gets(upstream: Upstream, *targets: str, at_least: int = 1) -> int:
    """GETs of any of `targets` in the upstream's log.

    Waits (up to 3 s, only while fewer than `at_least` are logged) for a log line that lags the
    response it belongs to.
    """
    deadline = time.monotonic() + 3
    while True:
        count = sum(
            1 for e in upstream.endpoint.access_log() if e.method == "GET" and e.target in targets
        )
        if count >= at_least or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def test_32_cold_pulls_of_a_100mb_blob_make_one_upstream_get(
    mirror: RegistryEndpoint, upstream: Upstream, big_blob: Blob
) -> None:
    upstream.push_blob("library/big", big_blob)
    before = _logged_gets(upstream, f"/v2/library/big/blobs/{big_blob.digest}", at_least=0)

    url = f"{mirror.url}/v2/docker.io/library/big/blobs/{big_blob.digest}"
    results = _all_at_once(CLIENTS, lambda: _pull_blob(url))

    wrong = [
        r
        for r in results
        if (r.status, r.size, r.digest, r.error) != (200, BIG_SIZE, big_blob.digest, None)
    ]
    assert not wrong, f"{len(wrong)} of {CLIENTS} pulls failed or got wrong bytes: {wrong[:3]}"
    target = f"/v2/library/big/blobs/{big_blob.digest}"
    gets = _logged_gets(upstream, target, at_least=before + 1) - before
    assert gets == 1, f"{CLIENTS} concurrent cold pulls caused {gets} upstream GETs of the blob"
    # Cached now: one more pull is served without the upstream.
    assert _pull_blob(url).digest == big_blob.digest
    assert _logged_gets(upstream, target, at_least=before + 1) - before == 1


def test_concurrent_cold_manifest_requests_make_one_upstream_get(
    mirror: RegistryEndpoint, upstream: Upstream
) -> None:
    child = APP.child(AMD64)
    url = f"{mirror.url}/v2/docker.io/library/app/manifests/{child.digest}"

    def get() -> Pulled:
        session = requests.Session()
        session.trust_env = False
        response = session.get(url, headers={"Accept": MANIFEST_ACCEPT}, timeout=30)
        digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
        return Pulled(response.status_code, len(response.content), digest, None)

    results = _all_at_once(16, get)
    assert all((r.status, r.digest) == (200, child.digest) for r in results), results
    assert _logged_gets(upstream, f"/v2/library/app/manifests/{child.digest}") == 1


def test_range_of_an_uncached_blob(
    mirror: RegistryEndpoint, upstream: Upstream, http: requests.Session
) -> None:
    """A Range request on a blob not yet cached gets exactly the bytes asked for."""
    blob = patterned_blob(8 * 1024 * 1024, seed="range")
    upstream.push_blob("library/ranged", blob)
    url = f"{mirror.url}/v2/docker.io/library/ranged/blobs/{blob.digest}"
    start, end = 5 * 1024 * 1024 + 17, 5 * 1024 * 1024 + 4112
    response = http.get(url, headers={"Range": f"bytes={start}-{end}"})
    assert response.status_code == 206, describe(response)
    assert response.content == blob.data[start : end + 1]
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{blob.size}", describe(
        response
    )
    full = http.get(url)
    assert full.status_code == 200 and full.content == blob.data, describe(full)


def test_concurrent_cold_tag_requests_make_one_upstream_manifest_get(
    mirror_factory: MirrorFactory, upstream: Upstream
) -> None:
    """16 clients resolve the same uncached tag at once: the upstream serves the manifest once.

    tag_ttl is 5m, so once fetched the tag needs no revalidation within the test.
    """
    mirror = mirror_factory(MirrorConfig([UpstreamEntry(HUB, upstream.url, tag_ttl="5m")]))
    url = f"{mirror.url}/v2/docker.io/library/app/manifests/v1"

    def get() -> Pulled:
        session = requests.Session()
        session.trust_env = False
        response = session.get(url, headers={"Accept": MANIFEST_ACCEPT}, timeout=30)
        digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
        return Pulled(response.status_code, len(response.content), digest, None)

    results = _all_at_once(16, get)
    assert all((r.status, r.digest) == (200, APP.digest) for r in results), results
    by_tag, by_digest = "/v2/library/app/manifests/v1", f"/v2/library/app/manifests/{APP.digest}"
    gets = _logged_gets(upstream, by_tag, by_digest)
    assert gets == 1, f"16 clients resolving one tag caused {gets} upstream GETs of its manifest"
