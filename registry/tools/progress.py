"""Progress for long commands: a live line on a terminal, only the summary elsewhere (CI logs),
and a list of failures that names each image and the reason."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

REFRESH = 0.2


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


@dataclass
class Progress:
    verb: str
    total_items: int = 0
    items: int = 0
    bytes: int = 0
    failures: list[str] = field(default_factory=list)
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    _last: float = 0.0

    @property
    def live(self) -> bool:
        return self.stream.isatty()

    def add(self, items: int = 0, nbytes: int = 0) -> None:
        self.items += items
        self.bytes += nbytes
        now = time.monotonic()
        if self.live and now - self._last >= REFRESH:
            self._last = now
            total = f"/{self.total_items}" if self.total_items else ""
            self.stream.write(f"\r{self.verb}: {self.items}{total} items, {human_bytes(self.bytes)}   ")
            self.stream.flush()

    def fail(self, what: str, why: str) -> None:
        """Recorded for the summary; on a terminal also shown at once."""
        self.failures.append(f"{what}: {why}")
        if self.live:
            self.stream.write(f"\rerror: {what}: {why}\n")

    def note(self, message: str) -> None:
        if self.live:
            self.stream.write("\r")
        self.stream.write(message + "\n")

    def finish(self, summary: str) -> int:
        """Prints the summary line (on stdout) and returns the exit status."""
        if self.live:
            self.stream.write("\r" + " " * 60 + "\r")
        if self.failures:
            summary += f"; {len(self.failures)} failed"
        print(summary, flush=True)
        for failure in self.failures:
            print(f"  failed: {failure}", file=sys.stderr)
        return 1 if self.failures else 0
