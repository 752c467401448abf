"""A mirror whose data folder is too small for what it is asked to cache: a full disk is
STORAGE_FULL (507), never blamed on the upstream, and leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers.client import describe
from tests.helpers.disks import small_tmpfs
from tests.helpers.upstream import MIB, MirrorConfig, Upstream, UpstreamEntry, oci_error_codes, patterned_blob

from .conftest import HUB, MirrorFactory

DISK = 8 * MIB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs where the ocireg started as workdir "ocireg" keeps its data; requested
    before the server, so it is unmounted only after the server stopped."""
    with small_tmpfs(tmp_path / "ocireg" / "ocireg-data", DISK) as folder:
        yield folder


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_a_blob_larger_than_the_disk_is_storage_full(
    small_disk: Path, mirror_factory: MirrorFactory, upstream: Upstream, http: requests.Session
) -> None:
    big, small = patterned_blob(12 * MIB, seed="too-big"), patterned_blob(MIB, seed="fits")
    for blob in (big, small):
        upstream.push_blob("library/big", blob)
    mirror = mirror_factory(MirrorConfig([UpstreamEntry(HUB, upstream.url)]))

    response = http.get(f"{mirror.url}/v2/docker.io/library/big/blobs/{big.digest}", timeout=60)
    assert response.status_code == 507, describe(response)
    assert oci_error_codes(response) == ["STORAGE_FULL"], describe(response)
    assert "upstream" not in response.json()["errors"][0]["message"], describe(response)
    for part in ("uploads", "blobs", "repositories"):
        assert _files(small_disk / part) == [], f"a failed fill left {part} behind"

    fits = http.get(f"{mirror.url}/v2/docker.io/library/big/blobs/{small.digest}", timeout=60)
    assert fits.status_code == 200 and fits.content == small.data, describe(fits)
