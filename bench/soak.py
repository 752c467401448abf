#!/usr/bin/env python3
"""Soak ocireg: minutes of mixed pushes, pulls, range GETs and mirror fills over 500 connections.

    python3 bench/soak.py               # 10 minutes
    python3 bench/soak.py --minutes 1   # smoke run

A long run finds what a test cannot: memory or descriptors that grow with traffic, errors that
show only under sustained concurrency. It starts ocireg from this checkout (as a mirror of a
local `docker-registry` seeded with blobs) on free 127.0.0.1 ports, runs `--connections`
workers until the time is up, and prints (and writes to bench/out/) a Markdown table: requests
and errors per kind (expect 0 errors), and the server's RSS and open descriptors at start and
end (expect them flat). Exits non-zero when any request failed. Standard library and aiohttp
only; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from ocibench import client, servers, tools  # noqa: E402
from ocibench.procs import BenchError, Server  # noqa: E402

KINDS = ("push", "pull", "range", "fill")
WEIGHTS = (2, 4, 4, 1)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
UPSTREAM_REPO = "library/soak"
LOCAL_REPO = "soak/app"
REQUEST_TIMEOUT = 120.0


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="how long the load runs (default 10)")
    p.add_argument("--connections", type=int, default=500, help="concurrent workers and connections (default 500)")
    p.add_argument("--blob-kib", type=int, default=256, help="size of pushed and mirrored blobs (default 256)")
    p.add_argument("--upstream-blobs", type=int, default=0,
                   help="blobs seeded upstream for fills (default 40 per minute)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the workers' choices")
    p.add_argument("--python", help="interpreter for ocireg (default: .venv, then this one)")
    p.add_argument("--output", type=Path, help="report file (default bench/out/soak-<time>.md)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (stores and logs)")
    return p.parse_args(argv)


# -- what the server looks like -----------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_mb: float
    fds: int
    requests: int


def sample(server: Server, started: float, requests: int) -> Sample:
    rss_mb = server.status_kb("VmRSS") * 1024 / 1e6
    return Sample(time.monotonic() - started, rss_mb, len(os.listdir(f"/proc/{server.pid}/fd")), requests)


# -- the load -----------------------------------------------------------------------------------


@dataclass
class Tally:
    done: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def fail(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < 10:
            self.examples.append(f"{kind}: {what}")

    @property
    def total(self) -> int:
        return sum(self.done.values()) + sum(self.errors.values())


@dataclass
class Content:
    """What the workers know exists: pushed (tag, layer) pairs and upstream blobs not yet filled."""

    pushed: list[tuple[str, bytes]]
    upstream: list[bytes]
    next_fill: int = 0


class Soak:
    def __init__(self, base: str, content: Content, blob_size: int, tally: Tally) -> None:
        import aiohttp

        self.failures = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
        self.base = base
        self.content = content
        self.blob_size = blob_size
        self.tally = tally
        self.counter = 0

    async def run(self, connections: int, seconds: float, seed: int) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        deadline = time.monotonic() + seconds
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
            workers = [self.worker(session, random.Random(seed * 100003 + i), deadline) for i in range(connections)]
            await asyncio.gather(*workers)

    async def worker(self, session: aiohttp.ClientSession, rng: random.Random, deadline: float) -> None:
        while time.monotonic() < deadline:
            kind = rng.choices(KINDS, WEIGHTS)[0]
            try:
                problem = await getattr(self, kind)(session, rng)
            except self.failures as error:
                problem = f"{type(error).__name__}: {error}"
            if problem:
                self.tally.fail(kind, problem)
            else:
                self.tally.done[kind] += 1

    async def push(self, session: aiohttp.ClientSession, rng: random.Random) -> str | None:
        """POST + PUT ?digest= of a new layer and a config, then the manifest under a new tag."""
        self.counter += 1
        tag = f"t{self.counter}"
        layer = rng.randbytes(self.blob_size)
        config = json.dumps({"soak": tag}).encode()
        for data in (layer, config):
            problem = await self._push_blob(session, data)
            if problem:
                return problem
        manifest = client.image_manifest(config, client.sha256(layer), len(layer))
        async with session.put(f"{self.base}/v2/{LOCAL_REPO}/manifests/{tag}", data=manifest,
                               headers={"Content-Type": OCI_MANIFEST}) as reply:
            await reply.read()
            if reply.status != 201:
                return f"PUT manifest {tag}: {reply.status}"
        self.content.pushed.append((tag, layer))
        return None

    async def _push_blob(self, session: aiohttp.ClientSession, data: bytes) -> str | None:
        digest = client.sha256(data)
        async with session.post(f"{self.base}/v2/{LOCAL_REPO}/blobs/uploads/") as started:
            await started.read()
            if started.status != 202:
                return f"POST upload: {started.status}"
            location = started.headers["Location"]
        async with session.put(f"{self.base}{location}?digest={digest}", data=data,
                               headers={"Content-Type": "application/octet-stream"}) as done:
            await done.read()
            return None if done.status == 201 else f"PUT upload {digest}: {done.status}"

    async def pull(self, session: aiohttp.ClientSession, rng: random.Random) -> str | None:
        """A tag's manifest, then its layer, byte-exact."""
        tag, layer = rng.choice(self.content.pushed)
        async with session.get(f"{self.base}/v2/{LOCAL_REPO}/manifests/{tag}",
                               headers={"Accept": client.MANIFEST_ACCEPT}) as reply:
            body = await reply.read()
            if reply.status != 200:
                return f"GET manifest {tag}: {reply.status}"
        digest = json.loads(body)["layers"][0]["digest"]
        async with session.get(f"{self.base}/v2/{LOCAL_REPO}/blobs/{digest}") as blob:
            data = await blob.read()
            return None if blob.status == 200 and data == layer else f"GET blob {digest}: {blob.status}"

    async def range(self, session: aiohttp.ClientSession, rng: random.Random) -> str | None:
        """One range of a pushed layer: 206 with exactly those bytes."""
        _, layer = rng.choice(self.content.pushed)
        start = rng.randrange(len(layer))
        end = min(len(layer) - 1, start + rng.randrange(1, 65536))
        url = f"{self.base}/v2/{LOCAL_REPO}/blobs/{client.sha256(layer)}"
        async with session.get(url, headers={"Range": f"bytes={start}-{end}"}) as reply:
            data = await reply.read()
            if reply.status != 206 or data != layer[start:end + 1]:
                return f"GET range {start}-{end}: {reply.status}, {len(data)} bytes"
        return None

    async def fill(self, session: aiohttp.ClientSession, rng: random.Random) -> str | None:
        """The next uncached upstream blob through the mirror (a fill), or a random cached one."""
        content = self.content
        if content.next_fill < len(content.upstream):
            data = content.upstream[content.next_fill]
            content.next_fill += 1
        else:
            data = rng.choice(content.upstream)
        digest = client.sha256(data)
        async with session.get(f"{self.base}/v2/docker.io/{UPSTREAM_REPO}/blobs/{digest}") as reply:
            got = await reply.read()
            return None if reply.status == 200 and got == data else f"GET fill {digest}: {reply.status}"


