"""Typed keys for what the application holds, so handlers get it without casts."""

from __future__ import annotations

from aiohttp import web

from .compose import Services
from .config import Config
from .storage.protocols import Registry

CONFIG = web.AppKey("config", Config)
REGISTRY = web.AppKey("registry", Registry)  # what handlers ask for repositories: the mirror, or the store
SERVICES = web.AppKey("services", Services)
