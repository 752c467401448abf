"""Settings as frozen dataclasses: defaults < TOML file < OCIREG_* environment < flags.

Every layer is checked against the dataclass fields, so a misspelt key fails loudly with its
name instead of being ignored. The environment is a parameter so tests can inject their own.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .reference import NAME_RE

ENV_PREFIX = "OCIREG_"
ENV_CONFIG_FILE = "OCIREG_CONFIG"
Seconds = float
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_INTEGER = re.compile(r"[+-]?[0-9]+")
_PORT = re.compile(r"[0-9]{1,5}")
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(Exception):
    """A setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class ServerConfig:
    """Where to listen, and how long a slow or silent client may hold a connection."""

    listen: str = "127.0.0.1:5000"
    header_timeout: Seconds = 30.0
    body_timeout: Seconds = 60.0
    keepalive_timeout: Seconds = 75.0
    max_connections: int = 1024

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


@dataclass(frozen=True)
class StorageConfig:
    root: str = "./data"


@dataclass(frozen=True)
class UploadsConfig:
    """Bounds on upload sessions, so abandoned pushes cannot fill the disk or the table."""

    max_sessions: int = 1000
    expiry: Seconds = 86400.0


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    access: bool = True


@dataclass(frozen=True)
class UpstreamConfig:
    """One registry the mirror pulls from; `name` is how clients address it (`docker.io`)."""

    name: str = ""
    url: str = ""
    username: str = ""
    password: str = ""
    password_env: str = ""
    tag_ttl: Seconds = 300.0
    max_stale: Seconds = math.inf
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


PUBLIC_UPSTREAMS = tuple(UpstreamConfig(name, url) for name, url in (
    ("docker.io", "https://registry-1.docker.io"),
    ("ghcr.io", "https://ghcr.io"),
    ("quay.io", "https://quay.io"),
    ("registry.k8s.io", "https://registry.k8s.io"),
    ("gcr.io", "https://gcr.io"),
    ("mcr.microsoft.com", "https://mcr.microsoft.com"),
    ("public.ecr.aws", "https://public.ecr.aws"),
))


@dataclass(frozen=True)
class MirrorConfig:
    default: str = ""
    offline: bool = False
    upstreams: tuple[UpstreamConfig, ...] = PUBLIC_UPSTREAMS


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    uploads: UploadsConfig = field(default_factory=UploadsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    mirror: MirrorConfig = field(default_factory=MirrorConfig)


Layer = dict[str, dict[str, Any]]


def _sections() -> dict[str, type[Any]]:
    return {f.name: f.type if isinstance(f.type, type) else globals()[str(f.type)]
            for f in dataclasses.fields(Config)}


def _field_types(section: type[Any]) -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(section)}


def _check(layer: Mapping[str, Any], origin: str) -> Layer:
    sections = _sections()
    checked: Layer = {}
    for name, values in layer.items():
        if name not in sections:
            raise ConfigError(f"{origin}: unknown section [{name}]")
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: [{name}] must be a table")
        types = _field_types(sections[name])
        for key, value in values.items():
            if key not in types:
                raise ConfigError(f"{origin}: unknown key {name}.{key}")
            checked.setdefault(name, {})[key] = _coerce(value, types[key], f"{origin}: {name}.{key}")
    return checked


def parse_duration(text: str) -> float:
    """`"30s"`, `"5m"`, `"2h"`, `"7d"`, `"1h30m"`; `"unlimited"` is forever."""
    if text.strip().lower() in ("unlimited", "inf", "never"):
        return math.inf
    parts = _DURATION.findall(text.replace(" ", ""))
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ValueError(text)
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def _coerce(value: Any, type_name: str, where: str) -> Any:
    if type_name == "Seconds" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if type_name == "Seconds" and isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a duration like \"30s\", \"5m\", \"2h\", \"7d\", "
                              f"got {value!r}") from None
    if type_name == "tuple[str, ...]" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if type_name == "tuple[UpstreamConfig, ...]" and isinstance(value, list):
        return tuple(_upstream(entry, f"{where}[{i}]") for i, entry in enumerate(value))
    if type_name == "bool":
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        if isinstance(value, bool):
            return value
    elif type_name == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            return int(value)
    elif type_name == "str" and isinstance(value, str):
        return value
    raise ConfigError(f"{where}: expected {type_name}, got {value!r}")


def _upstream(entry: Any, where: str) -> UpstreamConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table")
    types = _field_types(UpstreamConfig)
    values = {}
    for key, value in entry.items():
        if key not in types:
            raise ConfigError(f"{where}: unknown key {key}")
        values[key] = _coerce(value, types[key], f"{where}.{key}")
    if not values.get("name") or not values.get("url"):
        raise ConfigError(f"{where}: needs a name and a url")
    return UpstreamConfig(**values)


