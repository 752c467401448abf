"""When cached content was last pulled, kept on the manifest link for `ocireg gc` to evict by."""

from __future__ import annotations

import time

from registry.reference import Digest
from registry.storage.local import LocalRepository

INTERVAL = 60.0


class PullClock:
    """Touches a manifest link at most once a minute, so a busy pull costs no extra write."""

    def __init__(self) -> None:
        self._recent: dict[tuple[str, Digest], float] = {}

    async def pulled(self, repo: LocalRepository, digest: Digest) -> None:
        key = (repo.name, digest)
        now = time.monotonic()
        if now - self._recent.get(key, -INTERVAL) < INTERVAL:
            return
        self._recent[key] = now
        await repo.manifests.links.touch(digest)
