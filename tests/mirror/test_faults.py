"""A blob that arrives broken from upstream is never cached, and the client's pull fails.

The fault proxy sits between ocireg and the upstream and breaks one layer's body: cut mid-way
(connection reset), cut short with a matching Content-Length (HTTP cannot tell), or complete
with inverted bytes (only the digest can tell). Each time:
- the client's GET of that blob does not end in a complete 200 body (ocireg streams as it
  fetches, so it must fail the response rather than finish it with bytes it knows are wrong),
  and skopeo's pull of the image fails;
- the blob is not cached: with the upstream failing it is not served, and once the fault is
  gone the next GET goes upstream again and succeeds, after which it is served from cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.helpers.client import MANIFEST_ACCEPT, describe
from tests.helpers.faultproxy import FaultProxy, Mode, fault_proxy
from tests.helpers.images import AMD64, OCI, build_image
from tests.helpers.registries import RegistryEndpoint
from tests.helpers.skopeo import Skopeo
from tests.helpers.upstream import (
    MirrorConfig,
    Upstream,
    UpstreamEntry,
    assert_dir_holds,
    oci_error_codes,
    skopeo_fails,
)

from .conftest import HUB, MirrorFactory

BULKY = build_image(OCI, seed="mirror-bulky", layer_size=3 * 1024 * 1024)
LAYER = BULKY.child(AMD64).layers[0]


@dataclass(frozen=True)
class Fetched:
    status: int
    body: bytes
    error: str | None  # the exception that cut the body short, if one did


def fetch(url: str) -> Fetched:
    session = requests.Session()
    session.trust_env = False
    body = bytearray()
    status = 0
    try:
        with session.get(url, stream=True, timeout=30) as response:
            status = response.status_code
            for chunk in response.iter_content(64 * 1024):
                body.extend(chunk)
    except requests.RequestException as error:
        return Fetched(status, bytes(body), repr(error))
    return Fetched(status, bytes(body), None)


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    upstream.seed(BULKY, "library/bulky", "v1")
    with fault_proxy(upstream.url) as running:
        yield running


@pytest.fixture
def mirror_via_proxy(mirror_factory: MirrorFactory, proxy: FaultProxy) -> RegistryEndpoint:
    return mirror_factory(MirrorConfig([UpstreamEntry(HUB, proxy.url, tag_ttl="0s")]))


@pytest.mark.parametrize("mode", [Mode.TRUNCATE, Mode.SHORT, Mode.FLIP], ids=lambda m: m.value)
def test_broken_blob_is_not_cached_and_fails_the_pull(
    mirror_via_proxy: RegistryEndpoint, proxy: FaultProxy, skopeo: Skopeo, tmp_path: Path,
    mode: Mode,
) -> None:  # fmt: skip
    mirror = mirror_via_proxy
    blob_url = f"{mirror.url}/v2/docker.io/library/bulky/blobs/{LAYER.digest}"
    proxy.set(mode, only_digest=LAYER.digest)

    got = fetch(blob_url)
    assert proxy.faulted >= 1, f"the proxy broke nothing: {proxy.requests}"
    complete = got.status == 200 and got.error is None and len(got.body) == LAYER.size
    assert not complete, (
        f"{mode.value}: the client received a complete 200 response "
        f"({'right' if got.body == LAYER.data else 'WRONG'} bytes) for a blob whose upstream "
        f"body was broken"
    )
    if got.status == 200 and mode is not Mode.FLIP:
        assert LAYER.data.startswith(got.body), "the bytes that did arrive are not the blob's"
    stderr = skopeo_fails(skopeo, "copy", "--all", "--preserve-digests", "--src-tls-verify=false",
                          f"docker://{mirror.ref('docker.io/library/bulky:v1')}",
                          f"dir:{tmp_path / 'broken'}")  # fmt: skip
    assert stderr

    # Not cached: with the upstream down, the blob is not served.
    proxy.set(Mode.FAIL, status=503)
    down = fetch(blob_url)
    assert down.status != 200, f"{mode.value}: the broken blob was served from cache"

    # The fault removed, the next pull goes upstream again and gets the right bytes.
    proxy.set(Mode.PASS)
    proxy.clear()
    healed = fetch(blob_url)
    assert (healed.status, healed.error) == (200, None), healed.error
    assert healed.body == LAYER.data
    assert len(proxy.blob_gets(LAYER.digest)) == 1, proxy.requests

    out = tmp_path / "healed"
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
           f"docker://{mirror.ref('docker.io/library/bulky:v1')}", f"dir:{out}")  # fmt: skip
    assert_dir_holds(out, BULKY)
    assert len(proxy.blob_gets(LAYER.digest)) == 1, "a verified blob was fetched again"


def test_broken_manifest_is_not_served_or_cached(
    mirror_via_proxy: RegistryEndpoint, proxy: FaultProxy, http: requests.Session
) -> None:
    """A manifest by digest that arrives with flipped bytes is refused, not cached, refetched."""
    mirror = mirror_via_proxy
    child = BULKY.child(AMD64)
    url = f"{mirror.url}/v2/docker.io/library/bulky/manifests/{child.digest}"
    accept = {"Accept": MANIFEST_ACCEPT}
    proxy.set(Mode.FLIP, only_digest=child.digest)

    broken = http.get(url, headers=accept)
    assert proxy.faulted >= 1, proxy.requests
    assert broken.status_code != 200, describe(broken, "served a manifest whose digest is wrong")
    assert oci_error_codes(broken), describe(broken, "not an OCI error body")

    proxy.set(Mode.PASS)
    proxy.clear()
    healed = http.get(url, headers=accept)
    assert healed.status_code == 200 and healed.content == child.manifest.data, describe(healed)
    assert len(proxy.blob_gets(child.digest)) == 1, proxy.requests
