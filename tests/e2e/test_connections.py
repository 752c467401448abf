"""Clients that hold connections without finishing a request: a real `ocireg serve` closes them
after `header_timeout` or `keepalive_timeout`, keeps at most `max_connections` open, and goes on
serving everyone else meanwhile."""

from __future__ import annotations

import http.client
import os
import selectors
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.helpers.images import OCI, build_image, layout_blob, write_oci_layout
from tests.helpers.procs import LOOPBACK, ManagedProcess
from tests.helpers.registries import RegistryEndpoint, ocireg_server
from tests.helpers.skopeo import Skopeo, layout_reference

HALF_HEAD = b"GET /v2/ HTTP/1.1\r\nHost: registry\r\nUser-Agent: stall"
STALLED = 500
CAP = 100


@contextmanager
def _stalled_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections that each send half a request head and then nothing."""
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection((LOOPBACK, port), timeout=10))
            sock.sendall(HALF_HEAD)
            sockets.append(sock)
        yield sockets


def _wait_all_closed(sockets: list[socket.socket], within: float) -> int:
    """How many of `sockets` the server closed (EOF or reset) before `within` seconds passed."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    closed, deadline = 0, time.monotonic() + within
    while closed < len(sockets) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(4096)
            except ConnectionResetError:
                data = b""
            if not data:
                selector.unregister(sock)
                closed += 1
    selector.close()
    return closed


def _wait_for_log(process: ManagedProcess, text: str, within: float) -> None:
    process.wait_until(f"logging {text!r}", lambda: text in process.log_text(), within)


def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_connections_past_the_cap_wait_while_open_ones_are_served(tmp_path: Path) -> None:
    """500 stalled connections against a cap of 100: at most 100 are taken (the rest wait in the
    backlog, holding no descriptor of the server's), and a kept-alive client is answered."""
    with ocireg_server(tmp_path / "ocireg", env={"OCIREG_SERVER_MAX_CONNECTIONS": str(CAP)}) as server:
        kept = http.client.HTTPConnection(LOOPBACK, server.port, timeout=30)
        kept.request("GET", "/v2/")
        kept.getresponse().read()
        with _stalled_connections(server.port, STALLED):
            _wait_for_log(server.process, "server.max_connections cap", within=30)
            assert _open_files(server.process.pid) < CAP + 64, "more connections taken than the cap"
            kept.request("GET", "/v2/")
            answer = kept.getresponse()
            assert answer.status == 200 and answer.read() is not None
        kept.close()


def test_stalled_heads_are_closed_and_others_get_through(tmp_path: Path) -> None:
    """500 half-sent heads against a cap of 100: the 2 s header timeout (not the 5 minute
    keep-alive one) closes each, so the backlog drains and a skopeo pull behind it succeeds."""
    env = {"OCIREG_SERVER_HEADER_TIMEOUT": "2s", "OCIREG_SERVER_KEEPALIVE_TIMEOUT": "5m",
           "OCIREG_SERVER_MAX_CONNECTIONS": str(CAP)}
    skopeo = Skopeo()
    image = build_image(OCI)
    with ocireg_server(tmp_path / "ocireg", env=env) as server:
        layout = write_oci_layout(image, tmp_path / "in")
        skopeo.copy_all(layout_reference(layout, image), f"docker://{server.ref('app')}:v1")
        with _stalled_connections(server.port, STALLED) as stalled:
            out = tmp_path / "out"
            skopeo.copy_all(f"docker://{server.ref('app')}:v1", f"oci:{out}:v1")
            assert all(layout_blob(out, blob.digest) == blob.data for blob in image.blobs())
            assert _wait_all_closed(stalled, within=60) == STALLED


def _served_once(server: RegistryEndpoint) -> socket.socket:
    """A connection that has had one complete request answered and is kept alive."""
    conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=10)
    conn.request("GET", "/v2/")
    response = conn.getresponse()
    response.read()
    assert response.status == 200 and not response.will_close
    assert conn.sock is not None
    return conn.sock


def test_idle_keepalive_connection_is_closed(tmp_path: Path) -> None:
    env = {"OCIREG_SERVER_KEEPALIVE_TIMEOUT": "1s", "OCIREG_SERVER_HEADER_TIMEOUT": "5m"}
    with ocireg_server(tmp_path / "ocireg", env=env) as server, _served_once(server) as sock:
        assert _wait_all_closed([sock], within=30) == 1


def test_half_sent_second_head_is_closed_after_the_header_timeout(tmp_path: Path) -> None:
    env = {"OCIREG_SERVER_KEEPALIVE_TIMEOUT": "5m", "OCIREG_SERVER_HEADER_TIMEOUT": "2s"}
    with ocireg_server(tmp_path / "ocireg", env=env) as server, _served_once(server) as sock:
        sock.sendall(HALF_HEAD)
        assert _wait_all_closed([sock], within=30) == 1


def test_header_timeout_of_zero_means_no_limit(tmp_path: Path) -> None:
    """A client slow to start its request is still answered: 0 turns the clock off."""
    with ocireg_server(tmp_path / "ocireg", env={"OCIREG_SERVER_HEADER_TIMEOUT": "0s"}) as server:
        conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=10)
        conn.connect()
        time.sleep(0.5)
        conn.request("GET", "/v2/")
        response = conn.getresponse()
        assert response.status == 200 and response.read() is not None
        conn.close()
