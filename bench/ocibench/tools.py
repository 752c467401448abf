"""The tools the benchmark drives, installed with apt-get when missing, and their versions."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .procs import BenchError

# command -> Debian package
TOOLS = {"wrk": "wrk", "nginx": "nginx", "ab": "apache2-utils", "docker-registry": "docker-registry",
         "taskset": "util-linux"}


def which(cmd: str) -> str | None:
    # nginx lives in /usr/sbin, which a non-login PATH may lack.
    return shutil.which(cmd) or shutil.which(cmd, path="/usr/sbin:/usr/bin:/sbin:/bin")


def ensure_tools(log: Callable[[str], None] = print) -> dict[str, str]:
    """Paths of every tool; apt-get installs the missing ones (idempotent: nothing when all there)."""
    missing = sorted({pkg for cmd, pkg in TOOLS.items() if which(cmd) is None})
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        log(f"installing with apt-get: {' '.join(missing)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                       check=True, env=env, timeout=1200, stdout=subprocess.DEVNULL)
    paths = {}
    for cmd in TOOLS:
        path = which(cmd)
        if path is None:
            raise BenchError(f"{cmd} is still missing after apt-get install {TOOLS[cmd]}")
        paths[cmd] = path
    return paths


def ocireg_python(repo: Path, explicit: str | None, log: Callable[[str], None] = print) -> str:
    """An interpreter that can run `python -m registry` from the checkout (aiohttp installed).

    Tried in order: --python, the repository's .venv, this interpreter; when none has the
    dependencies, .venv is made as the README says (`python3 -m venv .venv && pip install .`).
    """
    candidates = [explicit] if explicit else [str(repo / ".venv/bin/python"), sys.executable]
    for python in candidates:
        if python and Path(python).exists() and _has_deps(python, repo):
            return python
    if explicit:
        raise BenchError(f"{explicit} cannot import the registry's dependencies (pip install {repo})")
    log("no interpreter with ocireg's dependencies: creating .venv (python3 -m venv .venv && pip install .)")
    subprocess.run([sys.executable, "-m", "venv", str(repo / ".venv")], check=True, timeout=300)
    subprocess.run([str(repo / ".venv/bin/pip"), "install", "-q", "--disable-pip-version-check", str(repo)],
                   check=True, timeout=1200)
    return str(repo / ".venv/bin/python")


def _has_deps(python: str, repo: Path) -> bool:
    probe = subprocess.run([python, "-c", "import aiohttp, registry.cli"], cwd=repo,
                           capture_output=True, timeout=60)
    return probe.returncode == 0


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def versions(paths: dict[str, str], python: str, repo: Path) -> dict[str, str]:
    probe = ("import sys, aiohttp; from importlib import metadata\n"
             "try: v = metadata.version('ocireg')\nexcept Exception: v = '?'\n"
             "print(v, sys.version.split()[0], aiohttp.__version__)")
    out = subprocess.run([python, "-c", probe], cwd=repo, capture_output=True, text=True, timeout=60)
    ocireg_v, py_v, aiohttp_v = (out.stdout.split() + ["?", "?", "?"])[:3]
    commit = _first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=30).stdout.strip()
    uvloop = subprocess.run([python, "-c", "import uvloop; print(uvloop.__version__)"], cwd=repo,
                            capture_output=True, text=True, timeout=60).stdout.strip()
    return {
        "ocireg": f"{ocireg_v} (git {commit}{', uncommitted changes' if dirty else ''}), "
                  f"Python {py_v}, aiohttp {aiohttp_v}" + (f", uvloop {uvloop} installed" if uvloop else ""),
        "docker-registry": _first_line([paths["docker-registry"], "--version"]).split(" ", 1)[-1],
        "nginx": _first_line([paths["nginx"], "-v"]).replace("nginx version: ", ""),
        "wrk": re.sub(r"\s*Copyright.*", "", _first_line([paths["wrk"], "-v"])),
        "ab": _first_line([paths["ab"], "-V"]).replace("This is ", "").replace(" <$Revision$>", ""),
    }


def machine() -> dict[str, str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    os_name = "?"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "os": os_name,
    }
