"""The measurements. Inside each repetition every server runs the same scenario one after the
other (the order rotates between repetitions), so drift of a shared machine hits all of them.

Servers run on `server_cpu`, this process and its load generators on `client_cpu`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from . import client, loadgen, servers
from .procs import BenchError, CpuMeter, Server, write_probe
from .results import Results, median

T = TypeVar("T")
GB = 1e9
MB = 1e6
REPO = "bench/big"              # the repository pushed into both registries
UPSTREAM_REPO = "library/big"   # the same blob on the upstream, as docker.io/library/big
MIRROR_NS = "docker.io"


@dataclass
class Settings:
    reps: int = 3
    duration: float = 10.0          # seconds per wrk/ab run
    blob_size: int = 1 << 30
    small_connections: int = 64
    range_connections: int = 16
    range_size: int = 1 << 20
    big_concurrency: int = 8
    get_samples: int = 5            # big GETs per repetition and server (median; CPU over all)
    concurrent_samples: int = 3     # rounds of concurrent GETs per repetition and server
    pull_samples: int = 3           # direct and warm pulls per repetition (median)
    cold_concurrency: int = 16
    small_push_size: int = 4 << 20
    small_pushes: int = 10          # 4 MiB pushes per repetition and server
    server_cpu: int = 0
    client_cpu: int = 1
    upstream_cpu: int = 0
    phases: tuple[str, ...] = ("get", "small", "range", "push", "mirror")
    profile_dir: Path | None = None  # py-spy record of ocireg in each scenario (perturbs numbers)
    py_spy: str | None = None


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rotate(items: list[T], rep: int) -> list[T]:
    k = rep % len(items)
    return items[k:] + items[:k]


@dataclass
class Blob:
    path: Path
    digest: str
    size: int

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]


def make_blob(path: Path, size: int, seed: bytes = b"") -> Blob:
    """`size` random bytes, hashed as they are written."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        first = True
        while left:
            chunk = os.urandom(min(16 << 20, left))
            if first and seed:
                chunk = seed[:len(chunk)] + chunk[len(seed):]
                first = False
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
    return Blob(path, "sha256:" + h.hexdigest(), size)


