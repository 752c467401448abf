"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from registry.app import create_app
from registry.config import Config, StorageConfig


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def app(data_dir: Path) -> web.Application:
    return create_app(Config(storage=StorageConfig(root=str(data_dir))))
