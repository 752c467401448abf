"""A full disk while the mirror fills its cache is the registry's failure, not the upstream's:
it is answered as STORAGE_FULL (507), whichever write ran out of room."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from registry.errors import FULL_ERRNOS, StorageFull


def is_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in FULL_ERRNOS


def storage_full(what: str) -> StorageFull:
    return StorageFull(f"no room left in the registry's storage for {what}")


@contextmanager
def cache_write(what: str) -> Iterator[None]:
    """Writes into the cache: ENOSPC or EDQUOT leave as STORAGE_FULL, other failures as they are."""
    try:
        yield
    except OSError as err:
        if is_full(err):
            raise storage_full(what) from None
        raise


async def ensure_room(folder: str, size: int, what: str) -> None:
    """Refused before the first byte when `size` cannot fit: the client then gets a 507
    instead of a 200 whose body breaks off when the disk runs out."""
    usage = await asyncio.get_running_loop().run_in_executor(None, shutil.disk_usage, folder)
    if usage.free < size:
        raise storage_full(what)
