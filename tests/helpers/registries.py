"""Start real registries on free loopback ports: ocireg itself, and CNCF Distribution.

Distribution (Debian's `docker-registry`) speaks the same protocol as ocireg except the
referrers API, so the e2e tests can run against it as a reference, and mirror tests can use it
as an upstream. Both are context managers that yield a `RegistryEndpoint` and stop the process
on exit.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.procs import (
    LOOPBACK,
    ManagedProcess,
    free_port,
    isolated_env,
    require_binary,
    running,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

OCIREG = "ocireg"
DISTRIBUTION = "distribution"


@dataclass(frozen=True)
class RegistryEndpoint:
    """A running registry: where it listens, where it keeps data, and its process (for logs)."""

    kind: str
    port: int
    data_dir: Path
    process: ManagedProcess
    host: str = LOOPBACK

    @property
    def hostport(self) -> str:
        """`127.0.0.1:PORT`, as image references and hosts.toml want it."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, without a trailing slash."""
        return f"http://{self.hostport}"

    def ref(self, name: str) -> str:
        """An image reference on this registry, e.g. `127.0.0.1:PORT/team/app/api:v1`."""
        return f"{self.hostport}/{name}"

    def access_log(self) -> list[AccessLogEntry]:
        """The requests the registry has logged so far, oldest first."""
        return parse_access_log(self.process.log_text())


@dataclass(frozen=True)
class AccessLogEntry:
    method: str
    target: str  # path and query, as sent
    status: int


# Both ocireg and Distribution log `"METHOD TARGET HTTP/1.1" STATUS` (common log format).
_ACCESS_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/1\.[01]" (\d{3})')


def parse_access_log(text: str) -> list[AccessLogEntry]:
    return [AccessLogEntry(m, t, int(s)) for m, t, s in _ACCESS_LINE.findall(text)]


@contextmanager
def ocireg_server(
    workdir: Path, extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Iterator[RegistryEndpoint]:
    """Run `python -m registry serve` from this checkout, with its data under `workdir`.

    The server's configuration comes from the arguments and `env` only: OCIREG_* variables of
    the calling shell are dropped (the server rejects unknown ones, and a developer's settings
    must not change a test), and proxies point at a closed port so nothing leaves loopback.
    """
    port = free_port()
    data_dir = workdir / "ocireg-data"
    argv = [
        sys.executable,
        "-m",
        "registry",
        "serve",
        "--listen",
        f"{LOOPBACK}:{port}",
        "--data",
        str(data_dir),
        *extra_args,
    ]
    inherited = {k: v for k, v in isolated_env().items() if not k.startswith("OCIREG_")}
    process_env = {**inherited, **(env or {}), "PYTHONUNBUFFERED": "1"}
    process = ManagedProcess(OCIREG, argv, workdir / "ocireg.log", cwd=REPO_ROOT, env=process_env)
    endpoint = RegistryEndpoint(OCIREG, port, data_dir, process)
    with running(process, f"{endpoint.url}/v2/"):
        yield endpoint


@contextmanager
def docker_registry_server(
    workdir: Path, extra_config: Mapping[str, Any] | None = None
) -> Iterator[RegistryEndpoint]:
    """Run CNCF Distribution (`docker-registry`) with filesystem storage under `workdir`.

    `extra_config` is merged over the top level of the config, e.g. `{"proxy": {...}}` to make
    it a pull-through cache. The file is JSON, which is valid YAML.
    """
    binary = require_binary("docker-registry")
    port = free_port()
    data_dir = workdir / "distribution-data"
    config = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(data_dir)}, "delete": {"enabled": True}},
        "http": {"addr": f"{LOOPBACK}:{port}"},
        **(extra_config or {}),
    }
    config_path = workdir / "distribution.yml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config, indent=2))
    argv = [binary, "serve", str(config_path)]
    process = ManagedProcess(DISTRIBUTION, argv, workdir / "distribution.log")
    endpoint = RegistryEndpoint(DISTRIBUTION, port, data_dir, process)
    with running(process, f"{endpoint.url}/v2/"):
        yield endpoint
