"""A client that hangs up mid-upload is no server error: no traceback, no 500 in the access log,
and the session it was writing is free for the next request."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import time
from pathlib import Path

import pytest
import requests

from tests.helpers.registries import RegistryEndpoint, ocireg_server

BOUND = 20.0


def _hang_up_mid_body(server: RegistryEndpoint, location: str, sent: bytes, reset: bool) -> None:
    """Headers promising 10 MiB, part of the body, then a reset (SO_LINGER 0) or a plain close."""
    with socket.create_connection((server.host, server.port)) as sock:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(f"PATCH {location} HTTP/1.1\r\nHost: {server.hostport}\r\n"
                     f"Content-Length: {10 * 1024 * 1024}\r\nContent-Type: application/octet-stream\r\n\r\n".encode())
        sock.sendall(sent)
        time.sleep(0.2)  # let the server start reading before the hang-up


def _log_after(server: RegistryEndpoint, method: str, path: str) -> str:
    """The server's log once it has access-logged `method path` (bounded wait)."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        text = server.process.log_path.read_text(errors="replace")
        if f'"{method} {path} ' in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{method} {path} never logged:\n{server.process.log_path.read_text()[-3000:]}")


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "close"])
def test_hang_up_mid_upload_is_not_a_server_error(tmp_path: Path, reset: bool) -> None:
    http = requests.Session()
    http.trust_env = False
    with ocireg_server(tmp_path) as server:
        location = http.post(f"{server.url}/v2/app/blobs/uploads/").headers["Location"]
        sent = os.urandom(3 * 1024 * 1024)
        _hang_up_mid_body(server, location, sent, reset)
        log = _log_after(server, "PATCH", location)
        assert "Traceback" not in log and "Error handling request" not in log, log
        access = [line for line in log.splitlines() if f'"PATCH {location} ' in line]
        assert access and all('" 500 ' not in line for line in access), access
        kept = int(http.get(f"{server.url}{location}").headers["Range"].split("-")[1]) + 1
        data = os.urandom(1000)
        digest = "sha256:" + hashlib.sha256(sent[:kept] + data if kept > 1 else data).hexdigest()
        done = http.put(f"{server.url}{location}?digest={digest}", data=data)
        assert done.status_code == 201, done.text
