"""Blobs stream from the upstream to clients as they arrive; redirects to blob storage work.

The streaming proof needs no clock: the fault proxy sends half the blob and then holds the rest
until the test releases it. While it holds, the upstream has not finished, so any byte a client
receives was streamed through (a mirror that first downloads the whole blob would leave the
client waiting until its read timeout, and the test would fail on that timeout).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers.client import describe
from tests.helpers.faultproxy import STORAGE_PREFIX, FaultProxy, Mode, fault_proxy
from tests.helpers.images import Blob
from tests.helpers.registries import RegistryEndpoint
from tests.helpers.skopeo import Skopeo
from tests.helpers.upstream import (
    APP,
    MirrorConfig,
    Upstream,
    UpstreamEntry,
    assert_dir_holds,
    patterned_blob,
)

from .conftest import HUB, MirrorFactory

READ_TIMEOUT = 20.0  # only reached when the mirror does not stream; never waited for otherwise
FIRST = 64 * 1024


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with fault_proxy(upstream.url) as running:
        yield running


@pytest.fixture
def mirror_via_proxy(mirror_factory: MirrorFactory, proxy: FaultProxy) -> RegistryEndpoint:
    return mirror_factory(MirrorConfig([UpstreamEntry(HUB, proxy.url, tag_ttl="0s")]))


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def test_clients_get_bytes_before_the_upstream_finishes(
    mirror_via_proxy: RegistryEndpoint, upstream: Upstream, proxy: FaultProxy
) -> None:
    blob: Blob = patterned_blob(8 * 1024 * 1024, seed="stream")
    upstream.push_blob("library/stream", blob)
    url = f"{mirror_via_proxy.url}/v2/docker.io/library/stream/blobs/{blob.digest}"
    proxy.set(Mode.STALL, only_digest=blob.digest)

    first = _session().get(url, stream=True, timeout=(5, READ_TIMEOUT))
    second = _session().get(url, stream=True, timeout=(5, READ_TIMEOUT))
    try:
        assert first.status_code == 200, describe(first)
        head_first = first.raw.read(FIRST)
        assert proxy.stalled.is_set()
        assert head_first == blob.data[:FIRST], "first bytes differ"
        # A second client of the same blob is fed from the same fetch as it progresses.
        assert second.status_code == 200, describe(second)
        assert second.raw.read(FIRST) == blob.data[:FIRST]
        # A range within what has arrived is answered while the upstream still holds the rest.
        ranged = _session().get(url, headers={"Range": "bytes=100-199"}, timeout=(5, READ_TIMEOUT))
        assert ranged.status_code == 206, describe(ranged)
        assert ranged.content == blob.data[100:200]
        assert len(proxy.blob_gets(blob.digest)) == 1, proxy.requests
        full_gets = [r for r in proxy.blob_gets(blob.digest) if r.status == 200]
        assert len(full_gets) == 1, proxy.requests

        proxy.release()
        assert head_first + first.raw.read() == blob.data
        rest = second.raw.read()
        assert len(rest) + FIRST == blob.size and blob.data.endswith(rest)
    finally:
        proxy.release()
        first.close()
        second.close()
    assert _session().get(url).content == blob.data
    assert len([r for r in proxy.blob_gets(blob.digest) if r.status == 200]) == 1, proxy.requests


def test_redirects_to_blob_storage_are_followed(
    mirror_via_proxy: RegistryEndpoint, proxy: FaultProxy, skopeo: Skopeo, tmp_path: Path
) -> None:
    """The upstream answers every blob GET with 307 to storage elsewhere: the pull still works."""
    proxy.set(Mode.REDIRECT)
    out = tmp_path / "out"
    source = f"docker://{mirror_via_proxy.ref('docker.io/library/app:v1')}"
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false", source, f"dir:{out}")
    assert_dir_holds(out, APP)
    redirected = [r for r in proxy.requests if r.status == 307]
    from_storage = [r for r in proxy.requests if r.target.startswith(STORAGE_PREFIX)]
    assert redirected and from_storage, proxy.requests
    assert all(r.status == 200 for r in from_storage), from_storage


def _hang_up_mid_blob(mirror: RegistryEndpoint, path: str, expected: bytes) -> None:
    """GET `path` on a raw socket, read the first bytes, then reset the connection.

    A raw socket (SO_LINGER 0 sends an RST on close) makes the hang-up certain, where an HTTP
    library might keep the connection for reuse.
    """
    with socket.create_connection((mirror.host, mirror.port), timeout=READ_TIMEOUT) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {mirror.hostport}\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < FIRST:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed early: {received[:300]!r}"
            received += chunk
        head, body = received.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert expected.startswith(body)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_a_client_that_disconnects_does_not_cancel_the_fill(
    mirror_via_proxy: RegistryEndpoint, upstream: Upstream, proxy: FaultProxy
) -> None:
    """The fill is shielded from the client: it completes and caches after the client is gone.

    The client hangs up while the upstream holds the second half. Then the proxy is released
    (the fill in flight completes) and switched to failing: a later GET can only succeed from
    the fill that the disconnected client started.
    """
    blob = patterned_blob(8 * 1024 * 1024, seed="disconnect")
    upstream.push_blob("library/gone", blob)
    path = f"/v2/docker.io/library/gone/blobs/{blob.digest}"
    proxy.set(Mode.STALL, only_digest=blob.digest)

    _hang_up_mid_blob(mirror_via_proxy, path, blob.data)

    proxy.set(Mode.FAIL, status=503)
    proxy.release()
    later = _session().get(f"{mirror_via_proxy.url}{path}", timeout=30)
    assert later.status_code == 200, describe(later, "the fill died with its client")
    assert later.content == blob.data
    assert len([r for r in proxy.blob_gets(blob.digest) if r.status == 200]) == 1, proxy.requests


def test_a_client_hanging_up_mid_blob_is_not_a_server_error(
    mirror_via_proxy: RegistryEndpoint, upstream: Upstream, proxy: FaultProxy
) -> None:
    """Clients hang up all the time (a cancelled pull, a timeout): that is no server ERROR.

    ocireg's log must not carry a traceback for it, or real failures drown in the noise.
    """
    blob = patterned_blob(8 * 1024 * 1024, seed="hang-up")
    upstream.push_blob("library/hangup", blob)
    path = f"/v2/docker.io/library/hangup/blobs/{blob.digest}"
    proxy.set(Mode.STALL, only_digest=blob.digest)

    _hang_up_mid_blob(mirror_via_proxy, path, blob.data)
    proxy.release()
    # The fill completing is the sign that the server is done with the hung-up response too.
    done = _session().get(f"{mirror_via_proxy.url}{path}", timeout=30)
    assert done.status_code == 200 and done.content == blob.data, describe(done)

    log = mirror_via_proxy.process.log_text()
    assert "Traceback" not in log, mirror_via_proxy.process.log_tail(60)