def _from_env(env: Mapping[str, str]) -> Layer:
    """OCIREG_SERVER_LISTEN=... sets server.listen; any other OCIREG_ name is an error."""
    layer: dict[str, dict[str, Any]] = {}
    sections = _sections()
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or var == ENV_CONFIG_FILE:
            continue
        rest = var[len(ENV_PREFIX):].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        key = rest[len(section) + 1:] if section else ""
        if section is None or key not in _field_types(sections[section]):
            raise ConfigError(f"environment: unknown variable {var}")
        layer.setdefault(section, {})[key] = value
    return _check(layer, "environment")


def _from_file(path: str) -> Layer:
    try:
        with open(path, "rb") as handle:
            return _check(tomllib.load(handle), path)
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: {err}") from None


def load(path: str | None = None, env: Mapping[str, str] | None = None,
         overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    env = env if env is not None else {}
    path = path or env.get(ENV_CONFIG_FILE)
    layers = [_from_file(path) if path else {}, _from_env(env), _check(overrides or {}, "flags")]
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for section, values in layer.items():
            merged.setdefault(section, {}).update(values)
    sections = _sections()
    built = {name: sections[name](**merged.get(name, {})) for name in sections}
    config = Config(**built)
    _validate(config)
    _validate_secrets(config, env)
    return config


def _validate_secrets(config: Config, env: Mapping[str, str]) -> None:
    """An upstream whose password variable is unset would be asked anonymously and answer 401
    on every pull, far from the cause; the variable's value is never shown."""
    for i, upstream in enumerate(config.mirror.upstreams):
        if upstream.password_env and upstream.password_env not in env:
            raise ConfigError(f"mirror.upstreams[{i}].password_env: environment variable "
                              f"{upstream.password_env} is not set")


def _validate(config: Config) -> None:
    """Values that parse but cannot work are refused here, at start, rather than failing on
    the first request that needs them (or never, while a typo silently disables something)."""
    _validate_listen(config.server.listen)
    for key in ("header_timeout", "body_timeout", "keepalive_timeout"):
        _non_negative_duration(f"server.{key}", getattr(config.server, key))
    _positive_count("server.max_connections", config.server.max_connections)
    _positive_count("uploads.max_sessions", config.uploads.max_sessions)
    _non_negative_duration("uploads.expiry", config.uploads.expiry)
    if config.log.level.lower() not in LOG_LEVELS:
        raise ConfigError(f"log.level: expected one of {', '.join(LOG_LEVELS)}, got {config.log.level!r}")
    root = config.storage.root
    if not root:
        raise ConfigError("storage.root: must name a folder")
    if os.path.exists(root) and not os.path.isdir(root):
        raise ConfigError(f"storage.root: {root!r} exists and is not a folder")
    for i, upstream in enumerate(config.mirror.upstreams):
        _validate_upstream(upstream, f"mirror.upstreams[{i}]")
    names = [upstream.name for upstream in config.mirror.upstreams]
    if len(set(names)) != len(names):
        raise ConfigError("mirror.upstreams: names must be unique")
    if config.mirror.default and config.mirror.default not in names:
        raise ConfigError(f"mirror.default: {config.mirror.default!r} is not the name of an upstream")


def _validate_listen(listen: str) -> None:
    _, colon, port = listen.rpartition(":")
    if not colon or not _PORT.fullmatch(port):
        raise ConfigError(f"server.listen: expected HOST:PORT, got {listen!r}")
    if not 0 <= int(port) < 65536:
        raise ConfigError(f"server.listen: port {int(port)} out of range")


def _non_negative_duration(key: str, value: float) -> None:
    if math.isnan(value) or value < 0:
        raise ConfigError(f"{key}: expected a duration of zero or more, got {value!r}")


def _positive_count(key: str, value: int) -> None:
    """A cap of zero would refuse every connection or push: never what anyone means."""
    if value < 1:
        raise ConfigError(f"{key}: expected a count of one or more, got {value!r}")


def redact_url(url: str) -> str:
    """`url` without anything up to its last `@`: a password may hold `/` or `#`, so where the
    userinfo ends is not trusted to the URL grammar; an error message never shows it."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url.rpartition("@")[2]


def _validate_url(url: str, key: str) -> None:
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is no number or out of range
    except ValueError:
        raise ConfigError(f"{key}: not a usable URL: {shown!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: expected an http:// or https:// URL with a host, got {shown!r}")


def _validate_upstream(upstream: UpstreamConfig, where: str) -> None:
    """The name is how clients address the upstream (`?ns=`, or the first component of a
    repository name) and the folder its cache lives under: it must be one name component."""
    if "/" in upstream.name or not NAME_RE.fullmatch(upstream.name):
        raise ConfigError(f"{where}.name: {upstream.name!r} is not a registry host clients can name "
                          "(lowercase letters, digits and . _ - only, like \"ghcr.io\")")
    _validate_url(upstream.url, f"{where}.url")
    _non_negative_duration(f"{where}.tag_ttl", upstream.tag_ttl)
    _non_negative_duration(f"{where}.max_stale", upstream.max_stale)
