"""`ocireg hosts`: client configuration that parses, and that a real client can use.

Each part of the output is parsed as what it claims to be (TOML for containerd's hosts.toml,
registries.conf and buildkitd.toml; JSON for Docker's daemon.json), and the containerd
hosts.toml it prints for docker.io is installed as is for a `ctr` pull through ocireg.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from tests.helpers.containerd import Containerd
from tests.helpers.images import ARM64
from tests.tools.conftest import APP, HUB, Ocireg, Upstream

HOSTS_TOML = re.compile(r"^# /etc/containerd/certs\.d/([^/\s]+)/hosts\.toml$")


def sections(output: str) -> dict[str, str]:
    """`### title` headed parts of the output."""
    parts = re.split(r"^### (.+)$", output, flags=re.MULTILINE)
    assert parts[0].strip() == "", f"text before the first section: {parts[0]!r}"
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def hosts_files(containerd_part: str) -> dict[str, str]:
    """registry -> the text of its hosts.toml, split at the `# /etc/containerd/certs.d/...` lines."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in containerd_part.splitlines():
        match = HOSTS_TOML.match(line)
        if match:
            current = files.setdefault(match.group(1), [])
        elif current is not None:
            current.append(line)
        else:
            assert not line.strip(), f"containerd text outside any hosts.toml: {line!r}"
    return {name: "\n".join(lines) + "\n" for name, lines in files.items()}


def without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def hosts_output(ocireg: Ocireg, listen: str, mirror_of: str) -> str:
    result = ocireg.cli("hosts", "--mirror-of", mirror_of, "--listen", listen)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_hosts_prints_valid_configuration_for_every_client(local_ocireg: Ocireg) -> None:
    output = hosts_output(local_ocireg, "127.0.0.1:5000", "docker.io,ghcr.io")
    parts = sections(output)
    assert set(parts) == {"containerd", "docker", "podman / CRI-O", "buildkit"}, list(parts)

    files = hosts_files(parts["containerd"])
    assert set(files) == {"docker.io", "ghcr.io"}, files
    for text in files.values():
        parsed: dict[str, Any] = tomllib.loads(text)
        assert parsed["host"] == {"http://127.0.0.1:5000": {"capabilities": ["pull", "resolve"]}}, (
            parsed
        )
        assert parsed["server"].startswith("https://"), parsed
    assert tomllib.loads(files["docker.io"])["server"] == "https://registry-1.docker.io"
    assert tomllib.loads(files["ghcr.io"])["server"] == "https://ghcr.io"

    daemon = json.loads(without_comments(parts["docker"]))
    assert daemon == {
        "registry-mirrors": ["http://127.0.0.1:5000"],
        "insecure-registries": ["127.0.0.1:5000"],
    }, daemon

    registries = tomllib.loads(parts["podman / CRI-O"])["registry"]
    by_prefix = {r.get("prefix", r["location"]): r for r in registries}
    assert by_prefix["docker.io"]["mirror"] == [
        {"location": "127.0.0.1:5000/docker.io", "insecure": True}
    ]
    assert by_prefix["ghcr.io"]["mirror"] == [
        {"location": "127.0.0.1:5000/ghcr.io", "insecure": True}
    ]
    assert by_prefix["127.0.0.1:5000"]["insecure"] is True

    buildkit = tomllib.loads(parts["buildkit"])["registry"]
    assert buildkit["docker.io"]["mirrors"] == ["127.0.0.1:5000"]
    assert buildkit["ghcr.io"]["mirrors"] == ["127.0.0.1:5000"]
    assert buildkit["127.0.0.1:5000"] == {"http": True, "insecure": True}


def test_ctr_pulls_through_ocireg_with_the_printed_hosts_toml(
    ocireg: Ocireg, upstream: Upstream, containerd: Containerd, tmp_path: Path
) -> None:
    server = ocireg.serve()
    output = hosts_output(ocireg, server.hostport, HUB)
    hosts_toml = hosts_files(sections(output)["containerd"])[HUB]
    hosts_dir = tmp_path / "certs.d"
    (hosts_dir / HUB).mkdir(parents=True)
    (hosts_dir / HUB / "hosts.toml").write_text(hosts_toml)

    pulled = containerd.ctr(
        "images",
        "pull",
        "--hosts-dir",
        str(hosts_dir),
        "--platform",
        ARM64,
        f"{HUB}/library/app:v1",
    )
    assert f"unpacking {ARM64}" in pulled.stdout, pulled.stdout
    child = APP.child(ARM64)
    assert containerd.content(APP.digest) == APP.index.data
    assert containerd.content(child.digest) == child.manifest.data
    for blob in (child.config, *child.layers):
        assert containerd.content(blob.digest) == blob.data, blob.digest
    served = [e for e in server.access_log() if "ns=docker.io" in e.target]
    assert any(
        e.target.startswith(f"/v2/library/app/blobs/{child.layers[0].digest}") for e in served
    ), served
