"""A disk that fills up or fails: clients get the right OCI error, and nothing half-written is seen.

ENOSPC is real: the data folder of a real `ocireg serve` is an 8 MiB tmpfs, so pushes and mirror
fills bigger than it run the disk full. The intended answer is 507 STORAGE_FULL; the bytes of
the failed write are freed at once (a full disk must not stay full because of a push that
failed), a push that fits succeeds right after, and what was stored before is still served.

EIO cannot be produced cheaply by a real disk, so a test-only driver raises it on writes, under
aiohttp's test client: the answer is 500 INTERNAL as an OCI error body with no traceback or path
in it, and no blob, manifest or tag of the failed request is visible.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestClient

from registry.app import create_app
from registry.compose import build_services
from registry.config import Config, StorageConfig
from registry.config import MirrorConfig as MirrorSettings
from registry.storage.driver.base import Hasher
from registry.storage.driver.filesystem import FilesystemDriver, LocalFileWriter
from tests.conftest import CLOSED_UPSTREAM
from tests.helpers.client import RegistryClient
from tests.helpers.disks import small_tmpfs
from tests.helpers.images import OCI, build_image
from tests.helpers.registries import RegistryEndpoint, docker_registry_server, ocireg_server
from tests.helpers.upstream import MirrorConfig, UpstreamEntry, patterned_blob

MIB = 1024 * 1024
DISK = 8 * MIB
SLACK = 256 * 1024  # metadata a failed push may leave (an empty session folder, a link)
BEFORE = build_image(OCI, seed="campaign-disk-before")
TOO_BIG = patterned_blob(12 * MIB, seed="campaign-too-big")
FITS = patterned_blob(3 * MIB, seed="campaign-fits")
REPO = "disk/app"


# -- a small real disk ---------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """The folder `ocireg_server(tmp_path / "server")` keeps its data in, as an 8 MiB tmpfs."""
    with small_tmpfs(tmp_path / "server" / "ocireg-data", DISK) as mountpoint:
        yield mountpoint


def used(mountpoint: Path) -> int:
    st = os.statvfs(mountpoint)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def session() -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    return http


def error_codes(response: requests.Response) -> list[str]:
    try:
        return [str(e.get("code")) for e in response.json().get("errors", [])]
    except (ValueError, AttributeError):
        return []


def monolithic_push(url: str, name: str, data: bytes) -> requests.Response | str:
    """POST ?digest= with the whole blob; the answer, or the error that cut the exchange."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    try:
        return session().post(f"{url}/v2/{name}/blobs/uploads/?digest={digest}", data=data,
                              headers={"Content-Type": "application/octet-stream"}, timeout=60)
    except requests.RequestException as error:
        return f"no answer: {error!r}"


def assert_storage_full(answer: requests.Response | str) -> None:
    assert isinstance(answer, requests.Response), answer
    assert (answer.status_code, error_codes(answer)) == (507, ["STORAGE_FULL"]), (
        answer.status_code, answer.text[:500])


def assert_still_serves(url: str) -> None:
    http = session()
    child = BEFORE.children[0]
    for blob in (child.config, *child.layers):
        got = http.get(f"{url}/v2/{REPO}/blobs/{blob.digest}", timeout=30)
        assert got.status_code == 200 and got.content == blob.data, blob.digest
    manifest = http.get(f"{url}/v2/{REPO}/manifests/v1", headers={"Accept": BEFORE.index.media_type}, timeout=30)
    assert manifest.status_code == 200 and manifest.content == BEFORE.index.data


def blob_files(data: Path, pattern: str = "blobs/*/*/*/data") -> list[str]:
    return sorted(str(p.relative_to(data)) for p in data.glob(pattern))


@pytest.fixture
def full_disk_server(tmp_path: Path, small_disk: Path) -> Iterator[RegistryEndpoint]:
    with ocireg_server(tmp_path / "server") as endpoint:
        RegistryClient(endpoint.url).push_image(REPO, BEFORE, "v1")
        yield endpoint


