from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import RegistryError
from registry.ranges import MAX_RANGES, Span, parse_ranges


def test_no_or_foreign_header_means_whole() -> None:
    for header in (None, "", "items=0-1", "bytes=", "bytes=5-1", "bytes=x-y", "bytes=-"):
        assert parse_ranges(header, 100) is None, header


def test_forms() -> None:
    assert parse_ranges("bytes=0-9", 100) == [Span(0, 10)]
    assert parse_ranges("bytes=90-", 100) == [Span(90, 10)]
    assert parse_ranges("bytes=90-500", 100) == [Span(90, 10)]
    assert parse_ranges("bytes=-5", 100) == [Span(95, 5)]
    assert parse_ranges("bytes=-500", 100) == [Span(0, 100)]
    assert parse_ranges("bytes=0-0, 10-19 ,-1", 100) == [Span(0, 1), Span(10, 10), Span(99, 1)]


def test_partly_unsatisfiable_keeps_the_rest() -> None:
    assert parse_ranges("bytes=0-9,200-300", 100) == [Span(0, 10)]


def test_unsatisfiable() -> None:
    for header, size in (("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0)):
        with pytest.raises(RegistryError) as err:
            parse_ranges(header, size)
        assert err.value.status == 416
        assert err.value.headers["Content-Range"] == f"bytes */{size}"


def test_overlapping_and_adjacent_spans_merge() -> None:
    assert parse_ranges("bytes=" + ",".join(["0-"] * 256), 100) == [Span(0, 100)]
    assert parse_ranges("bytes=0-9,5-19,20-29,50-59", 100) == [Span(0, 30), Span(50, 10)]
    assert parse_ranges("bytes=90-99,0-9,5-14", 100) == [Span(0, 15), Span(90, 10)]


def test_disjoint_spans_keep_the_requested_order() -> None:
    assert parse_ranges("bytes=50-59,0-9", 100) == [Span(50, 10), Span(0, 10)]
    assert parse_ranges("bytes=-10,0-0", 100) == [Span(90, 10), Span(0, 1)]


def test_more_parts_than_the_cap_means_whole() -> None:
    spaced = ",".join(f"{i * 2}-{i * 2}" for i in range(MAX_RANGES + 1))
    assert parse_ranges(f"bytes={spaced}", 10_000) is None
    capped = ",".join(f"{i * 2}-{i * 2}" for i in range(MAX_RANGES))
    assert len(parse_ranges(f"bytes={capped}", 10_000) or []) == MAX_RANGES


_NUMBER = st.one_of(st.just(""), st.integers(0, 300).map(str), st.integers(0, 10**30).map(str),
                    st.sampled_from([" ", "x", "-1", "+1", "٣", "0x1", "1e3"]))
_SPEC = st.one_of(st.builds(lambda a, b: f"{a}-{b}", _NUMBER, _NUMBER), st.text(max_size=8))
_HEADER = st.one_of(
    st.builds(lambda unit, specs: f"{unit}={','.join(specs)}",
              st.sampled_from(["bytes", "BYTES", " bytes ", "items", ""]), st.lists(_SPEC, max_size=20)),
    st.text(max_size=60),
    st.none(),
)


def _wanted(header: str, size: int) -> set[int]:
    """The bytes a well-formed header asks for, by brute force over the blob."""
    wanted: set[int] = set()
    for spec in header.partition("=")[2].split(","):
        first, _, last = spec.strip().partition("-")
        if first.strip() == "":
            wanted.update(range(max(size - int(last), 0), size))
        else:
            wanted.update(range(int(first), min(int(last), size - 1) + 1 if last.strip() else size))
    return wanted


@settings(deadline=None)
@given(header=_HEADER, size=st.integers(0, 300))
def test_parser_properties(header: str | None, size: int) -> None:
    refused: RegistryError | None = None
    try:
        spans = parse_ranges(header, size)
    except RegistryError as err:
        refused, spans = err, None
    assert refused is None or refused.status == 416
    if spans is None:
        return
    assert 0 < len(spans) <= MAX_RANGES
    for span in spans:
        assert span.length > 0 and span.start >= 0 and span.start + span.length <= size
    ordered = sorted(spans, key=lambda span: span.start)
    for before, after in itertools.pairwise(ordered):
        assert before.start + before.length < after.start  # neither overlapping nor adjacent
    assert sum(span.length for span in spans) <= size
    assert header is not None
    covered = {offset for span in spans for offset in range(span.start, span.start + span.length)}
    assert covered == _wanted(header, size)
