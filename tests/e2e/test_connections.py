"""Clients that hold connections without finishing a request: a real `ocireg serve` keeps at most
`max_connections` open and goes on serving everyone else meanwhile."""

from __future__ import annotations

import http.client
import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.helpers.procs import LOOPBACK, ManagedProcess
from tests.helpers.registries import ocireg_server

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
