"""When a cached tag may be served without asking upstream, and how stale it may get."""

from __future__ import annotations

import time

from registry.config import UpstreamConfig


def fresh(validated_at: float, upstream: UpstreamConfig) -> bool:
    return time.time() - validated_at < upstream.tag_ttl


def servable_stale(validated_at: float, upstream: UpstreamConfig) -> bool:
    """While the upstream fails, a cached tag is served up to `max_stale` after it was confirmed."""
    return time.time() - validated_at <= upstream.max_stale