@dataclass
class Bench:
    settings: Settings
    tools: dict[str, str]
    python: str
    repo: Path
    workdir: Path
    results: Results
    big: Blob | None = None
    manifest_digest: str = ""
    manifest_body: bytes = b""
    running: dict[str, Server] = field(default_factory=dict)  # ocireg, docker-registry, nginx

    # ------------------------------------------------------------------------------ servers

    def start_ocireg(self, data: Path, name: str = servers.OCIREG, config: Path | None = None,
                     cpu: int | None = None) -> Server:
        s = self.settings
        server = servers.ocireg(self.python, self.repo, data, self.workdir / "logs" / f"{name}.log",
                                s.server_cpu if cpu is None else cpu, config=config, name=name)
        return server.start()

    def start_distribution(self, data: Path, name: str = servers.DISTRIBUTION, proxy_of: int | None = None,
                           cpu: int | None = None) -> Server:
        s = self.settings
        server = servers.distribution(self.tools["docker-registry"], data, self.workdir / "conf",
                                      self.workdir / "logs" / f"{name}.log",
                                      s.server_cpu if cpu is None else cpu, proxy_of=proxy_of, name=name)
        return server.start()

    def stop_all(self) -> None:
        for server in self.running.values():
            server.stop()
        self.running.clear()

    @contextmanager
    def profiled(self, server: Server, label: str) -> Iterator[None]:
        """py-spy record of ocireg while the block runs, when --profile is on."""
        s = self.settings
        if s.profile_dir is None or s.py_spy is None or not server.name.startswith(servers.OCIREG):
            yield
            return
        import subprocess
        s.profile_dir.mkdir(parents=True, exist_ok=True)
        stem = s.profile_dir / re.sub(r"[^\w.-]+", "_", f"{server.name}-{label}")
        with open(f"{stem}.log", "w") as errors:
            proc = subprocess.Popen([s.py_spy, "record", "--pid", str(server.pid), "--nonblocking", "--threads",
                                     "--rate", "200", "--format", "raw", "--output", f"{stem}.txt"],
                                    stdout=subprocess.DEVNULL, stderr=errors)
        time.sleep(1.0)  # let it attach
        try:
            yield
        finally:
            proc.send_signal(2)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    # ------------------------------------------------------------------------------ setup

    def setup(self) -> None:
        s = self.settings
        log(f"making a {s.blob_size / 2**20:.0f} MiB random blob")
        self.big = big = make_blob(self.workdir / "big.blob", s.blob_size)
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        self.manifest_body = client.image_manifest(config, big.digest, big.size)
        self.manifest_digest = client.sha256(self.manifest_body)
        ocireg = self.start_ocireg(self.workdir / "ocireg-data")
        dist = self.start_distribution(self.workdir / "distribution-data")
        self.running = {servers.OCIREG: ocireg, servers.DISTRIBUTION: dist}
        for server in (ocireg, dist):
            log(f"pushing the blob and an image manifest into {server.name} through the OCI API")
            client.push_blob(server.port, REPO, big.digest, path=big.path)
            client.push_blob(server.port, REPO, client.sha256(config), data=config)
            got = client.put_manifest(server.port, REPO, "v1", self.manifest_body,
                                      "application/vnd.oci.image.manifest.v1+json")
            if got and got != self.manifest_digest:
                raise BenchError(f"{server.name} gave the manifest digest {got}, not {self.manifest_digest}")
        store = self.workdir / "ocireg-data"
        blob_file = store / "blobs" / "sha256" / big.hex[:2] / big.hex / "data"
        mhex = self.manifest_digest.split(":", 1)[1]
        manifest_file = store / "blobs" / "sha256" / mhex[:2] / mhex / "data"
        for f, size in ((blob_file, big.size), (manifest_file, len(self.manifest_body))):
            if not f.is_file() or f.stat().st_size != size:
                raise BenchError(f"ocireg's store has no {f} of {size} bytes (layout changed?)")
        mtype = "application/vnd.oci.image.manifest.v1+json"
        files = {
            f"/v2/{REPO}/blobs/{big.digest}": (blob_file, "application/octet-stream"),
            f"/v2/{REPO}/manifests/v1": (manifest_file, mtype),
            f"/v2/{REPO}/manifests/{self.manifest_digest}": (manifest_file, mtype),
        }
        nginx = servers.nginx(self.tools["nginx"], self.workdir / "nginx", self.workdir / "logs" / "nginx.log",
                              s.server_cpu, files)
        self.running[servers.NGINX] = nginx.start()
        log("servers up: " + ", ".join(f"{n} :{srv.port} pid {srv.pid}" for n, srv in self.running.items()))

    @property
    def blob_path(self) -> str:
        assert self.big is not None
        return f"/v2/{REPO}/blobs/{self.big.digest}"

    # ------------------------------------------------------------------------------ big GETs

    def phase_get(self) -> None:
        s, r, big = self.settings, self.results, self.big
        assert big is not None
        scen = "get"
        names = list(self.running)
        for name in names:
            server = self.running[name]
            reset = server.reset_peak_rss()
            if not reset:
                r.note(scen, f"could not reset {name}'s VmHWM: its peak includes the pushes")
            g = client.fast_get(server.port, self.blob_path, verify=big.digest)
            if g.status != 200 or not g.digest_ok:
                raise BenchError(f"{name}: GET of the blob gave {g.status}, digest ok: {g.digest_ok}")
        for rep in range(s.reps):
            for name in rotate(names, rep):
                server = self.running[name]
                log(f"GET {big.size / 2**20:.0f} MiB from {name}, {s.get_samples} times (rep {rep + 1})")
                with self.profiled(server, f"get-rep{rep}"), CpuMeter(server) as cpu:
                    t0 = client_cpu()
                    gets = [client.fast_get(server.port, self.blob_path) for _ in range(s.get_samples)]
                    busy = (client_cpu() - t0) / sum(g.seconds for g in gets)
                if any(g.status != 200 for g in gets):
                    raise BenchError(f"{name}: GET of the blob gave {[g.status for g in gets]}")
                r.add(scen, "throughput_gbs", name, median([g.nbytes / g.seconds / GB for g in gets]))
                r.add(scen, "ttfb_ms", name, median([g.ttfb * 1e3 for g in gets]))
                r.add(scen, "cpu_s_per_gb", name, cpu.seconds / (sum(g.nbytes for g in gets) / GB))
                r.add(scen, "client_busy", name, busy)
                n = s.big_concurrency
                log(f"{n} concurrent GETs from {name}, {s.concurrent_samples} times (rep {rep + 1})")
                walls, total = [], 0
                with self.profiled(server, f"get{n}-rep{rep}"), CpuMeter(server) as cpu:
                    t0 = client_cpu()
                    for _ in range(s.concurrent_samples):
                        wall, gets = client.concurrent_gets(n, server.port, self.blob_path)
                        if any(g.status != 200 for g in gets):
                            raise BenchError(f"{name}: concurrent GETs gave {[g.status for g in gets]}")
                        walls.append((wall, sum(g.nbytes for g in gets)))
                    busy = (client_cpu() - t0) / sum(w for w, _ in walls)
                total = sum(b for _, b in walls)
                r.add(scen, "concurrent_gbs", name, median([b / w / GB for w, b in walls]))
                r.add(scen, "concurrent_cpu_s_per_gb", name, cpu.seconds / (total / GB))
                r.add(scen, "concurrent_client_busy", name, busy)
        for name in names:
            r.add(scen, "peak_rss_mb", name, self.running[name].peak_rss_mb())

    # ------------------------------------------------------------------------------ small requests

    def small_endpoints(self) -> list[tuple[str, str, str, dict[str, str]]]:
        """(scenario, tool, path, headers)"""
        accept = {"Accept": client.MANIFEST_ACCEPT}
        return [
            ("manifest_tag", "wrk", f"/v2/{REPO}/manifests/v1", accept),
            ("manifest_digest", "wrk", f"/v2/{REPO}/manifests/{self.manifest_digest}", accept),
            ("blob_head", "ab", self.blob_path, {}),
            ("v2_base", "wrk", "/v2/", {}),
        ]

    def phase_small(self) -> None:
        s = self.settings
        names = list(self.running)
        for scen, tool, path, headers in self.small_endpoints():
            for name in names:  # every server answers it right before it is loaded
                server = self.running[name]
                method = "HEAD" if tool == "ab" else "GET"
                reply = client.request(server.port, method, path, headers=headers)
                if reply.status != 200:
                    raise BenchError(f"{name}: {method} {path}: {reply.status} {reply.body[:200]!r}")
                if scen.startswith("manifest") and reply.body != self.manifest_body:
                    raise BenchError(f"{name}: {path} answered another body")
            for rep in range(s.reps):
                for name in rotate(names, rep):
                    server = self.running[name]
                    log(f"{scen}: {tool} {s.small_connections} connections {s.duration:g}s on {name} (rep {rep + 1})")
                    with self.profiled(server, f"{scen}-rep{rep}"):
                        if tool == "ab":
                            load = loadgen.ab_head(self.tools, s.client_cpu, server, path, s.small_connections,
                                                   s.duration)
                        else:
                            load = loadgen.wrk(self.tools, s.client_cpu, server, path, s.small_connections,
                                               s.duration, headers=headers)
                    self._record_load(scen, name, load)

    def _record_load(self, scen: str, name: str, load: loadgen.Load) -> None:
        r = self.results
        r.add(scen, "rps", name, load.rps)
        r.add(scen, "p99_ms", name, load.p99_ms)
        r.add(scen, "cpu_us_per_req", name, load.cpu_us_per_request)
        r.add(scen, "client_busy", name, load.client_busy)
        if load.errors:
            r.note(scen, f"{name}: {load.errors}")

    # ------------------------------------------------------------------------------ Range GETs

    def phase_range(self) -> None:
        s, r, big = self.settings, self.results, self.big
        assert big is not None
        scen = "range"
        with open(big.path, "rb") as f:
            offset = big.size // 3 + 7
            f.seek(offset)
            expect = f.read(s.range_size)
        names = list(self.running)
        for name in names:
            server = self.running[name]
            reply = client.request(server.port, "GET", self.blob_path,
                                   headers={"Range": f"bytes={offset}-{offset + s.range_size - 1}"})
            if reply.status != 206 or reply.body != expect:
                raise BenchError(f"{name}: Range GET gave {reply.status}, {len(reply.body)} bytes"
                                 f"{'' if reply.body == expect else ', not the expected ones'}")
        for rep in range(s.reps):
            for name in rotate(names, rep):
                server = self.running[name]
                log(f"random {s.range_size >> 20} MiB Range GETs, {s.range_connections} connections "
                    f"{s.duration:g}s on {name} (rep {rep + 1})")
                with self.profiled(server, f"range-rep{rep}"):
                    load = loadgen.wrk_ranges(self.tools, s.client_cpu, server, self.blob_path, big.size,
                                              s.range_size, s.range_connections, s.duration)
                self._record_load(scen, name, load)
                r.add(scen, "cpu_s_per_gb", name, load.server_cpu / (load.requests * s.range_size / GB))

    # ------------------------------------------------------------------------------ pushes

    def phase_push(self) -> None:
        s, r, big = self.settings, self.results, self.big
        assert big is not None
        names = [n for n in (servers.OCIREG, servers.DISTRIBUTION) if n in self.running]
        for rep in range(s.reps):
            # A blob of its own per repetition: a registry that already holds a digest may skip work.
            variant = self.workdir / f"push-{rep}.blob"
            log(f"making push blob {rep + 1} ({big.size / 2**20:.0f} MiB)")
            blob = make_blob(variant, big.size, seed=os.urandom(64))
            os.sync()
            seconds, cpu_s, fsync_s = write_probe(self.workdir, big.size)
            r.add("push", "mbs", "new file", big.size / (seconds + fsync_s) / MB)
            r.add("push", "cpu_s_per_gb", "new file", cpu_s / (big.size / GB))
            smalls = [os.urandom(s.small_push_size) for _ in range(s.small_pushes)]
            small_digests = [client.sha256(b) for b in smalls]
            for name in rotate(names, rep):
                server = self.running[name]
                os.sync()  # the previous push's dirty pages are not this one's cost
                log(f"push {big.size / 2**20:.0f} MiB to {name} (rep {rep + 1})")
                with self.profiled(server, f"push-rep{rep}"), CpuMeter(server) as cpu:
                    seconds = client.push_blob(server.port, "bench/push", blob.digest, path=blob.path)
                r.add("push", "mbs", name, blob.size / seconds / MB)
                r.add("push", "cpu_s_per_gb", name, cpu.seconds / (blob.size / GB))
                os.sync()
                times = [client.push_blob(server.port, "bench/push-small", d, data=b) * 1e3
                         for b, d in zip(smalls, small_digests)]
                r.add("push_small", "ms", name, median(times))
            variant.unlink()
            (self.workdir / "write-probe").unlink()

    # ------------------------------------------------------------------------------ mirror

    def phase_mirror(self) -> None:
        """ocireg as a mirror of Distribution, and Distribution as a proxy of the same upstream."""
        s, r, big = self.settings, self.results, self.big
        assert big is not None
        upstream = self.running.get(servers.DISTRIBUTION)
        if upstream is None:
            raise BenchError("the mirror phase needs the docker-registry upstream")
        # The other servers are idle from here on; they stay up but take no CPU.
        if not client.mount_blob(upstream.port, UPSTREAM_REPO, REPO, big.digest):
            client.push_blob(upstream.port, UPSTREAM_REPO, big.digest, path=big.path)
        direct = f"/v2/{UPSTREAM_REPO}/blobs/{big.digest}"
        g = client.fast_get(upstream.port, direct, verify=big.digest)
        if g.status != 200 or not g.digest_ok:
            raise BenchError(f"upstream GET {direct}: {g.status}, digest ok {g.digest_ok}")
        (self.workdir / "conf").mkdir(parents=True, exist_ok=True)
        conf = servers.ocireg_mirror_config(self.workdir / "conf" / "mirror.toml", upstream.port)
        n = s.cold_concurrency
        kinds = [
            ("ocireg", f"/v2/{MIRROR_NS}/{UPSTREAM_REPO}/blobs/{big.digest}",
             lambda data: self.start_ocireg(data, name="ocireg-mirror", config=conf),
             lambda data: data / "blobs" / "sha256" / big.hex[:2] / big.hex / "data"),
            ("docker-registry", direct,
             lambda data: self.start_distribution(data, name="docker-registry-proxy", proxy_of=upstream.port),
             lambda data: data / "docker" / "registry" / "v2" / "blobs" / "sha256" / big.hex[:2] / big.hex / "data"),
        ]
        for rep in range(s.reps):
            log(f"direct pull from the upstream, {s.pull_samples} times (rep {rep + 1})")
            seconds = median([client.fast_get(upstream.port, direct).seconds for _ in range(s.pull_samples)])
            r.add("mirror_cold", "seconds", "direct", seconds)
            r.add("mirror_warm", "seconds", "direct", seconds)
            for kind, path, start, cached in rotate(kinds, rep):
                self._mirror_rep(rep, kind, path, start, cached, upstream)
            log(f"{n} concurrent direct pulls from the upstream (rep {rep + 1})")
            wall, _ = client.concurrent_gets(n, upstream.port, direct)
            r.add("mirror_cold16", "seconds", "direct", wall)

    def _mirror_rep(self, rep: int, kind: str, path: str, start: Callable[[Path], Server],
                    cached: Callable[[Path], Path], upstream: Server) -> None:
        s, r, big = self.settings, self.results, self.big
        assert big is not None
        n = s.cold_concurrency
        for phase in ("single", "concurrent"):
            data = self.workdir / f"mirror-{kind}-{rep}-{phase}"
            server = start(data)
            try:
                offset = upstream.log_size()
                label = f"{phase} cold pull through {kind}"
                log(f"{label} (rep {rep + 1})")
                with self.profiled(server, f"mirror-{phase}-rep{rep}"), CpuMeter(server) as cpu:
                    if phase == "single":
                        g = client.fast_get(server.port, path)
                        wall, gets = g.seconds, [g]
                    else:
                        wall, gets = client.concurrent_gets(n, server.port, path)
                bad = [g for g in gets if g.status != 200 or g.nbytes != big.size]
                if bad:
                    raise BenchError(f"{label}: {len(bad)} pulls failed ({bad[0].status}, {bad[0].nbytes} bytes)")
                self._wait_file(cached(data), big.size, label)
                time.sleep(0.5)  # the upstream logs a request when it has sent the last byte
                gets_up, heads_up = count_upstream(upstream.log_since(offset), big.digest)
                scen = "mirror_cold" if phase == "single" else "mirror_cold16"
                r.add(scen, "seconds", kind, wall)
                r.add(scen, "upstream_gets", kind, gets_up)
                r.add(scen, "upstream_heads", kind, heads_up)
                r.add(scen, "peak_rss_mb", kind, server.peak_rss_mb())
                r.add(scen, "cpu_s_per_gb", kind, cpu.seconds / (big.size * len(gets) / GB))
                if phase == "single":
                    log(f"warm pull through {kind}, {s.pull_samples} times (rep {rep + 1})")
                    with self.profiled(server, f"mirror-warm-rep{rep}"):
                        warm = [client.fast_get(server.port, path) for _ in range(s.pull_samples)]
                    for g in warm:
                        if g.status != 200 or g.nbytes != big.size:
                            raise BenchError(f"warm pull through {kind}: {g.status}, {g.nbytes} bytes")
                    r.add("mirror_warm", "seconds", kind, median([g.seconds for g in warm]))
            finally:
                server.stop()
                shutil.rmtree(data, ignore_errors=True)

    def _wait_file(self, path: Path, size: int, label: str, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if path.stat().st_size == size:
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        raise BenchError(f"{label}: the blob never reached the cache at {path}")


_UPSTREAM_LINE = re.compile(r'"(GET|HEAD) (/v2/[^ ?"]+)[^"]* HTTP/1\.[01]" (\d{3})')


def count_upstream(log_text: str, digest: str) -> tuple[int, int]:
    """GETs and HEADs of the blob in the upstream's access log text."""
    gets = heads = 0
    for method, path, _status in _UPSTREAM_LINE.findall(log_text):
        if path.endswith(f"/blobs/{digest}"):
            if method == "GET":
                gets += 1
            else:
                heads += 1
    return gets, heads


def client_cpu() -> float:
    t = os.times()
    return t.user + t.system
