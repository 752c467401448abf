"""What the processes serving one store must agree on, as protocols.

Today one process serves a store and keeps this state in memory (`inprocess.py`). Several
replicas sharing a store need it shared (a Redis, a database); every method is async so such
an implementation changes no caller. Each protocol states the guarantee callers rely on; an
implementation may give more, never less.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from ..reference import Digest

T = TypeVar("T")
F = TypeVar("F", bound="Fill")

Purpose = Literal["manifest", "tag", "token"]


class SingleFlight(Protocol):
    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        """One `work` per key at a time; callers that ask meanwhile share its result or its
        exception. The work is shielded from callers that go away, and the key is free again
        once it has finished. A multi-process implementation may re-run `work` in a follower
        after the leader finished, so every `work` re-checks the store first."""
        ...


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


@dataclass
class RunningHash:
    """The hash of an upload's first `offset` bytes, fed as they are appended."""

    hasher: Hasher
    offset: int


class UploadLocks(Protocol):
    """Upload sessions in flight: which exist (for the session limit), who writes each, and the
    running hash of each. A session has one writer at a time: two interleaved writers would feed
    the hash in one order and the file in another, and bytes unlike their digest be stored."""

    async def admit(self, upload_id: str, limit: int | None,
                    on_disk: Callable[[], Awaitable[Iterable[str]]]) -> bool:
        """Count a new session; False (and not counted) when `limit` sessions exist already.
        The first count takes `on_disk`, so sessions left from before a restart count too."""
        ...

    async def recount(self, on_disk: Iterable[str]) -> None:
        """The sessions that exist now: ones others removed stop counting, theirs start."""
        ...

    async def forget(self, upload_id: str) -> None:
        """The session is gone; it no longer counts against the limit."""
        ...

    async def claim(self, upload_id: str) -> None:
        """Become the session's one writer; raises UploadBusy while another holds it."""
        ...

    async def release(self, upload_id: str) -> None: ...

    async def claimed(self, upload_id: str) -> bool:
        """Whether a writer holds the session (an idle session's expiry skips it)."""
        ...

    async def running_hash(self, upload_id: str, algorithm: str, offset: int) -> RunningHash | None:
        """The running hash if it covers exactly the `offset` bytes on disk, a new one at offset
        0; None means the data file is the truth and is re-hashed on completion (the hash is
        dropped, so it is never fed again from the wrong place)."""
        ...

    async def drop_hash(self, upload_id: str) -> None:
        """The running hash no longer matches the file (truncated, gone); forget it."""
        ...


class Fill(Protocol):
    """One upstream blob being written into the cache, followed by the readers that want it."""

    async def run(self) -> None: ...

    @property
    def finished(self) -> bool: ...


class FillBoard(Protocol[F]):
    """Blob fills in flight, one per digest across all upstreams and repositories: content is
    addressed by digest, so two repositories asking for the same layer share one fetch."""

    async def follow_or_start(self, digest: Digest, start: Callable[[], Awaitable[F | None]]) -> F | None:
        """The running fill of `digest` this process can follow, or the one `start` opened.
        None: `start` found the blob stored already, or (multi-process) it is being filled
        elsewhere; the caller re-checks the store, else streams from upstream uncached."""
        ...

    async def wait(self, digest: Digest) -> None:
        """Until no fill of `digest` runs; how it ended is for its readers to learn."""
        ...

    async def close(self) -> None:
        """Cancel the running fills and wait until each has settled its readers."""
        ...


@dataclass(frozen=True)
class Token:
    """A bearer token of an upstream; `expires` is wall-clock time (`time.time()`), so the
    deadline means the same in every process that shares it."""

    value: str
    expires: float


class TokenCache(Protocol):
    async def get(self, upstream: str, scope: str) -> Token | None:
        """The token for `scope` at `upstream`, unless it has expired."""
        ...

    async def put(self, upstream: str, scope: str, token: Token) -> None: ...

    async def discard(self, upstream: str, scope: str, value: str) -> None:
        """The upstream refused the token `value` before it expired (revoked, a clock skew):
        drop it, unless another request has replaced it with a fresh one meanwhile."""
        ...


class PullThrottle(Protocol):
    async def due(self, key: Hashable, interval: float = 60.0) -> bool:
        """True at most once per `interval` seconds per key: a busy pull records itself
        (a write to the store) once a minute, not once per request."""
        ...


class Coordinator(Protocol):
    """All the shared state of one store's serving processes, closed with them."""

    def flight(self, purpose: Purpose) -> SingleFlight:
        """The single-flight of one purpose; keys of different purposes never meet."""
        ...

    @property
    def uploads(self) -> UploadLocks: ...

    @property
    def fills(self) -> FillBoard[Any]: ...

    @property
    def tokens(self) -> TokenCache: ...

    @property
    def pulls(self) -> PullThrottle: ...

    async def close(self) -> None:
        """Cancel and await what still runs (the fills)."""
        ...
