"""Schemathesis against a real `ocireg serve`, from docs/openapi.yaml: hostile input never breaks it.

Every operation of the document gets a bounded number of generated requests, valid and invalid
(wrong types, missing parameters, odd strings in names, digests, tags and headers), derandomized
so CI sees the same requests every run. Half of the generated path parameters are swapped for a
repository and digests that exist, so requests reach storage rather than stopping at a 404.

Each answer must be: no 5xx (the one exception is 503 UNAVAILABLE for a name routed to the
mirror, whose only upstream is a closed loopback port: that is the upstream's state, reported
as the spec says), an OCI error body for every 4xx with a body, an answer within the request
timeout (a hang fails the request). After all of them, no file exists outside the data folder
that was not there before (a path-traversal write would land in the folders around it), the log
holds no traceback, and the server still serves what was pushed before the fuzzing.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from registry.errors import CODES
from tests.helpers.client import RegistryClient
from tests.helpers.images import OCI, build_image
from tests.helpers.procs import LOOPBACK, free_port
from tests.helpers.registries import RegistryEndpoint, ocireg_server

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))  # per operation; more for a deeper local run
REQUEST_TIMEOUT = 15.0
REPO = "fuzz/app"
IMAGE = build_image(OCI, seed="campaign-fuzz")
LAYER = IMAGE.children[0].layers[0]
MIRROR_UPSTREAM = "docker.io"
SECRET = "campaign-upstream-password-7f3c"  # the mirror's upstream password: never in an answer
HOSTILE_NAMES = [
    "..", "../..", "a/../../b", "./a", "a//b", "a/./b", "%2e%2e", "%2e%2e/%2e%2e/etc", "..%2f..%2fetc",
    "a%00b", "_layers", "a/_manifests", "A", "a" * 3000, "/".join(["a"] * 300), "a%20b", "a%0d%0aX-Injected:%201",
    "docker.io/..", "docker.io/../../x",
]
ROUTES = [
    ("GET", "/v2/{name}/tags/list"), ("GET", "/v2/{name}/referrers/{digest}"),
    ("POST", "/v2/{name}/blobs/uploads/"), ("GET", "/v2/{name}/blobs/uploads/{uuid}"),
    ("PATCH", "/v2/{name}/blobs/uploads/{uuid}"), ("PUT", "/v2/{name}/blobs/uploads/{uuid}?digest={digest}"),
    ("DELETE", "/v2/{name}/blobs/uploads/{uuid}"), ("GET", "/v2/{name}/blobs/{digest}"),
    ("HEAD", "/v2/{name}/blobs/{digest}"), ("DELETE", "/v2/{name}/blobs/{digest}"),
    ("GET", "/v2/{name}/manifests/{reference}"), ("PUT", "/v2/{name}/manifests/{reference}"),
    ("DELETE", "/v2/{name}/manifests/{reference}"), ("POST", "/v2/{name}/blobs/uploads/?mount={digest}&from={name}"),
]
HOSTILE_VALUES = {"uuid": ["..", "../../uploads", "%2e%2e%2f", "0" * 36], "digest": ["sha256:..", "sha256:" + "0" * 64,
                  "sha256:../../x", "md5:" + "0" * 32], "reference": ["..", "../_tags/x", "v1", "sha256:.."]}

schema = schemathesis.openapi.from_path(str(DOCUMENT))
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES, deterministic=True
)


@schema.hook
def flatmap_path_parameters(
    context: Any, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """The generated parameters, or the same with the names and digests that exist."""
    if not path_parameters:
        return st.just(path_parameters)
    known = dict(path_parameters)
    known.update({k: v for k, v in _KNOWN.items() if k in known})
    return st.sampled_from([path_parameters, known])


_KNOWN = {"name": REPO, "digest": LAYER.digest, "reference": "v1"}


@dataclass(frozen=True)
class Target:
    endpoint: RegistryEndpoint
    outside: Path  # the folders around the data folder
    before: frozenset[str]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One server for the module, its data folder three levels down, with one image pushed."""
    outside = tmp_path_factory.mktemp("fuzz")
    workdir = outside / "a" / "b" / "server"
    config = outside / "ocireg.toml"
    config.write_text(
        f'[mirror]\ndefault = ""\n\n[[mirror.upstreams]]\nname = "{MIRROR_UPSTREAM}"\n'
        f'url = "http://{LOOPBACK}:{free_port()}"\nusername = "fuzz"\npassword = "{SECRET}"\n'
    )
    with ocireg_server(workdir, ["--config", str(config), "--log-level", "warning"]) as endpoint:
        RegistryClient(endpoint.url).push_image(REPO, IMAGE, "v1")
        yield Target(endpoint, outside, frozenset(_files_outside(outside, endpoint.data_dir)))


