"""`ocireg hosts` output is pasted into shared files: an upstream URL's credentials stay out."""

from __future__ import annotations

from registry.config import Config, MirrorConfig, UpstreamConfig
from registry.tools.hosts import render

PRIVATE = UpstreamConfig("registry.example", "https://alice:pw-5ecret@registry.example:8443/")


def test_hosts_prints_the_upstream_without_its_userinfo() -> None:
    output = render(Config(mirror=MirrorConfig(upstreams=(PRIVATE,))), ["registry.example"])
    assert 'server = "https://registry.example:8443"' in output, output
    assert "pw-5ecret" not in output and "alice" not in output, output
