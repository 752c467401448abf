"""containerd pulls `docker.io/...` through the registry named as its mirror in hosts.toml.

That is how clusters use a local mirror: containerd keeps the image name `docker.io/team/app/api`
and sends every request to the mirror with `?ns=docker.io`; the registry must serve what was
pushed under `team/app/api` whatever the ns. `ctr --http-dump` prints each request containerd
sends, so the test sees the ns parameter on the wire, and which blobs the platform selected.
The pull also unpacks the layer, which checks the layer against the config's diff_ids.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.helpers.client import RegistryClient
from tests.helpers.containerd import Containerd, write_hosts_toml
from tests.helpers.images import AMD64, ARM64, DOCKER, OCI, Flavour, build_image
from tests.helpers.registries import RegistryEndpoint

_REQUEST_LINE = re.compile(r"\b(GET|HEAD) (/v2/[^\s\"]+) HTTP/1\.1")


def dumped_requests(dump: str) -> list[tuple[str, str]]:
    """(method, path with query) of each request in `ctr --http-dump` output."""
    return _REQUEST_LINE.findall(dump)


@pytest.mark.parametrize(
    ("flavour", "repo", "platform"),
    [(OCI, "team/app/api", ARM64), (DOCKER, "team/app/list", AMD64)],
    ids=["oci-index-arm64", "docker-list-amd64"],
)
def test_containerd_pulls_one_platform_through_the_mirror(
    registry: RegistryEndpoint, containerd: Containerd, tmp_path: Path,
    flavour: Flavour, repo: str, platform: str,
) -> None:
    image = build_image(flavour)
    RegistryClient(registry.url).push_image(repo, image, "v1")
    hosts_dir = tmp_path / "hosts"
    write_hosts_toml(hosts_dir, "docker.io", registry.url)

    pulled = containerd.ctr(
        "images", "pull", "--http-dump", "--hosts-dir", str(hosts_dir),
        "--platform", platform, f"docker.io/{repo}:v1",
    )

    requests = dumped_requests(pulled.stderr)
    assert requests, f"ctr dumped no request:\n{pulled.stderr}"
    for method, target in requests:
        url = urlsplit(target)
        assert url.path.startswith(f"/v2/{repo}/"), target
        assert parse_qs(url.query).get("ns") == ["docker.io"], f"{method} {target} lacks ns=docker.io"

    wanted, other = image.child(platform), image.child(AMD64 if platform == ARM64 else ARM64)
    fetched = {urlsplit(target).path.rsplit("/", 1)[1] for _, target in requests}
    assert {image.digest, wanted.digest, wanted.config.digest, wanted.layers[0].digest} <= fetched
    assert not {other.digest, other.config.digest} & fetched, "fetched the other platform"
    assert f"unpacking {platform}" in pulled.stdout, pulled.stdout

    listed = containerd.ctr("images", "ls").stdout
    assert any(line.split()[:1] == [f"docker.io/{repo}:v1"] and image.digest in line
               for line in listed.splitlines()), listed
    assert containerd.content(image.digest) == image.index.data
    assert containerd.content(wanted.digest) == wanted.manifest.data
