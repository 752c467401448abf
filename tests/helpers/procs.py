"""Run real processes for tests: a free loopback port, start, wait until ready, stop.

Each process writes stdout and stderr to one log file. When it dies or never gets ready the
error carries the log's tail, and `ManagedProcess.print_log` lets a fixture print it at teardown
(pytest shows that output only for failing tests), so a failure explains itself.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
_LOG_TAIL_LINES = 200
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}

# Never let a test helper's own HTTP go through a proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def require_binary(name: str) -> str:
    """The path of an executable; fails (never skips) the test when it is missing.

    CI installs every binary the e2e tests need, so a missing one is a broken machine,
    not a reason to pass quietly.
    """
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"required binary {name!r} is not on PATH (apt-get install it)", pytrace=False)
    return path


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of a GET to `url`, or None when nothing answers."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, ValueError):
        return None


def wait_for_socket(path: Path, timeout: float) -> bool:
    """True once a unix socket at `path` accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(str(path))
                return True
            except OSError:
                time.sleep(0.05)
    return False


class ProcessError(RuntimeError):
    """A managed process died or never became ready; the message holds its log."""


class ManagedProcess:
    """One child process with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, f"{self.name} was not started"
        return self._proc.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait_until(self, ready: str, check: Callable[[], bool], timeout: float) -> None:
        """Poll `check` until it holds; raise with the log if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if not self.alive():
                raise ProcessError(f"{self.name} exited before {ready}\n{self.log_tail()}")
            time.sleep(0.05)
        raise ProcessError(f"{self.name} not {ready} after {timeout}s\n{self.log_tail()}")

    def wait_http(self, url: str, timeout: float = 15.0, status: int = 200) -> None:
        """Wait until a GET of `url` answers `status`."""
        self.wait_until(f"answering {status} on {url}", lambda: http_status(url) == status, timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        return proc.returncode

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path} ---\n" + "\n".join(tail)

    def print_log(self) -> None:
        """Print the log tail; pytest shows it under the failing test's captured output."""
        print(f"\n[{self.name}: {' '.join(self.argv)}]\n{self.log_tail()}")


@contextmanager
def running(
    process: ManagedProcess, ready_url: str, timeout: float = 15.0
) -> Iterator[ManagedProcess]:
    """Start `process`, wait for `ready_url` to answer 200, stop it (and print its log) on exit."""
    process.start()
    try:
        process.wait_http(ready_url, timeout)
        yield process
    finally:
        process.stop()
        process.print_log()


def run(
    argv: Sequence[str],
    *,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a client command; on a non-zero exit fail with its command line and output."""
    result = subprocess.run(
        list(argv),
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        pytest.fail(
            f"command failed ({result.returncode}): {' '.join(argv)}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}",
            pytrace=False,
        )
    return result


def isolated_env(**overrides: str) -> dict[str, str]:
    """This process's environment with proxies pointed at a closed loopback port.

    Any request a client would send past loopback fails fast instead of reaching out.
    """
    closed = f"http://{LOOPBACK}:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env.update(
        {
            "HTTP_PROXY": closed,
            "HTTPS_PROXY": closed,
            "http_proxy": closed,
            "https_proxy": closed,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    env.update(overrides)
    return env
