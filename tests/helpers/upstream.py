"""Upstreams for the mirror tests, and the ocireg configuration that points at them.

An upstream is CNCF Distribution (`docker-registry`) on a free loopback port, seeded with the
deterministic images of `images.py` by `skopeo copy --all --preserve-digests`, so the digests a
test expects are known before anything is pulled. `Upstream` wraps a running endpoint with the
calls a test needs: seed an image, push a bare blob, ask the upstream itself what a tag points to.

`MirrorConfig`/`UpstreamEntry` write the TOML that `ocireg serve --config FILE` reads. A file that
lists `[[mirror.upstreams]]` replaces the built-in public registries, so nothing but loopback
upstreams is ever configured in a test.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.helpers.client import MANIFEST_ACCEPT, RegistryClient
from tests.helpers.images import (
    DOCKER,
    OCI,
    Blob,
    MultiArchImage,
    build_image,
    write_oci_layout,
)
from tests.helpers.registries import RegistryEndpoint
from tests.helpers.skopeo import Skopeo, layout_reference

MIB = 1024 * 1024


@dataclass
class Upstream:
    """A running upstream registry and how to put content into it."""

    endpoint: RegistryEndpoint
    workdir: Path
    skopeo: Skopeo
    creds: str | None = None  # "user:password" for a token-auth upstream's pushes
    _layouts: int = 0

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def hostport(self) -> str:
        return self.endpoint.hostport

    def seed(self, image: MultiArchImage, repo: str, tag: str) -> str:
        """Copy `image` to `repo:tag` with skopeo, digests preserved; returns the index digest."""
        self._layouts += 1
        layout = write_oci_layout(image, self.workdir / f"layout-{self._layouts}", tag)
        flags = ("--dest-creds", self.creds) if self.creds else ()
        self.skopeo.copy_all(
            layout_reference(layout, image, tag),
            f"docker://{self.hostport}/{repo}:{tag}",
            *flags,
        )
        return image.digest

    def push_blob(self, repo: str, blob: Blob) -> None:
        """A bare blob (monolithic upload); only for an upstream without auth."""
        RegistryClient(self.url, timeout=120).push_blob(repo, blob)

    def manifest_digest(self, repo: str, reference: str) -> str:
        """What the upstream itself says `repo:reference` is (HEAD, Docker-Content-Digest)."""
        response = _session().head(
            f"{self.url}/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        assert response.status_code == 200, (response.status_code, response.headers)
        return str(response.headers["Docker-Content-Digest"])

    def blob_gets(self, repo: str, digest: str) -> int:
        """How many GETs of that blob the upstream has logged (any status)."""
        target = f"/v2/{repo}/blobs/{digest}"
        return sum(
            1 for e in self.endpoint.access_log() if e.method == "GET" and e.target == target
        )

    def stop(self) -> None:
        """Stop the upstream process (its fixture's teardown then has nothing left to stop)."""
        self.endpoint.process.stop()


@dataclass(frozen=True)
class UpstreamEntry:
    """One `[[mirror.upstreams]]` table."""

    name: str
    url: str
    tag_ttl: str | None = "0s"
    max_stale: str | None = None
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    include: Sequence[str] | None = None
    exclude: Sequence[str] | None = None

    def toml(self) -> str:
        lines = ["[[mirror.upstreams]]"]
        for key in ("name", "url", "tag_ttl", "max_stale", "username", "password", "password_env"):
            value = getattr(self, key)
            if value is not None:
                lines.append(f"{key} = {json.dumps(value)}")
        for key in ("include", "exclude"):
            patterns = getattr(self, key)
            if patterns is not None:
                lines.append(f"{key} = {json.dumps(list(patterns))}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class MirrorConfig:
    """The `[mirror]` section of an ocireg config file."""

    upstreams: Sequence[UpstreamEntry]
    default: str = ""
    offline: bool = False
    extra: str = ""  # more TOML, appended verbatim

    def toml(self) -> str:
        head = (
            "[mirror]\n"
            f"default = {json.dumps(self.default)}\n"
            f"offline = {'true' if self.offline else 'false'}\n\n"
        )
        return head + "\n".join(u.toml() for u in self.upstreams) + self.extra

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.toml())
        return path


def patterned_blob(size: int, seed: str = "ocireg-big") -> Blob:
    """`size` bytes that are quick to make and not all alike: a 64 KiB pattern, each MiB stamped.

    Low entropy on purpose (generating 100 MB of random bytes is slow), yet no two MiB are
    equal, so a server that mixes up offsets or chunks produces a wrong digest.
    """
    pattern = hashlib.sha256(seed.encode()).digest() * (64 * 1024 // 32)
    block = pattern * (MIB // len(pattern))
    parts = []
    for i in range(0, size, MIB):
        stamp = f"{seed} MiB {i // MIB:08d}\n".encode()
        parts.append((stamp + block[len(stamp) :])[: min(MIB, size - i)])
    return Blob("application/octet-stream", b"".join(parts))


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


# -- the images every mirror test can count on --------------------------------------------------

# library/app:v1 (OCI index), library/app:list (Docker manifest list), library/other:v1 (an OCI
# index that a test leaves unpulled, to see what the mirror does with content it never cached).
APP = build_image(OCI, seed="mirror-app")
LIST = build_image(DOCKER, seed="mirror-list")
OTHER = build_image(OCI, seed="mirror-other")
SEEDED = (("library/app", "v1", APP), ("library/app", "list", LIST), ("library/other", "v1", OTHER))


def assert_dir_holds(out: Path, image: MultiArchImage) -> None:
    """A `skopeo copy --all ... dir:OUT` holds exactly the image's bytes: index, children, blobs."""
    assert (out / "manifest.json").read_bytes() == image.index.data, "index differs"
    for child in image.children:
        manifest = out / f"{child.digest[7:]}.manifest.json"
        assert manifest.read_bytes() == child.manifest.data, f"{child.name} manifest differs"
        for blob in (child.config, *child.layers):
            assert (out / blob.digest[7:]).read_bytes() == blob.data, f"{child.name} {blob.digest}"


def oci_error_codes(response: requests.Response) -> list[str]:
    """The `code`s of an OCI error body; [] when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [str(e.get("code")) for e in errors or [] if isinstance(e, dict)]


def oci_error_text(response: requests.Response) -> str:
    """Codes and messages of an OCI error body, in one string to search."""
    try:
        return json.dumps(response.json())
    except ValueError:
        return response.text


def skopeo_fails(skopeo: Skopeo, *args: str, timeout: float = 60.0) -> str:
    """Run a skopeo command that must fail (e.g. a pull the mirror cannot serve); its stderr."""
    argv = [skopeo.binary, "--insecure-policy", *args]
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=skopeo.env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode != 0, f"{' '.join(argv)} succeeded:\n{result.stdout}{result.stderr}"
    return result.stderr
