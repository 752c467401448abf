"""containerd pulls `docker.io/...` through the registry named as its mirror in hosts.toml.

That is how clusters use a local mirror: containerd keeps the image name `docker.io/team/app/api`
and sends every request to the mirror with `?ns=docker.io`; the registry must serve what was
pushed under `team/app/api` whatever the ns. Two witnesses:
- `ctr --http-dump` prints the requests containerd sends: each carries `ns=docker.io`. (Its
  dump of concurrent fetches can interleave, so it is not used to count requests.)
- the registry's access log shows what it answered: every ns request 200, the index and the
  chosen platform's manifest, config and layer fetched, nothing of the other platform.
The pull also unpacks the layer, which checks the layer against the config's diff_ids.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.helpers.client import RegistryClient
from tests.helpers.containerd import Containerd, write_hosts_toml
from tests.helpers.images import AMD64, ARM64, DOCKER, OCI, Flavour, build_image
from tests.helpers.registries import AccessLogEntry, RegistryEndpoint

_REQUEST_LINE = re.compile(r"\b(GET|HEAD) (/v2/[^\s\"]+) HTTP/1\.1")


def dumped_targets(dump: str) -> list[str]:
    """The path and query of each request found in `ctr --http-dump` output."""
    return [target for _, target in _REQUEST_LINE.findall(dump)]


def has_docker_ns(target: str) -> bool:
    return parse_qs(urlsplit(target).query).get("ns") == ["docker.io"]


def last_segment(target: str) -> str:
    """The digest or tag a manifest or blob request names."""
    return urlsplit(target).path.rsplit("/", 1)[1]


def mirror_requests(
    registry: RegistryEndpoint, expected: set[str], timeout: float = 3.0
) -> list[AccessLogEntry]:
    """The logged requests that carry ns=docker.io (only containerd sends it).

    Waits up to `timeout` for entries naming every digest in `expected`: a log line may land a
    moment after its response.
    """
    deadline = time.monotonic() + timeout
    while True:
        entries = [e for e in registry.access_log() if has_docker_ns(e.target)]
        if expected <= {last_segment(e.target) for e in entries} or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("flavour", "repo", "platform"),
    [(OCI, "team/app/api", ARM64), (DOCKER, "team/app/list", AMD64)],
    ids=["oci-index-arm64", "docker-list-amd64"],
)
def test_containerd_pulls_one_platform_through_the_mirror(
    registry: RegistryEndpoint,
    containerd: Containerd,
    tmp_path: Path,
    flavour: Flavour,
    repo: str,
    platform: str,
) -> None:
    image = build_image(flavour)
    RegistryClient(registry.url).push_image(repo, image, "v1")
    hosts_dir = tmp_path / "hosts"
    write_hosts_toml(hosts_dir, "docker.io", registry.url)

    pulled = containerd.ctr(
        "images", "pull", "--http-dump", "--hosts-dir", str(hosts_dir),
        "--platform", platform, f"docker.io/{repo}:v1",
    )  # fmt: skip

    sent = dumped_targets(pulled.stderr)
    assert sent, f"ctr dumped no request:\n{pulled.stderr}"
    assert all(has_docker_ns(t) for t in sent), sent
    wanted, other = image.child(platform), image.child(AMD64 if platform == ARM64 else ARM64)
    expected = {image.digest, wanted.digest, wanted.config.digest, wanted.layers[0].digest}
    served = mirror_requests(registry, expected)
    assert all(e.status == 200 and e.target.startswith(f"/v2/{repo}/") for e in served), served
    fetched = {last_segment(e.target) for e in served}
    assert expected <= fetched, served
    assert not {other.digest, other.config.digest} & fetched, "fetched the other platform"
    assert f"unpacking {platform}" in pulled.stdout, pulled.stdout

    listed = containerd.ctr("images", "ls").stdout
    assert any(
        line.split()[:1] == [f"docker.io/{repo}:v1"] and image.digest in line
        for line in listed.splitlines()
    ), listed
    assert containerd.content(image.digest) == image.index.data
    assert containerd.content(wanted.digest) == wanted.manifest.data


def test_containerd_push_sequence_mounts_blobs_across_repositories(
    registry: RegistryEndpoint, containerd: Containerd
) -> None:
    """containerd pushes blobs, then child manifests by digest, then the index by tag; blobs it
    pulled from another repository of the same registry are mounted, not uploaded again."""
    image = build_image(OCI)
    client = RegistryClient(registry.url)
    client.push_image("team/app/api", image, "v1")
    source, target = registry.ref("team/app/api:v1"), registry.ref("team/app/copy:v2")
    # `content fetch` keeps every platform, the attestation too, without unpacking any of them.
    # (`push --manifest` would hit a nil-pipe panic in ctr 1.6 whatever the registry.)
    containerd.ctr("content", "fetch", "--plain-http", "--all-platforms", source)
    containerd.ctr("images", "push", "--plain-http", target, source)

    log = registry.access_log()
    mounts = [e for e in log if e.method == "POST" and "mount=" in e.target and "from=team" in e.target]
    assert mounts and all(e.status == 201 for e in mounts), log
    pushed = [e for e in log if e.method == "PUT" and e.target.startswith("/v2/team/app/copy/manifests/")]
    assert [last_segment(e.target) for e in pushed][-1] == "v2", pushed
    assert all(e.status == 201 for e in pushed), pushed
    copied = client.request("GET", "/v2/team/app/copy/manifests/v2",
                            headers={"Accept": "application/vnd.oci.image.index.v1+json"})
    assert copied.status_code == 200 and copied.content == image.index.data
    for child in image.child_digests():
        assert client.request("HEAD", f"/v2/team/app/copy/manifests/{child}").status_code == 200
