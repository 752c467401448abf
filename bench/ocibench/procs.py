"""A server process pinned to one CPU, and what /proc says about it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BenchError(RuntimeError):
    """Something in the harness or a server went wrong; the message says what."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """The environment without proxies (nothing may leave loopback) or OCIREG_* settings."""
    drop = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {k: v for k, v in os.environ.items() if k.lower() not in drop and not k.startswith("OCIREG_")}
    env["NO_PROXY"] = env["no_proxy"] = "*"
    return env


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, ValueError):
        return None


class Server:
    """One server process under `taskset -c CPU`; its pid is the server's own (taskset execs)."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, port: int, cpu: int,
                 cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.port = port
        self.cpu = cpu
        self.cwd = cwd
        self.env = env if env is not None else clean_env()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, ready_path: str = "/v2/", timeout: float = 30.0) -> "Server":
        taskset = shutil.which("taskset")
        argv = [taskset, "-c", str(self.cpu), *self.argv] if taskset else self.argv
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if http_status(self.url + ready_path) == 200:
                return self
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"{self.name} not answering {ready_path} after {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """utime + stime of the whole process (every thread, live or exited), in seconds."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise BenchError(f"no {key} in /proc/{self.pid}/status")

    def peak_rss_mb(self) -> float:
        """VmHWM: the most resident memory since start or since reset_peak_rss, in MB (10^6)."""
        return self.status_kb("VmHWM") * 1024 / 1e6

    def reset_peak_rss(self) -> bool:
        """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0, owner or root)."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class CpuMeter:
    """CPU seconds a server spent between `with` entry and exit."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.seconds = 0.0

    def __enter__(self) -> "CpuMeter":
        self._start = self.server.cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = self.server.cpu_seconds() - self._start



def write_probe(directory: Path, size: int, chunk: int = 1 << 20) -> tuple[float, float, float]:
    """Write `size` bytes to a new file in `directory`, then fsync: (write s, CPU s, fsync s).

    The file is left for the caller to delete. On this VM a page of new page cache costs either
    a fraction of a µs or a host fault of several µs, depending on whether the hypervisor still
    backs it (the balloon reports freed pages); this probe shows which regime a run is in.
    """
    import resource
    buf = os.urandom(chunk)
    path = directory / "write-probe"
    before = resource.getrusage(resource.RUSAGE_THREAD)
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(size // chunk):
            os.write(fd, buf)
        written = time.perf_counter()
        os.fsync(fd)
    finally:
        os.close(fd)
    synced = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_THREAD)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return written - started, cpu, synced - written
