"""wrk (GETs, Range GETs) and ab (HEADs: wrk 4.1 waits for a HEAD response's body and hangs),
pinned to the client CPU, bounded by duration and a subprocess timeout, parsed."""

from __future__ import annotations

import re
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .procs import BenchError, CpuMeter, Server, clean_env

HERE = Path(__file__).resolve().parent
RANGE_SCRIPT = HERE / "range.lua"


@dataclass
class Load:
    requests: int
    seconds: float
    rps: float
    p99_ms: float
    server_cpu: float      # server CPU seconds during the run
    client_busy: float     # load generator CPU seconds / wall seconds (1.0 = its core is full)
    errors: str = ""       # non-2xx, socket errors, failed requests: empty when clean

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu / self.requests * 1e6 if self.requests else float("nan")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(argv: list[str], server: Server, duration: float, env: dict[str, str] | None = None) -> tuple[str, float, float, float]:
    before = _children_cpu()
    started = time.perf_counter()
    with CpuMeter(server) as meter:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                             env={**clean_env(), **(env or {})})
    wall = time.perf_counter() - started
    client = _children_cpu() - before
    if out.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {out.returncode}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    if not server.alive():
        raise BenchError(f"{server.name} died under load:\n{server.log_tail()}")
    return out.stdout + out.stderr, meter.seconds, client, wall


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise BenchError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(tools: dict[str, str], cpu: int, server: Server, path: str, connections: int, duration: float,
        headers: dict[str, str] | None = None, script: Path | None = None,
        env: dict[str, str] | None = None) -> Load:
    argv = ["taskset", "-c", str(cpu), tools["wrk"], "-t1", f"-c{connections}", f"-d{duration:g}s",
            "--timeout", "10s", "--latency"]
    for k, v in (headers or {}).items():
        argv += ["-H", f"{k}: {v}"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(server.url + path)
    text, server_cpu, client, wall = _run(argv, server, duration, env)
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    if not (m and rps and p99):
        raise BenchError(f"cannot parse wrk output:\n{text}")
    seconds = float(m.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    errors = []
    if (non2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", text)):
        errors.append(f"{non2xx.group(1)} non-2xx")
    if (sock := re.search(r"Socket errors: (.*)", text)):
        errors.append("socket errors: " + sock.group(1))
    return Load(int(m.group(1)), seconds, float(rps.group(1)), _ms(p99.group(1)), server_cpu,
                client / wall, "; ".join(errors))


def ab_head(tools: dict[str, str], cpu: int, server: Server, path: str, connections: int,
            duration: float) -> Load:
    """`ab -i -k`: HEAD over keep-alive connections (HTTP/1.0 with Connection: Keep-Alive)."""
    with tempfile.NamedTemporaryFile("r", suffix=".csv") as csv:
        # -t before -n: -t alone caps the run at 50000 requests; this -n is the real bound.
        argv = ["taskset", "-c", str(cpu), tools["ab"], "-q", "-i", "-k", "-c", str(connections),
                "-t", f"{max(1, round(duration))}", "-n", "100000000", "-s", "10", "-e", csv.name,
                "-r", server.url + path]
        text, server_cpu, client, wall = _run(argv, server, duration)
        percentiles = dict(line.strip().split(",") for line in csv.read().splitlines()[1:] if "," in line)
    done = re.search(r"Complete requests:\s+(\d+)", text)
    taken = re.search(r"Time taken for tests:\s+([\d.]+)", text)
    rps = re.search(r"Requests per second:\s+([\d.]+)", text)
    if not (done and taken and rps and "99" in percentiles):
        raise BenchError(f"cannot parse ab output:\n{text}")
    errors = []
    failed = re.search(r"Failed requests:\s+(\d+)", text)
    if failed and int(failed.group(1)):
        errors.append(f"{failed.group(1)} failed")
    if (non2xx := re.search(r"Non-2xx responses:\s+(\d+)", text)):
        errors.append(f"{non2xx.group(1)} non-2xx")
    keepalive = re.search(r"Keep-Alive requests:\s+(\d+)", text)
    if keepalive and int(keepalive.group(1)) < 0.9 * int(done.group(1)):
        errors.append(f"only {keepalive.group(1)} of {done.group(1)} requests kept the connection alive")
    return Load(int(done.group(1)), float(taken.group(1)), float(rps.group(1)), float(percentiles["99"]),
                server_cpu, client / wall, "; ".join(errors))


def wrk_ranges(tools: dict[str, str], cpu: int, server: Server, path: str, size: int, range_size: int,
               connections: int, duration: float) -> Load:
    env = {"BLOB_PATH": path, "BLOB_SIZE": str(size), "RANGE_SIZE": str(range_size)}
    return wrk(tools, cpu, server, path, connections, duration, script=RANGE_SCRIPT, env=env)
