"""End-to-end fixtures: real processes on loopback, driven by real clients.

Missing binaries fail the tests (CI installs them); nothing here skips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.containerd import Containerd, containerd_daemon
from tests.helpers.fixtures import docker_registry, ocireg, registry  # noqa: F401
from tests.helpers.skopeo import Skopeo


@pytest.fixture
def skopeo() -> Skopeo:
    return Skopeo()


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[Containerd]:
    """A private containerd daemon, stopped (and its log printed) at teardown."""
    with containerd_daemon(tmp_path / "containerd") as daemon:
        yield daemon
