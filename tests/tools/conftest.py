"""Fixtures for the CI cache tools (`ocireg seed|export|import|gc|verify|hosts`).

Everything is a real process on loopback:
- `upstream`: CNCF Distribution (`docker-registry`) seeded with skopeo from the deterministic
  images of `tests/helpers/images.py`: an OCI index at `library/app:v1` and a Docker manifest
  list at `library/app:list`. It is the `docker.io` of the ocireg configuration.
- `ocireg_cli`: runs `python -m registry <command> --config FILE --data DIR ...` on the same data
  folder and configuration that `serve` uses, and returns the finished process (exit status,
  stdout with the summary line, stderr with the failures) without judging it.
- `serve`: starts `ocireg serve` on that data folder and configuration; every server started
  is stopped at the end of the test. Calling it again after stopping one is a restart.

Clients get `isolated_env()`: proxies point at a closed port, so nothing leaves loopback.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.helpers.containerd import Containerd, containerd_daemon
from tests.helpers.images import (
    DOCKER,
    OCI,
    MultiArchImage,
    build_image,
    write_oci_layout,
)
from tests.helpers.procs import free_port, isolated_env
from tests.helpers.registries import (
    REPO_ROOT,
    AccessLogEntry,
    RegistryEndpoint,
    docker_registry_server,
    ocireg_server,
)
from tests.helpers.skopeo import Skopeo, layout_reference

HUB = "docker.io"
APP_REPO = "library/app"  # upstream name; ocireg stores it as docker.io/library/app
MIRRORED_APP = f"{HUB}/{APP_REPO}"

# The images every tools test can count on: `app:v1` (OCI index) and `app:list` (Docker list).
APP = build_image(OCI, seed="tools-app")
LIST = build_image(DOCKER, seed="tools-list")
UPSTREAM_IMAGES = (("v1", APP), ("list", LIST))


# -- the upstream --------------------------------------------------------------------------------


@dataclass
class Upstream:
    endpoint: RegistryEndpoint
    workdir: Path
    skopeo: Skopeo
    layouts: int = 0

    @property
    def url(self) -> str:
        return self.endpoint.url

    def push(self, image: MultiArchImage, repo: str, tag: str) -> None:
        """`skopeo copy --all --preserve-digests` from an OCI layout: digests stay as built."""
        self.layouts += 1
        layout = write_oci_layout(image, self.workdir / f"layout-{self.layouts}", tag)
        self.skopeo.copy_all(
            layout_reference(layout, image, tag), f"docker://{self.endpoint.hostport}/{repo}:{tag}"
        )

    def log(self) -> list[AccessLogEntry]:
        return self.endpoint.access_log()

    def stop(self) -> None:
        self.endpoint.process.stop()


@pytest.fixture
def skopeo() -> Skopeo:
    return Skopeo()


@pytest.fixture
def upstream(tmp_path: Path, skopeo: Skopeo) -> Iterator[Upstream]:
    """Distribution holding library/app:v1 (OCI index) and library/app:list (Docker list)."""
    workdir = tmp_path / "upstream"
    with docker_registry_server(workdir) as endpoint:
        seeded = Upstream(endpoint, workdir, skopeo)
        for tag, image in UPSTREAM_IMAGES:
            seeded.push(image, APP_REPO, tag)
        yield seeded


# -- the ocireg configuration, CLI and server ---------------------------------------------------


def mirror_toml(upstream_url: str) -> str:
    """One upstream, `docker.io`, at `upstream_url`; tags always revalidated (tag_ttl 0s)."""
    return (
        "[mirror]\n"
        'default = ""\n\n'
        "[[mirror.upstreams]]\n"
        f'name = "{HUB}"\n'
        f'url = "{upstream_url}"\n'
        'tag_ttl = "0s"\n'
    )


@dataclass
class Ocireg:
    """The data folder and configuration shared by the CLI tools and `ocireg serve`."""

    workdir: Path  # ocireg_server(workdir) keeps its data in workdir/ocireg-data
    config: Path
    stack: ExitStack
    env: dict[str, str] = field(
        default_factory=lambda: {
            **{k: v for k, v in isolated_env().items() if not k.startswith("OCIREG_")},
            "PYTHONUNBUFFERED": "1",
        }
    )

    @property
    def data(self) -> Path:
        return self.workdir / "ocireg-data"

    def cli(
        self, command: str, *args: str, data: Path | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """`python -m registry COMMAND --config FILE --data DIR ARGS`, not judged."""
        argv = [
            sys.executable, "-m", "registry", command,
            "--config", str(self.config), "--data", str(data or self.data), *args,
        ]  # fmt: skip
        return subprocess.run(
            argv,
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def ok(self, command: str, *args: str, data: Path | None = None) -> str:
        """Run a tool that must succeed; returns its summary line (the last line of stdout)."""
        result = self.cli(command, *args, data=data)
        assert result.returncode == 0, describe_run(result)
        return summary_line(result)

    def fails(
        self, command: str, *args: str, data: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a tool that must exit non-zero; returns the finished process."""
        result = self.cli(command, *args, data=data)
        assert result.returncode != 0, describe_run(result)
        return result

    def serve(self, *extra_args: str) -> RegistryEndpoint:
        """`ocireg serve --config FILE` on the data folder; stopped at the end of the test."""
        server = ocireg_server(self.workdir, ["--config", str(self.config), *extra_args])
        return self.stack.enter_context(server)


