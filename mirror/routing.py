"""Which upstream, if any, a repository name is read from.

    0. content pushed under the name itself is served first (the repository wrapper does this);
    1. `?ns=<upstream>` (containerd's hosts.toml mirrors): the name as it is, from that upstream;
    2. a name that starts with an upstream's name (`ghcr.io/org/app`): the rest, from it;
    3. `mirror.default`, for names no local repository has (Docker's `registry-mirrors`).
Mirrored content is stored under `<upstream>/<remote name>`, so it can be pulled by that name too.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from registry.config import MirrorConfig, UpstreamConfig

DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class Route:
    upstream: UpstreamConfig
    remote: str
    by_default: bool = False

    @property
    def cache_name(self) -> str:
        """The local repository that holds what was pulled through this route."""
        return f"{self.upstream.name}/{self.remote}"


def host_key(host: str) -> str:
    """Registry names compare as DNS names do: `Docker.IO` and `docker.io.` are `docker.io`."""
    return host.strip().lower().rstrip(".")


class Router:
    def __init__(self, config: MirrorConfig) -> None:
        self.config = config
        self.upstreams = {upstream.name: upstream for upstream in config.upstreams}
        self._by_host = {host_key(upstream.name): upstream for upstream in config.upstreams}

    def upstream(self, ns: str) -> UpstreamConfig | None:
        """The upstream an `ns` value names, spelt in any case, with or without the final dot."""
        return self._by_host.get(host_key(ns))

    def mirrored_namespace(self, name: str) -> UpstreamConfig | None:
        """The upstream whose cache `name` lies in; such names cannot be pushed to."""
        first, slash, _ = name.partition("/")
        return self.upstream(first) if slash else None

    def route(self, name: str, ns: str | None) -> Route | None:
        """Rule 3 depends on whether the name exists locally; the repository checks that."""
        if ns:
            upstream = self.upstream(ns)
            # An ns we do not mirror is served from pushed content only: answering it from
            # another registry would hand out a different image under the same name.
            return self._allowed(upstream, name) if upstream is not None else None
        prefixed = self.mirrored_namespace(name)
        if prefixed is not None:
            return self._allowed(prefixed, name.split("/", 1)[1])
        default = self.upstream(self.config.default) if self.config.default else None
        if default is not None:
            return self._allowed(default, name, by_default=True)
        return None

    def _allowed(self, upstream: UpstreamConfig, remote: str, *, by_default: bool = False) -> Route | None:
        if upstream.name == DOCKER_HUB and "/" not in remote:
            remote = f"library/{remote}"
        if upstream.include and not any(fnmatch.fnmatchcase(remote, p) for p in upstream.include):
            return None
        if any(fnmatch.fnmatchcase(remote, p) for p in upstream.exclude):
            return None
        return Route(upstream, remote, by_default)
