from __future__ import annotations

from mirror.routing import Router
from registry.config import MirrorConfig, UpstreamConfig

HUB = UpstreamConfig("docker.io", "http://127.0.0.1:1")
GHCR = UpstreamConfig("ghcr.io", "http://127.0.0.1:2", include=("org/*",))


def _router(default: str = "") -> Router:
    return Router(MirrorConfig(default=default, upstreams=(HUB, GHCR)))


def test_ns_names_the_upstream() -> None:
    route = _router().route("library/alpine", "docker.io")
    assert route is not None and route.cache_name == "docker.io/library/alpine"
    single = _router().route("alpine", "docker.io")
    assert single is not None and single.remote == "library/alpine"
    assert _router().route("library/alpine", "quay.io") is None


def test_prefix_names_the_upstream() -> None:
    route = _router().route("ghcr.io/org/app", None)
    assert route is not None and (route.upstream.name, route.remote) == ("ghcr.io", "org/app")
    assert _router().route("ghcr.io/other/app", None) is None  # not included
    assert _router().mirrored_namespace("docker.io/library/x") == HUB
    assert _router().mirrored_namespace("team/app") is None


def test_default_only_when_set() -> None:
    assert _router().route("team/app", None) is None
    route = _router("docker.io").route("alpine", None)
    assert route is not None and route.by_default and route.remote == "library/alpine"