def _files_outside(outside: Path, data: Path) -> set[str]:
    """Every path under `outside` except the data folder's content and the server's log."""
    found: set[str] = set()
    for root, dirs, files in os.walk(outside):
        if Path(root) == data.parent:
            dirs[:] = [d for d in dirs if Path(root, d) != data]
        found.update(str(Path(root, name)) for name in [*dirs, *files] if Path(root, name) != data)
    return found


def _mirrored(url: str) -> bool:
    return f"/v2/{MIRROR_UPSTREAM}/" in url or f"ns={MIRROR_UPSTREAM}" in url


@dataclass(frozen=True)
class Answer:
    method: str
    url: str
    status: int
    headers: dict[str, Any]
    content: bytes

    def __str__(self) -> str:
        return f"{self.method} {self.url} -> {self.status}\n{self.headers}\n{self.content[:500]!r}"


def check_answer(answer: Answer) -> None:
    """No 5xx but the mirror's upstream being down; every error with a body an OCI error body."""
    codes = _error_codes(answer.content) if answer.method != "HEAD" else ["UNAVAILABLE"]
    if answer.status >= 500:
        assert answer.status == 503 and codes == ["UNAVAILABLE"] and _mirrored(answer.url), str(answer)
    if answer.status >= 400 and answer.method != "HEAD":
        assert codes and all(code in CODES for code in codes), str(answer)
    assert SECRET.encode() not in answer.content and SECRET not in str(answer.headers), str(answer)


def _error_codes(content: bytes) -> list[str]:
    try:
        body = json.loads(content)
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors:
        return []
    return [str(e.get("code")) if isinstance(e, dict) else "" for e in errors]


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.slow
def test_fuzz_operation(case: schemathesis.Case[Any], target: Target) -> None:
    response = case.call(base_url=target.endpoint.url, session=_session(), timeout=REQUEST_TIMEOUT)
    request = response.request
    check_answer(Answer(str(request.method), str(request.url), response.status_code,
                        dict(response.headers), response.content))


def raw_exchange(port: int, method: str, target: str) -> Answer:
    """The request target exactly as given (no client normalizes `..` away), a small body."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT)
    try:
        body = b"{}" if method in ("PUT", "PATCH", "POST") else None
        connection.request(method, target, body=body)
        response = connection.getresponse()
        return Answer(method, target, response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_hostile_path_values(target: Target, method: str, route: str) -> None:
    """Traversal, reserved folders, NUL, CR LF, huge names, every route: a clean OCI error or success."""
    for name in HOSTILE_NAMES:
        for values in _variants(route):
            path = route.format(name=name, **values)
            check_answer(raw_exchange(target.endpoint.port, method, path))


def _variants(route: str) -> list[dict[str, str]]:
    defaults = {"uuid": "0" * 36, "digest": LAYER.digest, "reference": "v1"}
    variants = [defaults]
    for key, hostile in HOSTILE_VALUES.items():
        if "{" + key + "}" in route:
            variants += [{**defaults, key: value} for value in hostile]
    return variants


def test_nothing_written_outside_the_data_folder(target: Target) -> None:
    after = _files_outside(target.outside, target.endpoint.data_dir)
    assert after == target.before, sorted(after - target.before)


def test_no_traceback_in_the_log(target: Target) -> None:
    log = target.endpoint.process.log_text()
    assert "Traceback" not in log, target.endpoint.process.log_tail()


def test_still_serves_what_was_pushed(target: Target) -> None:
    """The fuzzing may have deleted the seeded image; then it must be pushable again."""
    assert target.endpoint.process.alive()
    client = RegistryClient(target.endpoint.url)
    client.push_image(REPO, IMAGE, "v1")
    got = _session().get(f"{target.endpoint.url}/v2/{REPO}/blobs/{LAYER.digest}", timeout=REQUEST_TIMEOUT)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == LAYER.digest[7:]


def test_request_line_too_long_is_an_oci_error(target: Target) -> None:
    """Past aiohttp's 8190-byte request line: still an OCI error body, and no traceback logged.

    Last in the module: it checks its own slice of the log, after the module-wide check."""
    logged = len(target.endpoint.process.log_text())
    answer = raw_exchange(target.endpoint.port, "GET", f"/v2/{'a' * 9000}/tags/list")
    assert answer.status in (400, 414), str(answer)
    assert _error_codes(answer.content), str(answer)
    assert "Traceback" not in target.endpoint.process.log_text()[logged:]
