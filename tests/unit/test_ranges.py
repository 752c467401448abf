from __future__ import annotations

import pytest

from registry.errors import RegistryError
from registry.ranges import Span, parse_ranges


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