def test_monolithic_push_bigger_than_the_disk(full_disk_server: RegistryEndpoint, small_disk: Path) -> None:
    url = full_disk_server.url
    baseline, stored = used(small_disk), blob_files(small_disk)
    assert_storage_full(monolithic_push(url, REPO, TOO_BIG.data))
    assert used(small_disk) <= baseline + SLACK, f"{used(small_disk) - baseline} bytes still held"
    assert blob_files(small_disk) == stored
    fits = monolithic_push(url, REPO, FITS.data)
    assert isinstance(fits, requests.Response) and fits.status_code == 201, fits
    got = session().get(f"{url}/v2/{REPO}/blobs/{FITS.digest}", timeout=30)
    assert got.status_code == 200 and got.content == FITS.data
    assert_still_serves(url)


def test_chunked_push_bigger_than_the_disk(full_disk_server: RegistryEndpoint, small_disk: Path) -> None:
    """PATCH by PATCH the disk fills: the chunk that does not fit gets 507; once the client
    cancels the session its bytes are gone and a push that fits succeeds."""
    url, http = full_disk_server.url, session()
    baseline = used(small_disk)
    location = http.post(f"{url}/v2/{REPO}/blobs/uploads/", timeout=30).headers["Location"]
    statuses = []
    for start in range(0, TOO_BIG.size, MIB):
        answer = http.patch(f"{url}{location}", data=TOO_BIG.data[start:start + MIB], timeout=30,
                            headers={"Content-Range": f"{start}-{start + MIB - 1}"})
        statuses.append(answer.status_code)
        if answer.status_code != 202:
            break
        location = answer.headers["Location"]
    assert statuses[-1] != 202, "12 MiB went into an 8 MiB disk"
    assert_storage_full(answer)
    cancelled = http.delete(f"{url}{location}", timeout=30)
    assert cancelled.status_code in (204, 404), cancelled.text
    assert used(small_disk) <= baseline + SLACK, f"{used(small_disk) - baseline} bytes still held"
    fits = monolithic_push(url, REPO, FITS.data)
    assert isinstance(fits, requests.Response) and fits.status_code == 201, fits
    assert_still_serves(url)


def test_mirror_fill_bigger_than_the_disk(tmp_path: Path, small_disk: Path) -> None:
    with docker_registry_server(tmp_path / "upstream") as upstream:
        RegistryClient(upstream.url, timeout=120).push_blob("library/big", TOO_BIG)
        config = MirrorConfig([UpstreamEntry("docker.io", upstream.url)]).write(tmp_path / "ocireg.toml")
        with ocireg_server(tmp_path / "server", ["--config", str(config)]) as mirror:
            RegistryClient(mirror.url).push_image(REPO, BEFORE, "v1")
            baseline, stored = used(small_disk), blob_files(small_disk)
            path = f"/v2/docker.io/library/big/blobs/{TOO_BIG.digest}"
            try:
                answer: requests.Response | str = session().get(f"{mirror.url}{path}", timeout=60)
            except requests.RequestException as error:
                answer = f"no answer: {error!r}"
            assert_storage_full(answer)
            assert blob_files(small_disk) == stored, "a blob bigger than the disk was cached"
            assert used(small_disk) <= baseline + SLACK, f"{used(small_disk) - baseline} bytes still held"
            assert_still_serves(mirror.url)


# -- EIO from a test-only driver -------------------------------------------------------------------