def describe_run(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit {result.returncode}: {' '.join(map(str, result.args))}\n"
        f"--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}"
    )


def summary_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, f"no summary line on stdout\n{describe_run(result)}"
    return lines[-1]


@pytest.fixture
def ocireg_factory(tmp_path: Path) -> Iterator[OciregFactory]:
    with ExitStack() as stack:
        yield OciregFactory(tmp_path, stack)


class OciregFactory:
    """Makes an `Ocireg` (config file + data folder) for an upstream URL."""

    def __init__(self, tmp_path: Path, stack: ExitStack) -> None:
        self.tmp_path = tmp_path
        self.stack = stack

    def __call__(self, upstream_url: str, name: str = "ocireg") -> Ocireg:
        workdir = self.tmp_path / name
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "ocireg.toml"
        config.write_text(mirror_toml(upstream_url))
        return Ocireg(workdir, config, self.stack)


@pytest.fixture
def ocireg(ocireg_factory: OciregFactory, upstream: Upstream) -> Ocireg:
    """CLI and server configured with the seeded upstream as docker.io."""
    return ocireg_factory(upstream.url)


@pytest.fixture
def local_ocireg(ocireg_factory: OciregFactory) -> Ocireg:
    """CLI and server whose only upstream (docker.io) is a closed loopback port."""
    return ocireg_factory(f"http://127.0.0.1:{free_port()}")


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[Containerd]:
    with containerd_daemon(tmp_path / "containerd") as daemon:
        yield daemon


@pytest.fixture
def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


# -- checks ---------------------------------------------------------------------------------------


def assert_dir_holds(
    out: Path, image: MultiArchImage, children: Sequence[str] | None = None
) -> None:
    """A `skopeo copy --all ... dir:OUT` holds exactly the image's bytes (index, children, blobs).

    `children` limits the check to those platforms (`linux/arm64`, `attestation`, ...).
    """
    assert (out / "manifest.json").read_bytes() == image.index.data, "index differs"
    for child in image.children:
        if children is not None and child.name not in children:
            continue
        manifest = out / f"{child.digest[7:]}.manifest.json"
        assert manifest.read_bytes() == child.manifest.data, f"{child.name} manifest differs"
        for blob in (child.config, *child.layers):
            assert (out / blob.digest[7:]).read_bytes() == blob.data, f"{child.name} {blob.digest}"


def assert_single_dir_holds(out: Path, image: MultiArchImage, platform: str) -> None:
    """A `skopeo copy` (no --all) of one platform to `dir:OUT`: that manifest and its blobs."""
    child = image.child(platform)
    assert (out / "manifest.json").read_bytes() == child.manifest.data, f"{platform} manifest"
    for blob in (child.config, *child.layers):
        assert (out / blob.digest[7:]).read_bytes() == blob.data, f"{platform} {blob.digest}"


def blob_path(data: Path, digest: str) -> Path:
    algorithm, hexpart = digest.split(":", 1)
    return data / "blobs" / algorithm / hexpart[:2] / hexpart / "data"


def manifest_link(data: Path, repo: str, digest: str) -> Path:
    algorithm, hexpart = digest.split(":", 1)
    return data / "repositories" / repo / "_manifests" / algorithm / hexpart


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def store_snapshot(data: Path) -> dict[str, bytes]:
    """Every file of a data folder (blobs, links, tags) with its bytes; uploads excluded."""
    snapshot = {}
    for root, _, files in os.walk(data):
        for name in files:
            path = Path(root, name)
            relative = str(path.relative_to(data))
            if not relative.startswith("uploads/"):
                snapshot[relative] = path.read_bytes()
    return snapshot


def catalog(http: requests.Session, endpoint: RegistryEndpoint) -> list[str]:
    response = http.get(f"{endpoint.url}/v2/_catalog")
    assert response.status_code == 200, response.text
    return list(response.json().get("repositories") or [])
