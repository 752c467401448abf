"""A mirror fill whose disk runs out of room fails as STORAGE_FULL, not as an upstream failure,
and discards its upload."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator

import pytest

from mirror.fill import BlobFill
from registry.errors import RegistryError
from registry.reference import Digest

DATA = b"x" * 4096


class FullDisk:
    """An upload whose `failing` step raises what a full disk raises."""

    id = "full"
    offset = 0

    def __init__(self, failing: str, error: Exception) -> None:
        self.failing = failing
        self.error = error
        self.cancelled = False

    async def write(self, chunk: bytes) -> None:
        if self.failing == "write":
            raise self.error

    async def commit(self, digest: Digest) -> None:
        if self.failing == "commit":
            raise self.error

    async def cancel(self) -> None:
        self.cancelled = True

    async def close(self) -> None:
        pass


class Body:
    """The part of an aiohttp response a fill reads."""

    def __init__(self) -> None:
        self.content = self

    async def __aenter__(self) -> Body:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def iter_any(self) -> AsyncIterator[bytes]:
        yield DATA


def _blamed_on_upstream(err: BaseException) -> RegistryError:
    return RegistryError("UNAVAILABLE", "upstream test.example failed")


@pytest.mark.parametrize("failing", ["write", "commit"])
@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EDQUOT, "Disk quota exceeded"),
    RegistryError("STORAGE_FULL", "the registry's storage is full"),
], ids=["ENOSPC", "EDQUOT", "STORAGE_FULL"])  # fmt: skip
async def test_a_full_disk_fails_the_fill_as_storage_full(failing: str, error: Exception) -> None:
    upload = FullDisk(failing, error)
    fill = BlobFill(Digest.of(DATA), len(DATA), upload, "/nonexistent/upload", "/nonexistent/blob",
                    Body(), _blamed_on_upstream)  # type: ignore[arg-type]  # fmt: skip
    await fill.run()
    with pytest.raises(RegistryError) as failed:
        fill.done.result()
    assert (failed.value.code, failed.value.status) == ("STORAGE_FULL", 507), failed.value
    assert upload.cancelled, "the upload of a failed fill was left behind"
