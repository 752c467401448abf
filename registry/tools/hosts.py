"""`ocireg hosts`: client configuration for this server, ready to paste."""

from __future__ import annotations

import json

from yarl import URL

from ..config import Config

DOCKER_HUB_SERVER = "https://registry-1.docker.io"


def _address(config: Config) -> str:
    host = config.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"{host}:{config.server.port}"


def _server_url(name: str, config: Config) -> str:
    """The upstream's address without the credentials its configured URL may carry: this text
    is pasted into files that many people and tools can read."""
    if name == "docker.io":
        return DOCKER_HUB_SERVER
    upstream = next((u for u in config.mirror.upstreams if u.name == name), None)
    if upstream is None:
        return f"https://{name}"
    return str(URL(upstream.url).with_user(None)).rstrip("/")


def containerd(config: Config, registries: list[str]) -> str:
    address = _address(config)
    parts = []
    for name in registries:
        parts.append(f'# /etc/containerd/certs.d/{name}/hosts.toml\nserver = "{_server_url(name, config)}"\n\n'
                     f'[host."http://{address}"]\n  capabilities = ["pull", "resolve"]\n')
    return "\n".join(parts)


def docker(config: Config) -> str:
    address = _address(config)
    body = {"registry-mirrors": [f"http://{address}"], "insecure-registries": [address]}
    note = ("# /etc/docker/daemon.json: Docker sends mirror requests without naming the registry;\n"
            "# set `default = \"docker.io\"` under [mirror] in ocireg's configuration.\n")
    return note + json.dumps(body, indent=2) + "\n"


def registries_conf(config: Config, registries: list[str]) -> str:
    address = _address(config)
    parts = ["# /etc/containers/registries.conf (podman, buildah, skopeo, CRI-O)"]
    for name in registries:
        location = "registry-1.docker.io" if name == "docker.io" else name
        parts.append(f'[[registry]]\nprefix = "{name}"\nlocation = "{location}"\n\n'
                     f'[[registry.mirror]]\nlocation = "{address}/{name}"\ninsecure = true\n')
    parts.append(f'[[registry]]\nlocation = "{address}"\ninsecure = true\n')
    return "\n".join(parts)


def buildkit(config: Config, registries: list[str]) -> str:
    address = _address(config)
    parts = ["# /etc/buildkit/buildkitd.toml: buildkit resolves like containerd and sends ?ns=<registry>"]
    parts += [f'[registry."{name}"]\n  mirrors = ["{address}"]\n' for name in registries]
    parts.append(f'[registry."{address}"]\n  http = true\n  insecure = true\n')
    return "\n".join(parts)


def render(config: Config, registries: list[str]) -> str:
    sections = [("containerd", containerd(config, registries)), ("docker", docker(config)),
                ("podman / CRI-O", registries_conf(config, registries)), ("buildkit", buildkit(config, registries))]
    return "\n".join(f"### {title}\n{text}" for title, text in sections)
