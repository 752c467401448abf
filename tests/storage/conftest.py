from __future__ import annotations

from pathlib import Path

import pytest

from registry.storage.driver.base import Driver
from registry.storage.driver.filesystem import FilesystemDriver
from registry.storage.driver.memory import MemoryDriver

DRIVERS = ["filesystem", "memory"]


def make_driver(kind: str, root: Path) -> Driver:
    if kind == "memory":
        return MemoryDriver()
    return FilesystemDriver(str(root))


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Driver:
    """Every driver runs the same suite; new drivers join this list."""
    return make_driver(request.param, tmp_path / "root")
