"""The `Content-Range` of a chunk: the parser accepts exactly its grammar, and the handlers
refuse a chunk whose body disagrees with it without keeping any of its bytes."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from registry.errors import RegistryError
from registry.handlers.base import ChunkRange, parse_content_range

from .oci import error_code, sha256

GRAMMAR = re.compile(r"(?:bytes[ =])?([0-9]{1,19})-([0-9]{1,19})(?:/(?:[0-9]{1,19}|\*))?")
DATA = os.urandom(3000)


@given(st.text())
def test_any_text_parses_or_is_range_invalid(header: str) -> None:
    match = GRAMMAR.fullmatch(header.strip(" \t"))
    if match is None or int(match.group(2)) < int(match.group(1)):
        with pytest.raises(RegistryError, match="RANGE_INVALID"):
            parse_content_range(header)
        return
    parsed = parse_content_range(header)
    assert parsed == ChunkRange(int(match.group(1)), int(match.group(2)))
    assert parsed.end >= parsed.start


@given(st.from_regex(GRAMMAR, fullmatch=True))
def test_the_grammar_is_accepted_when_end_is_not_before_start(header: str) -> None:
    match = GRAMMAR.fullmatch(header)
    assert match is not None
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        with pytest.raises(RegistryError):
            parse_content_range(header)
    else:
        assert parse_content_range(header) == ChunkRange(start, end)


@pytest.mark.parametrize("header", ["0-", "-5", "5-4", "bytes=1-2/", "\u0661-\u0662", "0-9" + "0" * 19, "1-2/3/4",
                                    "bytes  1-2", "0x1-0x2", "+1-2"])
def test_outside_the_grammar(header: str) -> None:
    with pytest.raises(RegistryError):
        parse_content_range(header)


async def _stream(data: bytes) -> AsyncIterator[bytes]:
    """A chunked body: no Content-Length for the server to check before reading."""
    yield data


async def _session_with_first_chunk(client: TestClient) -> str:
    location = (await client.post("/v2/app/blobs/uploads/")).headers["Location"]
    first = await client.patch(location, data=DATA[:1000], headers={"Content-Range": "0-999"})
    assert first.status == 202
    return first.headers["Location"]


async def _assert_still_at_first_chunk(client: TestClient, location: str) -> None:
    status = await client.get(location)
    assert status.headers["Range"] == "0-999"
    rest = await client.patch(location, data=DATA[1000:], headers={"Content-Range": f"1000-{len(DATA) - 1}"})
    assert rest.status == 202, await rest.text()
    done = await client.put(f"{location}?digest={sha256(DATA)}")
    assert done.status == 201, await done.text()


@pytest.mark.parametrize(("body", "declared"), [
    (DATA[1000:1500], "1000-2999"),   # fewer bytes than declared
    (DATA[1000:], "1000-1999"),       # more bytes than declared
])
async def test_chunk_unlike_its_range_is_refused_and_not_kept(client: TestClient, body: bytes, declared: str) -> None:
    location = await _session_with_first_chunk(client)
    resp = await client.patch(location, data=_stream(body), headers={"Content-Range": declared})
    assert resp.status == 416 and await error_code(resp) == "RANGE_INVALID"
    await _assert_still_at_first_chunk(client, location)


async def test_range_that_disagrees_with_content_length_is_refused(client: TestClient) -> None:
    location = await _session_with_first_chunk(client)
    resp = await client.patch(location, data=DATA[1000:1500], headers={"Content-Range": "1000-2999"})
    assert resp.status == 416 and await error_code(resp) == "RANGE_INVALID"
    await _assert_still_at_first_chunk(client, location)
    put = await client.post("/v2/app/blobs/uploads/")
    short = await client.put(f"{put.headers['Location']}?digest={sha256(DATA)}", data=DATA[:10],
                             headers={"Content-Range": "0-99"})
    assert short.status == 416
