"""HTTP byte ranges (RFC 9110 section 14) for blob GETs, including the multi-range form.

Lazy-pulling snapshotters (stargz, nydus) read several spans of a layer in one request, so
`bytes=a-b,c-d` must be answered as `multipart/byteranges`, not refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import RangeNotSatisfiable

_SPEC = re.compile(r"\s*([0-9]*)\s*-\s*([0-9]*)\s*")
MAX_RANGES = 256


@dataclass(frozen=True)
class Span:
    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length - 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def _span(spec: str, size: int) -> Span | None:
    """One range spec; None when it lies wholly past the end (unsatisfiable)."""
    match = _SPEC.fullmatch(spec)
    if not match or match.group(1) == match.group(2) == "":
        raise ValueError(spec)
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = int(last)
        return Span(max(size - suffix, 0), min(suffix, size)) if suffix > 0 and size > 0 else None
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        raise ValueError(spec)
    return Span(start, end - start + 1) if start < size else None


def _coalesce(spans: list[Span]) -> list[Span]:
    """Overlapping and adjacent spans as one, so no byte is sent twice (RFC 9110 section 15.3.7.2).

    Without this `bytes=0-,0-,...` answers a request of a few hundred bytes with hundreds of
    copies of the blob. Disjoint spans keep the order they were asked in.
    """
    ordered = sorted(spans, key=lambda span: span.start)
    merged = [ordered[0]]
    for span in ordered[1:]:
        last = merged[-1]
        if span.start <= last.start + last.length:
            end = max(last.start + last.length, span.start + span.length)
            merged[-1] = Span(last.start, end - last.start)
        else:
            merged.append(span)
    return spans if len(merged) == len(spans) else merged


def parse_ranges(header: str | None, size: int) -> list[Span] | None:
    """The satisfiable spans of a Range header, coalesced; None means serve the whole blob.

    A header we cannot parse is ignored, as RFC 9110 allows; so is one that still needs more
    than MAX_RANGES parts, whose part headers would outweigh the bytes (Apache and nginx answer
    such requests in full too). One whose every span lies past the end is answered 416 with
    the size, so the client can retry correctly.
    """
    if not header:
        return None
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes" or not specs:
        return None
    try:
        spans = [_span(spec, size) for spec in specs.split(",")]
    except ValueError:
        return None
    found = [span for span in spans if span is not None]
    if not found:
        raise RangeNotSatisfiable(size)
    merged = _coalesce(found)
    return merged if len(merged) <= MAX_RANGES else None