async def run_load(server: Server, soak: Soak, args: argparse.Namespace, samples: list[Sample]) -> None:
    """The workers, and a sampler of the server every tenth of the run."""
    started = time.monotonic()
    seconds = args.minutes * 60
    load = asyncio.ensure_future(soak.run(args.connections, seconds, args.seed))
    while not load.done():
        await asyncio.wait([load], timeout=max(seconds / 10, 1.0))
        if server.alive():
            samples.append(sample(server, started, soak.tally.total))
    await load


# -- setup, report ------------------------------------------------------------------------------


def seed_upstream(upstream: Server, count: int, size: int, rng: random.Random) -> list[bytes]:
    blobs = [rng.randbytes(size) for _ in range(count)]
    for data in blobs:
        client.push_blob(upstream.port, UPSTREAM_REPO, client.sha256(data), data)
    return blobs


def report(args: argparse.Namespace, tally: Tally, samples: list[Sample], idle: Sample, elapsed: float,
           fills: int) -> str:
    first, last = samples[0], samples[-1]
    lines = [
        f"# ocireg soak: {args.minutes:g} min, {args.connections} connections, {args.blob_kib} KiB blobs",
        "",
        "| kind | requests | errors |",
        "|---|---:|---:|",
        *(f"| {kind} | {tally.done[kind]} | {tally.errors[kind]} |" for kind in KINDS),
        f"| **all** | {sum(tally.done.values())} ({sum(tally.done.values()) / elapsed:.0f}/s) "
        f"| {sum(tally.errors.values())} |",
        "",
        f"Mirror fills of uncached blobs: {fills}; the other `fill` requests pulled cached mirror content.",
        "",
        "| server | start | end of load | idle after | max |",
        "|---|---:|---:|---:|---:|",
        f"| RSS (MB) | {first.rss_mb:.1f} | {last.rss_mb:.1f} | {idle.rss_mb:.1f} "
        f"| {max(s.rss_mb for s in samples):.1f} |",
        f"| open descriptors | {first.fds} | {last.fds} | {idle.fds} | {max(s.fds for s in samples)} |",
        "",
        "Samples (s, RSS MB, descriptors, operations so far): "
        + ", ".join(f"{s.seconds:.0f}/{s.rss_mb:.0f}/{s.fds}/{s.requests}" for s in samples),
    ]
    if tally.examples:
        lines += ["", "First errors:", "", *(f"- `{e}`" for e in tally.examples)]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    args = parse(argv)
    python = tools.ocireg_python(REPO, args.python)
    try:
        import aiohttp  # noqa: F401
    except ImportError:  # the load runs on aiohttp too: use the interpreter that has it
        os.execv(python, [python, __file__, *argv])
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    binary = shutil.which("docker-registry")
    if binary is None:
        raise BenchError("docker-registry is not on PATH (apt-get install docker-registry)")
    workdir = Path(tempfile.mkdtemp(prefix="ocireg-soak-"))
    rng = random.Random(args.seed)
    size = args.blob_kib * 1024
    upstream = servers.distribution(binary, workdir / "upstream", workdir / "upstream", workdir / "upstream.log", cpu=1)
    config = servers.ocireg_mirror_config(workdir / "ocireg.toml", upstream.port)
    ocireg = servers.ocireg(python, REPO, workdir / "ocireg-data", workdir / "ocireg.log", cpu=0, config=config)
    ocireg.env = {**ocireg.env, "OCIREG_LOG_ACCESS": "false"}
    try:
        upstream.start()
        count = args.upstream_blobs or max(int(40 * args.minutes), 10)
        print(f"seeding {count} blobs upstream, pushing one image ...", flush=True)
        content = Content([], seed_upstream(upstream, count, size, rng))
        ocireg.start()
        layer = rng.randbytes(size)
        client.push_blob(ocireg.port, LOCAL_REPO, client.sha256(layer), layer)
        config_blob = b'{"soak": "t0"}'
        client.push_blob(ocireg.port, LOCAL_REPO, client.sha256(config_blob), config_blob)
        client.put_manifest(ocireg.port, LOCAL_REPO, "t0",
                            client.image_manifest(config_blob, client.sha256(layer), size), OCI_MANIFEST)
        content.pushed.append(("t0", layer))
        tally = Tally()
        samples = [sample(ocireg, time.monotonic(), 0)]
        print(f"load: {args.minutes:g} min, {args.connections} connections ...", flush=True)
        started = time.monotonic()
        asyncio.run(run_load(ocireg, Soak(ocireg.url, content, size, tally), args, samples))
        elapsed = time.monotonic() - started
        time.sleep(5)  # idle: keep-alive connections closed by the client, buffers released
        idle = sample(ocireg, started, tally.total)
        if not ocireg.alive():
            raise BenchError(f"ocireg died:\n{ocireg.log_tail()}")
    finally:
        ocireg.stop()
        upstream.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text = report(args, tally, samples, idle, elapsed, content.next_fill)
    output = args.output or HERE / "out" / f"soak-{time.strftime('%Y%m%dT%H%M%S')}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text + f"\nwritten to {output}" + (f"; scratch folder {workdir}" if args.keep else ""))
    return 1 if tally.errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (BenchError, subprocess.SubprocessError) as error:
        print(f"soak: {error}", file=sys.stderr)
        sys.exit(2)
