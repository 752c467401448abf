from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient


@pytest.fixture
async def client(aiohttp_client, app: web.Application) -> TestClient:  # type: ignore[no-untyped-def]
    return await aiohttp_client(app)
