"""Recently read manifests, in memory: content named by its digest never changes, so a copy
needs no invalidation, and a pull reads the same few manifests many times."""

from __future__ import annotations

from collections import OrderedDict

from ..reference import Digest

DEFAULT_BUDGET = 32 * 1024 * 1024
MAX_ENTRY = 1024 * 1024


class ContentMemo:
    """Least recently used bytes by digest, within a byte budget."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self.used = 0
        self._entries: OrderedDict[Digest, bytes] = OrderedDict()

    def get(self, digest: Digest) -> bytes | None:
        data = self._entries.get(digest)
        if data is not None:
            self._entries.move_to_end(digest)
        return data

    def put(self, digest: Digest, data: bytes) -> None:
        if len(data) > MAX_ENTRY or digest in self._entries:
            return
        self._entries[digest] = data
        self.used += len(data)
        while self.used > self.budget:
            _, evicted = self._entries.popitem(last=False)
            self.used -= len(evicted)
