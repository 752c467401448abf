"""A 1 GiB blob pushed and pulled with curl: streamed both ways, never held in memory."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import requests

from tests.helpers.procs import require_binary, run
from tests.helpers.registries import RegistryEndpoint

GIB = 1024 * 1024 * 1024
BLOCK = 1024 * 1024
RSS_LIMIT_KB = 150 * 1024


def _write_big_file(path: Path) -> str:
    """1 GiB of varied (not all-zero) bytes, and its digest."""
    hasher = hashlib.sha256()
    seed = os.urandom(BLOCK)
    with open(path, "wb") as handle:
        for i in range(GIB // BLOCK):
            block = seed[i % 997:] + seed[:i % 997]
            hasher.update(block)
            handle.write(block)
    return "sha256:" + hasher.hexdigest()


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def test_one_gib_blob_round_trip_in_bounded_memory(ocireg: RegistryEndpoint, tmp_path: Path) -> None:
    curl = require_binary("curl")
    source = tmp_path / "big.bin"
    digest = _write_big_file(source)
    session = requests.Session()
    session.trust_env = False
    started = session.post(f"{ocireg.url}/v2/big/blob/blobs/uploads/")
    assert started.status_code == 202
    location = f"{ocireg.url}{started.headers['Location']}?digest={digest}"
    run([curl, "-sS", "--fail-with-body", "-T", str(source), "-H", "Content-Type: application/octet-stream",
         location], timeout=300)
    pulled = hashlib.sha256()
    with session.get(f"{ocireg.url}/v2/big/blob/blobs/{digest}", stream=True) as response:
        assert response.status_code == 200
        assert int(response.headers["Content-Length"]) == GIB
        for chunk in response.iter_content(BLOCK):
            pulled.update(chunk)
    assert "sha256:" + pulled.hexdigest() == digest
    ranged = session.get(f"{ocireg.url}/v2/big/blob/blobs/{digest}", headers={"Range": f"bytes={GIB - 10}-"})
    with open(source, "rb") as handle:
        handle.seek(GIB - 10)
        assert ranged.content == handle.read()
    peak = _peak_rss_kb(ocireg.process.pid)
    print(f"server peak RSS: {peak} KiB")
    assert peak < RSS_LIMIT_KB, f"server peak RSS {peak} KiB"
