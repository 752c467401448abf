from __future__ import annotations

from pathlib import Path

import pytest

from registry.storage.driver.base import Driver
from registry.storage.driver.filesystem import FilesystemDriver


@pytest.fixture(params=["filesystem"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Driver:
    """Every driver runs the same suite; new drivers join this list."""
    return FilesystemDriver(str(tmp_path / "root"))
