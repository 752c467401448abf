"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from registry.app import create_app
from registry.compose import build_services
from registry.config import Config, MirrorConfig, StorageConfig, UpstreamConfig
from registry.storage.driver.filesystem import FilesystemDriver

CLOSED_UPSTREAM = UpstreamConfig("docker.io", "http://127.0.0.1:9")

# Folders whose tests start real processes: the fast tier (`-m "not e2e and not slow"`) skips them.
E2E_FOLDERS = {"e2e", "mirror", "tools", "campaign"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark by folder, so a new test file in an e2e folder cannot forget its marker."""
    for item in items:
        folder = item.path.parent.name
        if folder in E2E_FOLDERS:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def app(data_dir: Path) -> web.Application:
    """The mirror's one upstream is a closed loopback port: API tests never leave the machine.
    No fsyncs: durability is the crash tests' subject, against real processes."""
    config = Config(storage=StorageConfig(root=str(data_dir)), mirror=MirrorConfig(upstreams=(CLOSED_UPSTREAM,)))
    return create_app(config, build_services(config, driver=FilesystemDriver(str(data_dir), durable=False)))
