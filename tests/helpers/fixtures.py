"""pytest fixtures over the helpers, for any test package to import into its conftest.py:

    from tests.helpers.fixtures import docker_registry, ocireg, registry  # noqa: F401

`registry` is the registry under test: ocireg by default, CNCF Distribution when
E2E_REGISTRY=distribution (a reference run that tells client quirks from server bugs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.registries import (
    DISTRIBUTION,
    OCIREG,
    RegistryEndpoint,
    docker_registry_server,
    ocireg_server,
)

TARGET_ENV = "E2E_REGISTRY"


@pytest.fixture
def ocireg(tmp_path: Path) -> Iterator[RegistryEndpoint]:
    """A fresh `python -m registry serve` of this checkout on a free port, empty data dir."""
    with ocireg_server(tmp_path / "ocireg") as endpoint:
        yield endpoint


@pytest.fixture
def docker_registry(tmp_path: Path) -> Iterator[RegistryEndpoint]:
    """A fresh CNCF Distribution (`docker-registry`) on a free port, empty storage."""
    with docker_registry_server(tmp_path / "distribution") as endpoint:
        yield endpoint


@pytest.fixture
def registry(request: pytest.FixtureRequest) -> RegistryEndpoint:
    """The registry under test: E2E_REGISTRY is `ocireg` (the default) or `distribution`."""
    target = os.environ.get(TARGET_ENV, OCIREG)
    if target == OCIREG:
        endpoint: RegistryEndpoint = request.getfixturevalue("ocireg")
    elif target == DISTRIBUTION:
        endpoint = request.getfixturevalue("docker_registry")
    else:
        pytest.fail(
            f"{TARGET_ENV}={target!r}: expected {OCIREG!r} or {DISTRIBUTION!r}", pytrace=False
        )
    return endpoint
