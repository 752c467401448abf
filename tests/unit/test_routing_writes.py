"""Property: whatever name and `ns` a client sends, a name under a mirrored namespace is never
handed out writable, and routing fails only with OCI errors."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from mirror.registry import MirrorRegistry
from registry.config import MirrorConfig, UpstreamConfig
from registry.errors import RegistryError
from registry.reference import Digest, parse_name
from registry.storage.driver.filesystem import FilesystemDriver
from registry.storage.local import LocalRegistry
from registry.storage.protocols import Repository

UPSTREAMS = (
    UpstreamConfig("docker.io", "http://127.0.0.1:9"),
    UpstreamConfig("ghcr.io", "http://127.0.0.1:9", include=("org/*",)),
    UpstreamConfig("registry.k8s.io", "http://127.0.0.1:9", exclude=("pause",)),
)
HOSTS = tuple(u.name for u in UPSTREAMS)
DIGEST = Digest.of(b"x")
MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'


def _spellings(host: str) -> list[str]:
    return [host, host.upper(), host.title(), f"{host}.", f" {host} ", f"{host}:443", f"x{host}", host[:-1]]


COMPONENT = st.from_regex(r"[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4})?", fullmatch=True)
PATHS = st.lists(COMPONENT, min_size=0, max_size=3).map("/".join)
SPELT = st.sampled_from([s for host in HOSTS for s in _spellings(host)])
NAMES = st.one_of(
    st.builds(lambda host, rest: f"{host}/{rest}" if rest else host, SPELT, PATHS),
    st.builds(lambda first, host, rest: f"{first}/{host}/{rest}", COMPONENT, SPELT, PATHS),
    PATHS,
    st.text(max_size=30),
)
NS = st.one_of(st.none(), SPELT, st.sampled_from(["", "evil", "quay.io", "."]), st.text(max_size=20))


def _writes(repo: Repository, source: Repository) -> list[Callable[[], Awaitable[object]]]:
    return [
        lambda: repo.uploads.start(),
        lambda: repo.uploads.resume("0123456789abcdef0123456789abcdef"),
        lambda: repo.blobs.mount(DIGEST, source),
        lambda: repo.blobs.delete(DIGEST),
        lambda: repo.manifests.put(MANIFEST, None, Digest.of(MANIFEST)),
        lambda: repo.manifests.delete(DIGEST),
        lambda: repo.tags.set("v1", DIGEST),
        lambda: repo.tags.delete("v1"),
    ]


async def _outcome(write: Callable[[], Awaitable[object]]) -> str:
    """The OCI code a write failed with, or "accepted"; anything else propagates."""
    try:
        await write()
    except RegistryError as err:
        return err.code
    return "accepted"


async def _check(root: str, raw: str, ns: str | None) -> None:
    registry = MirrorRegistry(LocalRegistry(FilesystemDriver(root)), MirrorConfig(upstreams=UPSTREAMS))
    await registry.open()
    try:
        try:
            name = parse_name(raw)
        except RegistryError as err:
            refused: RegistryError | None = err
        else:
            refused = None
        if refused is not None:
            assert refused.code == "NAME_INVALID"
            return
        repo = registry.repository(name, ns)
        mirrored = "/" in name and name.split("/", 1)[0] in HOSTS
        for write in _writes(repo, registry.repository("team/source")):
            code = await _outcome(write)
            assert not mirrored or code == "DENIED", f"{name} with ns={ns!r} answered a write with {code}"
    finally:
        await registry.close()


@settings(max_examples=50, deadline=None)
@given(NAMES, NS)
def test_a_mirrored_namespace_is_never_writable(raw: str, ns: str | None) -> None:
    with tempfile.TemporaryDirectory() as root:
        asyncio.run(_check(root, raw, ns))
