"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from registry.app import create_app
from registry.config import Config, MirrorConfig, StorageConfig, UpstreamConfig

CLOSED_UPSTREAM = UpstreamConfig("docker.io", "http://127.0.0.1:9")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def app(data_dir: Path) -> web.Application:
    """The mirror's one upstream is a closed loopback port: API tests never leave the machine."""
    mirror = MirrorConfig(upstreams=(CLOSED_UPSTREAM,))
    return create_app(Config(storage=StorageConfig(root=str(data_dir)), mirror=mirror))
