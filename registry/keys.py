"""Typed keys for what the application holds, so handlers get it without casts."""

from __future__ import annotations

from aiohttp import web

from .config import Config
from .storage.protocols import Registry

CONFIG = web.AppKey("config", Config)
REGISTRY = web.AppKey("registry", Registry)
