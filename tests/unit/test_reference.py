from __future__ import annotations

import pytest

from registry.errors import RegistryError
from registry.reference import Digest, parse_name, parse_reference, parse_tag


@pytest.mark.parametrize("name", ["a", "library/alpine", "team/app/api", "a.b_c__d---e", "x" * 255, "0/1"])
def test_valid_names(name: str) -> None:
    assert parse_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "../x", "a/../b", "a/", "/a", "_a", "a/_b", "a__-b", "a..b",
                                  "a" * 256, "a b", "a%2fb", ".", "a/.b"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(RegistryError) as err:
        parse_name(name)
    assert err.value.code == "NAME_INVALID"


def test_tags() -> None:
    assert parse_tag("v1.2.3-rc_1") == "v1.2.3-rc_1"
    assert parse_tag("_x") == "_x"
    for bad in ("", ".x", "-x", "a" * 129, "a/b", "..", "a:b"):
        with pytest.raises(RegistryError):
            parse_tag(bad)


def test_digests() -> None:
    hexpart = "a" * 64
    assert str(Digest.parse(f"sha256:{hexpart}")) == f"sha256:{hexpart}"
    assert Digest.of(b"") == Digest.parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    for bad, code in (("sha256:abc", "DIGEST_INVALID"), (f"sha256:{'A' * 64}", "DIGEST_INVALID"),
                      (f"md5:{'a' * 32}", "UNSUPPORTED"), ("sha256", "DIGEST_INVALID"),
                      (f"sha512:{'a' * 64}", "DIGEST_INVALID")):
        with pytest.raises(RegistryError) as err:
            Digest.parse(bad)
        assert err.value.code == code, bad


def test_reference_is_tag_or_digest() -> None:
    assert parse_reference("latest") == "latest"
    assert isinstance(parse_reference(f"sha512:{'b' * 128}"), Digest)
