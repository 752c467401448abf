"""The composition root: one graph, built once, the same for the server and the tools."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import ClientSession

from registry.app import LOCAL, create_app
from registry.compose import MirrorRegistry, Services, StoreMissing, build_services, open_services
from registry.config import Config, MirrorConfig, StorageConfig, UpstreamConfig
from registry.keys import REGISTRY, SERVICES
from registry.storage.driver.filesystem import FilesystemDriver

UPSTREAM = UpstreamConfig("docker.io", "http://127.0.0.1:9")


def config_for(root: Path, *upstreams: UpstreamConfig) -> Config:
    return Config(storage=StorageConfig(root=str(root)), mirror=MirrorConfig(upstreams=upstreams))


def test_no_mirror_without_an_upstream(tmp_path: Path) -> None:
    services = build_services(config_for(tmp_path / "data"))
    assert services.mirror is None
    assert services.repositories is services.local
    assert services.upstream_names == frozenset()
    assert not services.is_mirrored("docker.io/library/alpine")


def test_the_mirror_sits_on_the_one_store(tmp_path: Path) -> None:
    services = build_services(config_for(tmp_path / "data", UPSTREAM))
    assert isinstance(services.mirror, MirrorRegistry)
    assert services.mirror.local is services.local
    assert services.repositories is services.mirror
    assert services.local.driver is services.driver
    assert services.router is services.mirror.router, "two routers could disagree about a name"
    assert services.upstream_names == frozenset({"docker.io"})
    assert services.is_mirrored("docker.io/library/alpine")
    assert not services.is_mirrored("team/app")


def test_an_injected_driver_is_the_one_used(tmp_path: Path) -> None:
    driver = FilesystemDriver(str(tmp_path / "elsewhere"))
    services = build_services(config_for(tmp_path / "data", UPSTREAM), driver=driver)
    assert services.driver is driver
    assert services.local.driver is driver
    assert not (tmp_path / "data").exists(), "the default driver was built beside the injected one"


def test_a_required_store_that_is_missing_is_refused_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-data"
    with pytest.raises(StoreMissing, match="no such data folder"):
        build_services(config_for(missing), require_store=True)
    assert not missing.exists()
    (tmp_path / "data").mkdir()
    assert build_services(config_for(tmp_path / "data"), require_store=True).mirror is None


def test_the_server_and_a_tool_get_the_same_graph(tmp_path: Path) -> None:
    config = config_for(tmp_path / "data", UPSTREAM)
    app = create_app(config)
    built = app[SERVICES]
    assert isinstance(built, Services)
    assert isinstance(built.mirror, MirrorRegistry)
    assert app[LOCAL] is built.local
    assert app[REGISTRY] is built.repositories
    assert built.mirror.local is built.local


def test_the_app_serves_the_services_it_is_given(tmp_path: Path) -> None:
    config = config_for(tmp_path / "data")
    services = build_services(config)
    app = create_app(config, services)
    assert app[SERVICES] is services
    assert app[REGISTRY] is services.local


async def test_open_services_closes_the_mirror_even_when_the_tool_fails(tmp_path: Path) -> None:
    sessions: list[ClientSession] = []

    async def failing_tool() -> None:
        async with open_services(config_for(tmp_path / "data", UPSTREAM)) as services:
            assert services.mirror is not None and services.mirror.session is not None
            sessions.append(services.mirror.session)
            assert not services.mirror.session.closed
            raise RuntimeError("the tool failed")

    with pytest.raises(RuntimeError, match="the tool failed"):
        await failing_tool()
    assert [session.closed for session in sessions] == [True]