class FailingWriter(LocalFileWriter):
    """Writes half of the chunk, then fails as a disk does."""

    async def write(self, chunk: bytes, hasher: Hasher | None = None) -> None:
        await super().write(chunk[: len(chunk) // 2], hasher)
        raise OSError(errno.EIO, os.strerror(errno.EIO))


class FailingDriver(FilesystemDriver):
    """A filesystem driver whose writes fail with EIO once `fail` names a path fragment.

    `append` fails on every chunk; `write` (links, tags, manifests, upload state) fails for
    paths containing the fragment."""

    fail: str | None = None

    async def append(self, path: str, *, create: bool = False) -> LocalFileWriter:
        writer = await super().append(path, create=create)
        if self.fail is None or self.fail not in path:
            return writer
        assert writer._fd is not None
        return FailingWriter(writer._fd)  # takes over the descriptor; `writer` is dropped unclosed

    async def write(self, path: str, data: bytes) -> None:
        if self.fail is not None and self.fail in path:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        await super().write(path, data)


@pytest.fixture
async def eio_client(
    aiohttp_client: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> TestClient[web.Request, web.Application]:
    monkeypatch.setattr(FailingDriver, "fail", None)
    mirror = MirrorSettings(upstreams=(CLOSED_UPSTREAM,))
    config = Config(storage=StorageConfig(root=str(data_dir)), mirror=mirror)
    app = create_app(config, build_services(config, driver=FailingDriver(str(data_dir))))
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    return client


def blob_body(seed: str) -> tuple[bytes, str]:
    data = hashlib.sha256(seed.encode()).digest() * 8192
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


async def assert_internal(response: Any, data_dir: Path) -> None:
    text = await response.text()
    assert response.status == 500, text
    assert [e["code"] for e in json.loads(text)["errors"]] == ["INTERNAL"], text
    assert "Traceback" not in text and str(data_dir) not in text and 'File "' not in text, text


async def test_eio_on_blob_write(
    eio_client: TestClient[web.Request, web.Application], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, digest = blob_body("eio-blob")
    monkeypatch.setattr(FailingDriver, "fail", "uploads/")
    response = await eio_client.post(f"/v2/{REPO}/blobs/uploads/?digest={digest}", data=data)
    await assert_internal(response, data_dir)
    monkeypatch.setattr(FailingDriver, "fail", None)
    assert (await eio_client.head(f"/v2/{REPO}/blobs/{digest}")).status == 404
    assert not blob_files(data_dir)
    retried = await eio_client.post(f"/v2/{REPO}/blobs/uploads/?digest={digest}", data=data)
    assert retried.status == 201, await retried.text()
    got = await eio_client.get(f"/v2/{REPO}/blobs/{digest}")
    assert await got.read() == data


async def _push_config(client: TestClient[web.Request, web.Application]) -> dict[str, Any]:
    config, digest = b"{}", "sha256:" + hashlib.sha256(b"{}").hexdigest()
    response = await client.post(f"/v2/{REPO}/blobs/uploads/?digest={digest}", data=config)
    assert response.status == 201, await response.text()
    return {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": len(config)}


def _manifest(config: dict[str, Any]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": config, "layers": []}).encode()


@pytest.mark.parametrize("fragment", ["/_manifests/", "blobs/sha256/"])
async def test_eio_on_manifest_write(
    eio_client: TestClient[web.Request, web.Application], data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, fragment: str,
) -> None:
    """The manifest's bytes or its link fail: no manifest, no tag."""
    manifest = _manifest(await _push_config(eio_client))
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    monkeypatch.setattr(FailingDriver, "fail", fragment)
    headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    response = await eio_client.put(f"/v2/{REPO}/manifests/v1", data=manifest, headers=headers)
    await assert_internal(response, data_dir)
    monkeypatch.setattr(FailingDriver, "fail", None)
    assert (await eio_client.get(f"/v2/{REPO}/manifests/v1")).status == 404
    assert (await eio_client.get(f"/v2/{REPO}/manifests/{digest}")).status == 404
    tags = await (await eio_client.get(f"/v2/{REPO}/tags/list")).json()
    assert "v1" not in (tags.get("tags") or [])


async def test_eio_on_tag_write(
    eio_client: TestClient[web.Request, web.Application], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest is whole and may stay reachable by digest; the tag must not point anywhere."""
    manifest = _manifest(await _push_config(eio_client))
    monkeypatch.setattr(FailingDriver, "fail", "/_tags/")
    headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    response = await eio_client.put(f"/v2/{REPO}/manifests/v1", data=manifest, headers=headers)
    await assert_internal(response, data_dir)
    monkeypatch.setattr(FailingDriver, "fail", None)
    assert (await eio_client.get(f"/v2/{REPO}/manifests/v1")).status == 404
    assert not blob_files(data_dir, f"repositories/{REPO}/_tags/*")
