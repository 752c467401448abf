"""Raw HTTP on loopback: the OCI push flow, and the fast reader for big GETs.

The reader reads with `recv_into` on a preallocated 1 MiB buffer and does nothing else with
the bytes: on this machine it moves as much as curl or a C reader does (see bench/README.md),
and unlike curl it runs N readers in one process with exact timestamps. Every socket operation
has a timeout and every loop ends at a deadline.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .procs import LOOPBACK, BenchError

READ_BUFFER = 1 << 20
SOCKET_TIMEOUT = 60.0
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def request(port: int, method: str, target: str, body: bytes = b"",
            headers: dict[str, str] | None = None, timeout: float = SOCKET_TIMEOUT) -> Reply:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, target, body=body if body or method in ("PUT", "POST", "PATCH") else None,
                     headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def _target(location: str, extra_query: str) -> str:
    """A Location header (absolute for Distribution, relative for ocireg) as a request target."""
    parts = urllib.parse.urlsplit(location)
    query = f"{parts.query}&{extra_query}" if parts.query else extra_query
    return f"{parts.path}?{query}"


def start_upload(port: int, name: str) -> str:
    reply = request(port, "POST", f"/v2/{name}/blobs/uploads/", body=b"",
                    headers={"Content-Length": "0"})
    if reply.status != 202 or "location" not in reply.headers:
        raise BenchError(f"POST upload to {name} on :{port}: {reply.status} {reply.body[:300]!r}")
    return reply.headers["location"]


def push_blob(port: int, name: str, digest: str, data: bytes | None = None,
              path: Path | None = None, timeout: float = 600.0) -> float:
    """POST then PUT ?digest= with the whole body (the file through sendfile); seconds taken."""
    started = time.perf_counter()
    target = _target(start_upload(port, name), "digest=" + urllib.parse.quote(digest))
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        if path is not None:
            size = path.stat().st_size
            conn.putrequest("PUT", target, skip_accept_encoding=True)
            conn.putheader("Content-Type", "application/octet-stream")
            conn.putheader("Content-Length", str(size))
            conn.endheaders()
            with open(path, "rb") as f:
                sent = conn.sock.sendfile(f)
            if sent != size:
                raise BenchError(f"sent {sent} of {size} bytes of {path}")
        else:
            assert data is not None
            conn.request("PUT", target, body=data, headers={"Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    if resp.status != 201:
        raise BenchError(f"PUT blob {digest} to {name} on :{port}: {resp.status} {body[:300]!r}")
    return elapsed


def mount_blob(port: int, name: str, source: str, digest: str) -> bool:
    reply = request(port, "POST", f"/v2/{name}/blobs/uploads/?mount={digest}&from={source}",
                    headers={"Content-Length": "0"})
    if reply.status == 201:
        return True
    if reply.status == 202:  # mount refused: an upload session was opened instead; cancel it
        request(port, "DELETE", _target(reply.headers["location"], "").rstrip("?"))
    return False


def put_manifest(port: int, name: str, reference: str, body: bytes, media_type: str) -> str:
    reply = request(port, "PUT", f"/v2/{name}/manifests/{reference}", body=body,
                    headers={"Content-Type": media_type})
    if reply.status != 201:
        raise BenchError(f"PUT manifest {name}:{reference} on :{port}: {reply.status} {reply.body[:300]!r}")
    return reply.headers.get("docker-content-digest", "")


def image_manifest(config: bytes, layer_digest: str, layer_size: int) -> bytes:
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer_size}],
    }, indent=3).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# ---------------------------------------------------------------------------------- fast reader

@dataclass
class Get:
    status: int
    nbytes: int
    ttfb: float      # connect start -> first response byte, seconds
    seconds: float   # connect start -> last body byte
    start: float     # perf_counter at connect start
    end: float
    digest_ok: bool | None = None


def fast_get(port: int, path: str, headers: dict[str, str] | None = None, verify: str | None = None,
             deadline: float = 600.0) -> Get:
    """One GET on a fresh connection; the body is counted (and hashed only when `verify`)."""
    buf = bytearray(READ_BUFFER)
    view = memoryview(buf)
    hasher = hashlib.sha256() if verify else None
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    req = f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n{extra}Connection: close\r\n\r\n".encode()
    start = time.perf_counter()
    end_by = start + deadline
    with socket.create_connection((LOOPBACK, port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(req)
        head = b""
        ttfb = 0.0
        while b"\r\n\r\n" not in head:
            n = sock.recv_into(view)
            if not ttfb:
                ttfb = time.perf_counter() - start
            if n == 0:
                raise BenchError(f"GET {path} on :{port}: connection closed in the headers: {head[:200]!r}")
            head += bytes(view[:n])
            if b"\r\n\r\n" not in head and (len(head) > 65536 or time.perf_counter() > end_by):
                raise BenchError(f"GET {path} on :{port}: no end of headers")
        head, _, first = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if "chunked" in fields.get("transfer-encoding", ""):
            raise BenchError(f"GET {path} on :{port}: chunked body, the reader wants a Content-Length")
        length = int(fields.get("content-length", "-1"))
        got = len(first)
        if hasher:
            hasher.update(first)
        while length < 0 or got < length:
            n = sock.recv_into(view)
            if n == 0:
                break
            got += n
            if hasher:
                hasher.update(view[:n])
            if time.perf_counter() > end_by:
                raise BenchError(f"GET {path} on :{port}: over the {deadline}s deadline at {got} bytes")
        end = time.perf_counter()
    if 0 <= length != got:
        raise BenchError(f"GET {path} on :{port}: {got} of {length} bytes")
    ok = None if hasher is None else ("sha256:" + hasher.hexdigest()) == verify
    return Get(status, got, ttfb, end - start, start, end, ok)


def concurrent_gets(n: int, port: int, path: str, deadline: float = 900.0) -> tuple[float, list[Get]]:
    """`n` GETs started together (a barrier); wall seconds from the start to the last byte."""
    barrier = threading.Barrier(n + 1, timeout=60)
    results: list[Get | BaseException | None] = [None] * n

    def one(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fast_get(port, path, deadline=deadline)
        except BaseException as err:  # reported below
            results[i] = err

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join(deadline + 60)
    errors = [r for r in results if not isinstance(r, Get)]
    if errors:
        raise BenchError(f"{len(errors)} of {n} concurrent GETs of {path} on :{port} failed: {errors[0]!r}")
    gets = [r for r in results if isinstance(r, Get)]
    return max(g.end for g in gets) - started, gets
