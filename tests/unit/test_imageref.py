from __future__ import annotations

import pytest

from registry.tools.commands import UsageError, parse_size
from registry.tools.imageref import ImageRefError, parse_image
from registry.tools.walk import Platform

UPSTREAMS = {"docker.io", "ghcr.io"}


@pytest.mark.parametrize("text, name, reference", [
    ("alpine", "docker.io/library/alpine", "latest"),
    ("alpine:3.20", "docker.io/library/alpine", "3.20"),
    ("docker.io/alpine:3.20", "docker.io/library/alpine", "3.20"),
    ("bitnami/redis:7", "docker.io/bitnami/redis", "7"),
    ("ghcr.io/org/app:v1", "ghcr.io/org/app", "v1"),
    ("localhost:5000/team/app:v1", "team/app", "v1"),
    ("127.0.0.1:5000/team/app", "team/app", "latest"),
    (f"ghcr.io/org/app@sha256:{'a' * 64}", "ghcr.io/org/app", f"sha256:{'a' * 64}"),
])
def test_docker_conventions(text: str, name: str, reference: str) -> None:
    image = parse_image(text, UPSTREAMS)
    assert (image.name, image.reference) == (name, reference)


def test_errors_name_the_image() -> None:
    with pytest.raises(ImageRefError, match=r"quay\.io"):
        parse_image("quay.io/org/app:v1", UPSTREAMS)
    with pytest.raises(ImageRefError, match="Upper"):
        parse_image("ghcr.io/Upper/app", UPSTREAMS)


def test_sizes_and_platforms() -> None:
    assert parse_size("20G") == 20 * 10**9
    assert parse_size("512Mi") == 512 * 2**20
    assert parse_size("1000") == 1000
    with pytest.raises(UsageError):
        parse_size("lots")
    assert Platform.parse("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert Platform.parse("linux/amd64").matches({"platform": {"os": "linux", "architecture": "amd64"}})
    with pytest.raises(ValueError):
        Platform.parse("linux")
