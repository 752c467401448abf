"""Progress for long commands: a live bar on a terminal, only the summary elsewhere (CI logs),
and a list of failures that names each image and the reason.

The bar is tqdm's (rate and time left come with it); it is only created when the stream is a
terminal, so what a log or a script reads (notes on the stream, the summary on stdout, the
failures on stderr) is written here, by hand, and does not depend on tqdm's formatting."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from tqdm import tqdm  # type: ignore[import-untyped]

REFRESH = 0.2


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


@dataclass
class Progress:
    """Counts what a command did. Callers may set `items` and `total_items` directly (export
    starts counting again for its second phase); the bar follows them on the next `add`."""

    verb: str
    total_items: int = 0
    items: int = 0
    bytes: int = 0
    failures: list[str] = field(default_factory=list)
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    _bar: Any = field(default=None, init=False, repr=False, compare=False)  # tqdm's, once drawn

    @property
    def live(self) -> bool:
        return self.stream.isatty()

    def add(self, items: int = 0, nbytes: int = 0) -> None:
        self.items += items
        self.bytes += nbytes
        if self.live:
            self._draw()

    def _draw(self) -> None:
        """Moves the bar to the counters. tqdm limits redraws to one per REFRESH; `miniters=0`
        makes it check on every call, so a byte-only `add` (import) moves the bar too."""
        total = self.total_items or None
        if self._bar is None:
            self._bar = tqdm(desc=self.verb, total=total, unit=" items", file=self.stream, leave=False,
                             mininterval=REFRESH, miniters=0, dynamic_ncols=True)
        elif self.items < self._bar.n or total != self._bar.total:
            self._bar.reset(total=total)
        self._bar.set_postfix_str(human_bytes(self.bytes), refresh=False)
        self._bar.update(self.items - self._bar.n)

    def fail(self, what: str, why: str) -> None:
        """Recorded for the summary; on a terminal also shown at once, above the bar."""
        self.failures.append(f"{what}: {why}")
        if self.live:
            tqdm.write(f"error: {what}: {why}", file=self.stream)

    def note(self, message: str) -> None:
        if self.live:
            tqdm.write(message, file=self.stream)
        else:
            self.stream.write(message + "\n")

    def finish(self, summary: str) -> int:
        """Clears the bar, prints the summary line (on stdout) and returns the exit status."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.failures:
            summary += f"; {len(self.failures)} failed"
        print(summary, flush=True)
        for failure in self.failures:
            print(f"  failed: {failure}", file=sys.stderr)
        return 1 if self.failures else 0
