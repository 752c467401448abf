"""An upstream behind Docker token auth: the whole bearer flow runs for real.

Distribution with `auth: token` challenges every request; the realm is `TokenService`, which signs
JWTs with a key whose certificate is the registry's rootcertbundle. The upstream is seeded with
skopeo using push credentials; then the service's record is reset so only ocireg's token
requests are counted. Tokens live 300 s, far longer than a test: a mirror that reuses its
tokens asks once per scope.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.helpers.client import MANIFEST_ACCEPT, describe
from tests.helpers.registries import RegistryEndpoint
from tests.helpers.skopeo import Skopeo
from tests.helpers.tokenauth import TokenService, token_registry_server
from tests.helpers.upstream import (
    APP,
    LIST,
    MirrorConfig,
    Upstream,
    UpstreamEntry,
    assert_dir_holds,
    oci_error_codes,
    oci_error_text,
)

from .conftest import MirrorFactory

PRIVATE = "private.test"
USER, PASSWORD = "alice", "s3cret-pw"
SCOPE = "repository:team/app:pull"
PASSWORD_VARIABLE = "MIRROR_TEST_UPSTREAM_PASSWORD"  # not OCIREG_*: the server rejects unknown ones


def _start_upstream(tmp_path: Path, skopeo: Skopeo, tokens: TokenService) -> Iterator[Upstream]:
    workdir = tmp_path / "token-upstream"
    with tokens, token_registry_server(workdir, tokens) as endpoint:
        upstream = Upstream(endpoint, workdir, skopeo, creds=f"{USER}:{PASSWORD}")
        upstream.seed(APP, "team/app", "v1")
        upstream.seed(LIST, "team/app", "list")
        assert tokens.issued and all(t.account == USER for t in tokens.issued)
        tokens.reset()
        yield upstream


@pytest.fixture
def open_tokens() -> TokenService:
    """Anonymous clients get pull tokens; alice gets pull and push."""
    return TokenService(users={USER: PASSWORD}, anonymous_pull=True)


@pytest.fixture
def closed_tokens() -> TokenService:
    """Only alice gets tokens at all: a private registry."""
    return TokenService(users={USER: PASSWORD}, anonymous_pull=False)


@pytest.fixture
def open_upstream(tmp_path: Path, skopeo: Skopeo, open_tokens: TokenService) -> Iterator[Upstream]:
    yield from _start_upstream(tmp_path, skopeo, open_tokens)


@pytest.fixture
def closed_upstream(
    tmp_path: Path, skopeo: Skopeo, closed_tokens: TokenService
) -> Iterator[Upstream]:
    yield from _start_upstream(tmp_path, skopeo, closed_tokens)


def _pull_both_tags(skopeo: Skopeo, mirror: RegistryEndpoint, tmp_path: Path) -> None:
    for tag, image in (("v1", APP), ("list", LIST)):
        out = tmp_path / f"pulled-{tag}"
        skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
               f"docker://{mirror.ref(f'{PRIVATE}/team/app:{tag}')}", f"dir:{out}")  # fmt: skip
        assert_dir_holds(out, image)


def _assert_one_token_per_scope(tokens: TokenService) -> None:
    per_scope = Counter(" ".join(t.scopes) for t in tokens.issued)
    assert per_scope[SCOPE] == 1, f"tokens issued per requested scope: {dict(per_scope)}"
    assert all(n == 1 for n in per_scope.values()), f"a token was not reused: {dict(per_scope)}"


def _authorized_requests(upstream: Upstream) -> int:
    return sum(1 for e in upstream.endpoint.access_log() if e.status == 200)


def test_anonymous_token_pulls_and_token_reuse(
    mirror_factory: MirrorFactory, open_upstream: Upstream, open_tokens: TokenService,
    skopeo: Skopeo, tmp_path: Path, http: requests.Session,
) -> None:  # fmt: skip
    mirror = mirror_factory(MirrorConfig([UpstreamEntry(PRIVATE, open_upstream.url, tag_ttl="0s")]))
    served_before = _authorized_requests(open_upstream)

    _pull_both_tags(skopeo, mirror, tmp_path)
    # tag_ttl 0s: this revalidates v1 with a HEAD upstream, which needs a token again.
    again = http.get(f"{mirror.url}/v2/{PRIVATE}/team/app/manifests/v1",
                     headers={"Accept": MANIFEST_ACCEPT})  # fmt: skip
    assert again.status_code == 200 and again.content == APP.index.data, describe(again)

    assert open_tokens.issued, "ocireg pulled from a token registry without a token?"
    assert all(t.account == "" for t in open_tokens.issued), open_tokens.issued
    assert open_tokens.refused == []
    _assert_one_token_per_scope(open_tokens)
    served = _authorized_requests(open_upstream) - served_before
    assert served > len(open_tokens.issued), "no request was made with a reused token"


@pytest.mark.parametrize("how", ["password", "password_env"])
def test_credentials_for_a_private_token_registry(
    mirror_factory: MirrorFactory, closed_upstream: Upstream, closed_tokens: TokenService,
    skopeo: Skopeo, tmp_path: Path, how: str,
) -> None:  # fmt: skip
    """username/password (or password_env) are sent to the token service as HTTP Basic."""
    if how == "password":
        entry = UpstreamEntry(PRIVATE, closed_upstream.url, username=USER, password=PASSWORD)
        env = None
    else:
        entry = UpstreamEntry(PRIVATE, closed_upstream.url, username=USER,
                              password_env=PASSWORD_VARIABLE)  # fmt: skip
        env = {PASSWORD_VARIABLE: PASSWORD}
    mirror = mirror_factory(MirrorConfig([entry]), env=env)

    _pull_both_tags(skopeo, mirror, tmp_path)

    assert closed_tokens.issued and all(t.account == USER for t in closed_tokens.issued), (
        closed_tokens.issued
    )
    assert closed_tokens.refused == [], "ocireg asked for a token without its credentials"
    _assert_one_token_per_scope(closed_tokens)


def test_wrong_credentials_fail_clearly(
    mirror_factory: MirrorFactory, closed_upstream: Upstream, closed_tokens: TokenService,
    http: requests.Session,
) -> None:  # fmt: skip
    """Credentials the token service refuses: an OCI error naming the upstream, not 200/500."""
    entry = UpstreamEntry(PRIVATE, closed_upstream.url, username=USER, password="wrong")
    mirror = mirror_factory(MirrorConfig([entry]))
    response = http.get(f"{mirror.url}/v2/{PRIVATE}/team/app/manifests/v1",
                        headers={"Accept": MANIFEST_ACCEPT})  # fmt: skip
    assert 400 <= response.status_code < 500 or response.status_code in (502, 503), describe(
        response
    )
    assert oci_error_codes(response), describe(response, "not an OCI error body")
    assert PRIVATE in oci_error_text(response), describe(response, "error does not name upstream")
    assert closed_tokens.refused, "the token service never saw the (wrong) credentials"
    assert closed_tokens.issued == []


def test_concurrent_first_requests_share_one_token(
    mirror_factory: MirrorFactory, open_upstream: Upstream, open_tokens: TokenService,
    http: requests.Session,
) -> None:  # fmt: skip
    """Six blobs asked for at once, before any token exists: one token for the scope, not six."""
    mirror = mirror_factory(MirrorConfig([UpstreamEntry(PRIVATE, open_upstream.url)]))
    blobs = [b for child in APP.children for b in (child.config, *child.layers)]

    def get(digest: str) -> int:
        session = requests.Session()
        session.trust_env = False
        return session.get(
            f"{mirror.url}/v2/{PRIVATE}/team/app/blobs/{digest}", timeout=30
        ).status_code

    barrier = threading.Barrier(len(blobs))

    def together(digest: str) -> int:
        barrier.wait()
        return get(digest)

    with ThreadPoolExecutor(len(blobs)) as pool:
        statuses = list(pool.map(together, [b.digest for b in blobs]))
    assert statuses == [200] * len(blobs), statuses
    _assert_one_token_per_scope(open_tokens)
