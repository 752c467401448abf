"""Mirror fixtures: a seeded upstream (CNCF Distribution) and ocireg processes that mirror it.

Everything runs on loopback: the upstreams are `docker-registry` processes on free ports, and the
ocireg config lists only them (a config with `[[mirror.upstreams]]` replaces the built-in public
registries). Clients inherit `isolated_env()`, whose proxies point at a closed port, so a request
that tried to leave loopback would fail instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from tests.helpers.containerd import Containerd, containerd_daemon
from tests.helpers.registries import (
    RegistryEndpoint,
    docker_registry_server,
    ocireg_server,
)
from tests.helpers.skopeo import Skopeo
from tests.helpers.upstream import SEEDED, MirrorConfig, Upstream, UpstreamEntry

HUB = "docker.io"


class MirrorFactory:
    """Starts `ocireg serve --config FILE` processes; all are stopped at the test's end.

    `workdir` names the process's folder under the test's tmp_path: starting again with the
    same name reuses the data (a restart), e.g. to come back `--offline`.
    """

    def __init__(self, tmp_path: Path, stack: ExitStack) -> None:
        self.tmp_path = tmp_path
        self.stack = stack

    def __call__(
        self,
        config: MirrorConfig,
        *,
        workdir: str = "ocireg",
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> RegistryEndpoint:
        directory = self.tmp_path / workdir
        path = config.write(directory / "ocireg.toml")
        server = ocireg_server(directory, ["--config", str(path), *extra_args], env)
        return self.stack.enter_context(server)


@pytest.fixture
def skopeo() -> Skopeo:
    return Skopeo()


@pytest.fixture
def http() -> requests.Session:
    """A requests session that never uses a proxy from the environment."""
    session = requests.Session()
    session.trust_env = False
    return session


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[Containerd]:
    with containerd_daemon(tmp_path / "containerd") as daemon:
        yield daemon


@pytest.fixture
def upstream(tmp_path: Path, skopeo: Skopeo) -> Iterator[Upstream]:
    """Distribution seeded with library/app:v1, library/app:list and library/other:v1."""
    workdir = tmp_path / "upstream"
    with docker_registry_server(workdir) as endpoint:
        seeded = Upstream(endpoint, workdir, skopeo)
        for repo, tag, image in SEEDED:
            seeded.seed(image, repo, tag)
        yield seeded


@pytest.fixture
def mirror_factory(tmp_path: Path) -> Iterator[MirrorFactory]:
    with ExitStack() as stack:
        yield MirrorFactory(tmp_path, stack)


@pytest.fixture
def mirror(mirror_factory: MirrorFactory, upstream: Upstream) -> RegistryEndpoint:
    """ocireg mirroring the seeded upstream as `docker.io` (tag_ttl 0s), also as the default."""
    return mirror_factory(
        MirrorConfig([UpstreamEntry(HUB, upstream.url, tag_ttl="0s")], default=HUB)
    )
