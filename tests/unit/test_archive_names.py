"""Properties of archive member names: a member is the index, the layout marker or a blob only
when its name is exactly that (after one leading `./`), whatever else the name holds."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.reference import Digest
from registry.tools.archive import INDEX_FILE, LAYOUT_FILE, ArchiveError, member_digest, member_path

HEX = hashlib.sha256(b"x").hexdigest()
PIECES = ["", ".", "..", "./", "/", "blobs", "sha256", "sha512", HEX, HEX[:10], HEX.upper(), INDEX_FILE,
          f".{INDEX_FILE}", LAYOUT_FILE, "\x00", "\\", " "]
names = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("/".join),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join),
)


def _digest(name: str) -> Digest | ArchiveError | None:
    try:
        return member_digest(name)
    except ArchiveError as err:
        return err


@settings(max_examples=200, deadline=None)
@given(names)
def test_a_blob_member_is_exactly_blobs_alg_hex(name: str) -> None:
    found = _digest(name)
    if isinstance(found, Digest):
        assert name in (f"blobs/{found.algorithm}/{found.hex}", f"./blobs/{found.algorithm}/{found.hex}")
    elif found is None:
        parts = member_path(name).split("/")
        assert len(parts) != 3 or parts[0] != "blobs"
    else:
        assert member_path(name).startswith("blobs/")


@settings(max_examples=200, deadline=None)
@given(names)
def test_only_exact_names_are_the_index_and_the_layout(name: str) -> None:
    assert (member_path(name) == INDEX_FILE) == (name in (INDEX_FILE, f"./{INDEX_FILE}"))
    assert (member_path(name) == LAYOUT_FILE) == (name in (LAYOUT_FILE, f"./{LAYOUT_FILE}"))


def test_names_that_look_like_the_index_are_not() -> None:
    for name in (".index.json", "../index.json", "/index.json", "././index.json", ".//index.json"):
        assert member_path(name) != INDEX_FILE, name
    assert member_digest(f"../blobs/sha256/{HEX}") is None
    assert member_digest(f"./blobs/sha256/{HEX}") == Digest("sha256", HEX)
