"""No upstream secret (URL userinfo, password, token) reaches a client or the log, and no client
answer names an upstream by its internal address: only by its configured name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from tests.helpers.client import MANIFEST_ACCEPT, describe
from tests.helpers.procs import LOOPBACK, free_port, isolated_env
from tests.helpers.registries import REPO_ROOT
from tests.helpers.skopeo import Skopeo
from tests.helpers.tokenauth import TokenService
from tests.helpers.upstream import APP, MirrorConfig, Upstream, UpstreamEntry, assert_dir_holds

from .conftest import MirrorFactory
from .test_token_auth import PASSWORD, USER, closed_tokens, closed_upstream  # noqa: F401

IN_URL, DOWN, CONFIGURED = "private.test", "down.test", "configured.test"
DOWN_USER, DOWN_PASSWORD = "bob-the-user", "down-pw-5ecret"


def _answers(http: requests.Session, base: str) -> list[requests.Response]:
    """Failing requests of every kind, through every upstream."""
    blob = APP.child("linux/amd64").config.digest
    answers = []
    for upstream in (IN_URL, DOWN, CONFIGURED):
        for path in ("team/app/manifests/v1", "team/app/manifests/nothere", f"team/app/blobs/{blob}",
                     f"team/nothere/blobs/{blob}", "team/nothere/tags/list", "team/app/tags/list"):
            for method in ("GET", "HEAD"):
                answers.append(http.request(method, f"{base}/v2/{upstream}/{path}",
                                            headers={"Accept": MANIFEST_ACCEPT}))  # fmt: skip
    return answers


def _hosts(config: Path, registries: str) -> str:
    """`ocireg hosts` for the server's own configuration file: stdout and stderr."""
    env = {k: v for k, v in isolated_env().items() if not k.startswith("OCIREG_")}
    result = subprocess.run(
        [sys.executable, "-m", "registry", "hosts", "--config", str(config), "--mirror-of", registries],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_no_secret_in_answers_logs_or_hosts(
    mirror_factory: MirrorFactory, closed_upstream: Upstream, closed_tokens: TokenService,  # noqa: F811
    skopeo: Skopeo, tmp_path: Path, http: requests.Session,
) -> None:  # fmt: skip
    """Credentials in the URL work as configured ones do; nothing of them is ever printed."""
    down = f"{LOOPBACK}:{free_port()}"
    config = MirrorConfig([
        UpstreamEntry(IN_URL, f"http://{USER}:{PASSWORD}@{closed_upstream.hostport}"),
        UpstreamEntry(DOWN, f"http://{DOWN_USER}:{DOWN_PASSWORD}@{down}"),
        UpstreamEntry(CONFIGURED, closed_upstream.url, username=USER, password=PASSWORD),
    ])  # fmt: skip
    mirror = mirror_factory(config, extra_args=["--log-level", "debug"])
    out = tmp_path / "pulled"
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
           f"docker://{mirror.ref(f'{IN_URL}/team/app:v1')}", f"dir:{out}")  # fmt: skip
    assert_dir_holds(out, APP)

    answers = _answers(http, mirror.url)
    assert closed_tokens.issued, "no token was ever issued"
    secrets = [PASSWORD, DOWN_PASSWORD, DOWN_USER, *(t.value for t in closed_tokens.issued)]
    internal = [closed_upstream.hostport, down]
    for response in answers:
        text = describe(response)
        answer = text[text.index("\n< ") :]
        for secret in secrets + internal:
            assert secret not in answer, describe(response, f"the answer carries {secret!r}")
    log = (tmp_path / "ocireg" / "ocireg.log").read_text()
    for secret in secrets:
        assert secret not in log, f"the server log carries {secret!r}"

    hosts = _hosts(tmp_path / "ocireg" / "ocireg.toml", f"{IN_URL},{DOWN}")
    assert closed_upstream.hostport in hosts and down in hosts, hosts
    for secret in (PASSWORD, DOWN_PASSWORD, DOWN_USER, f"{USER}:"):
        assert secret not in hosts, f"`ocireg hosts` prints {secret!r}"
