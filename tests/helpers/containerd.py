"""A private containerd daemon and the hosts.toml that points it at a mirror.

The daemon gets its own root, state, socket and a config that turns off what cannot run in a
sandbox (CRI, exotic snapshotters), so tests neither need nor touch a system containerd. It is
kept off the internet by proxy variables that point at a closed loopback port: `ctr` resolves
and fetches in its own process, so the same environment is used for every `ctr` call too.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.procs import (
    ManagedProcess,
    isolated_env,
    require_binary,
    run,
    wait_for_socket,
)

NAMESPACE = "ocireg-e2e"

# Plugins that need kernel features, devices or a CNI setup this sandbox does not have.
_DISABLED_PLUGINS = [
    "io.containerd.grpc.v1.cri",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
]


@dataclass(frozen=True)
class Containerd:
    """A running daemon and the way to talk to it with `ctr`."""

    socket: Path
    root: Path
    process: ManagedProcess
    ctr_binary: str
    env: dict[str, str]

    def ctr(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run `ctr` against this daemon, in the test namespace; fails the test on error."""
        argv = [self.ctr_binary, "--address", str(self.socket), "--namespace", NAMESPACE, *args]
        return run(argv, timeout=timeout, env=self.env)

    def content(self, digest: str) -> bytes:
        """The bytes containerd's content store holds for `digest` (`ctr content get`)."""
        argv = [
            self.ctr_binary,
            "--address",
            str(self.socket),
            "--namespace",
            NAMESPACE,
            "content",
            "get",
            digest,
        ]
        result = subprocess.run(
            argv,
            check=False,
            capture_output=True,
            timeout=30,
            env=self.env,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, f"{' '.join(argv)}: {result.stderr.decode(errors='replace')}"
        return result.stdout


def write_hosts_toml(
    hosts_dir: Path,
    registry_host: str,
    mirror_url: str,
    capabilities: Sequence[str] = ("pull", "resolve"),
) -> Path:
    """Write `<hosts_dir>/<registry_host>/hosts.toml` naming `mirror_url` as its mirror.

    No `server` line: the fallback is then `https://<registry_host>`, which the proxy blocks, so
    a pull can only succeed through the mirror.
    """
    caps = ", ".join(f'"{c}"' for c in capabilities)
    path = hosts_dir / registry_host / "hosts.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[host."{mirror_url}"]\n  capabilities = [{caps}]\n')
    return path


def _config(root: Path, state: Path, socket: Path) -> str:
    disabled = ", ".join(f'"{p}"' for p in _DISABLED_PLUGINS)
    return (
        "version = 2\n"
        f'root = "{root}"\nstate = "{state}"\n'
        f"disabled_plugins = [{disabled}]\n"
        f'[grpc]\n  address = "{socket}"\n'
        f'[ttrpc]\n  address = "{socket}.ttrpc"\n'
        '[debug]\n  level = "debug"\n'
        f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{root}/opt"\n'
    )


@contextmanager
def containerd_daemon(workdir: Path, timeout: float = 15.0) -> Iterator[Containerd]:
    """Run containerd with everything private under `workdir`; stop it on exit.

    The sockets live in a short directory under /tmp because a unix socket path may not exceed
    108 bytes, which a pytest tmp_path can.
    """
    binary, ctr_binary = require_binary("containerd"), require_binary("ctr")
    root, state = workdir / "containerd-root", workdir / "containerd-state"
    env = isolated_env()
    with tempfile.TemporaryDirectory(prefix="ctrd-") as sockets:
        socket = Path(sockets) / "containerd.sock"
        config = workdir / "containerd.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(_config(root, state, socket))
        process = ManagedProcess(
            "containerd", [binary, "--config", str(config)], workdir / "containerd.log", env=env
        )
        process.start()
        try:
            process.wait_until(
                f"listening on {socket}", lambda: wait_for_socket(socket, 0.1), timeout
            )
            yield Containerd(socket, root, process, ctr_binary, env)
        finally:
            process.stop()
            process.print_log()
