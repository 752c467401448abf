"""Starting `ocireg serve` where it cannot listen: one line that says why, exit 1, nothing else."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.helpers.procs import LOOPBACK, isolated_env
from tests.helpers.registries import REPO_ROOT


def test_taken_port_fails_with_one_line(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in isolated_env().items() if not k.startswith("OCIREG_")}
        result = subprocess.run(
            [sys.executable, "-m", "registry", "serve", "--listen", f"{LOOPBACK}:{port}",
             "--data", str(tmp_path / "data")],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"ocireg: cannot serve on {LOOPBACK}:{port}: Address already in use\n"
    assert result.stdout == ""
