"""Settings as frozen dataclasses: defaults < TOML file < OCIREG_* environment < flags.

The dataclasses are pydantic's, so types, bounds and unknown keys are checked by the field
annotations rather than by hand; they stay real dataclasses (`dataclasses.fields`, positional
construction, equality, hashing). Every layer is validated on its own, so a misspelt key or a
bad value fails loudly naming the file, the environment or the flags it came from. Pydantic's
errors are reworded into this loader's messages: users and scripts read them, not pydantic's.
Scalars are strict: the environment's strings become ints, booleans and durations through the
small validators below only, never through pydantic's wider lax rules. The environment is a
parameter so tests can inject their own.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import field
from typing import Annotated, Any, Literal, get_args, get_type_hints
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Strict, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import ErrorDetails

from .reference import NAME_RE

ENV_PREFIX = "OCIREG_"
ENV_CONFIG_FILE = "OCIREG_CONFIG"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_INTEGER = re.compile(r"[+-]?[0-9]+")
_PORT = re.compile(r"[0-9]{1,5}")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
LogLevel = Literal["debug", "info", "warning", "error"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)


class ConfigError(Exception):
    """A setting that cannot be used; the message names it."""


def parse_duration(text: str) -> float:
    """`"30s"`, `"5m"`, `"2h"`, `"7d"`, `"1h30m"`; `"unlimited"` is forever."""
    if text.strip().lower() in ("unlimited", "inf", "never"):
        return math.inf
    parts = _DURATION.findall(text.replace(" ", ""))
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ValueError(text)
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def _duration(value: Any) -> float:
    """A number of seconds or a duration string; TOML and the environment write both."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            return parse_duration(value)
    except (ValueError, OverflowError):
        pass
    raise ValueError(f"expected a duration like \"30s\", \"5m\", \"2h\", \"7d\", got {value!r}")


def _non_negative(value: float) -> float:
    if math.isnan(value) or value < 0:
        raise ValueError(f"expected a duration of zero or more, got {value!r}")
    return value


def _positive(value: int) -> int:
    """A cap of zero would refuse every connection or push: never what anyone means."""
    if value < 1:
        raise ValueError(f"expected a count of one or more, got {value!r}")
    return value


def _integer_string(value: Any) -> Any:
    """Only an integer string becomes an int (the environment has no other kind); anything
    else goes to the strict int check, so `1.5`, `2.0`, `inf` and `true` stay errors."""
    return int(value) if isinstance(value, str) and _INTEGER.fullmatch(value.strip()) else value


def _boolean_word(value: Any) -> Any:
    """Exactly these words, in any case; pydantic's own set is wider ("t", "y", "off "...)."""
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    return value


def _list(value: Any) -> Any:
    """TOML has arrays, not tuples; anything that is not an array is refused here, because
    pydantic's lax tuple would also take a set or a dict's keys."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise ValueError(f"expected a list, got {value!r}")


def _lowercase(value: Any) -> Any:
    """`WARNING` has always been accepted (logging takes any case); it is stored lowercase so
    the level is one of the Literal's values, whatever case it was written in."""
    return value.lower() if isinstance(value, str) else value


Seconds = Annotated[float, BeforeValidator(_duration), AfterValidator(_non_negative)]
Count = Annotated[int, BeforeValidator(_integer_string), Strict(), AfterValidator(_positive)]
Flag = Annotated[bool, BeforeValidator(_boolean_word), Strict()]
Text = Annotated[str, Strict()]
Patterns = Annotated[tuple[Text, ...], BeforeValidator(_list)]
_SETTINGS = ConfigDict(extra="forbid")


@dataclass(frozen=True, config=_SETTINGS)
class ServerConfig:
    """Where to listen, and how long a slow or silent client may hold a connection."""

    listen: Text = "127.0.0.1:5000"
    header_timeout: Seconds = 30.0
    body_timeout: Seconds = 60.0
    keepalive_timeout: Seconds = 75.0
    max_connections: Count = 1024

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


@dataclass(frozen=True, config=_SETTINGS)
class StorageConfig:
    root: Text = "./data"


@dataclass(frozen=True, config=_SETTINGS)
class UploadsConfig:
    """Bounds on upload sessions, so abandoned pushes cannot fill the disk or the table."""

    max_sessions: Count = 1000
    expiry: Seconds = 86400.0


@dataclass(frozen=True, config=_SETTINGS)
class LogConfig:
    level: Annotated[LogLevel, BeforeValidator(_lowercase)] = "info"
    access: Flag = True


@dataclass(frozen=True, config=_SETTINGS)
class UpstreamConfig:
    """One registry the mirror pulls from; `name` is how clients address it (`docker.io`)."""

    name: Text = ""
    url: Text = ""
    username: Text = ""
    password: Text = ""
    password_env: Text = ""
    tag_ttl: Seconds = 300.0
    max_stale: Seconds = math.inf
    include: Patterns = ()
    exclude: Patterns = ()

    @model_validator(mode="after")
    def _named(self) -> UpstreamConfig:
        if not self.name or not self.url:
            raise ValueError("needs a name and a url")
        return self


PUBLIC_UPSTREAMS = tuple(UpstreamConfig(name, url) for name, url in (
    ("docker.io", "https://registry-1.docker.io"),
    ("ghcr.io", "https://ghcr.io"),
    ("quay.io", "https://quay.io"),
    ("registry.k8s.io", "https://registry.k8s.io"),
    ("gcr.io", "https://gcr.io"),
    ("mcr.microsoft.com", "https://mcr.microsoft.com"),
    ("public.ecr.aws", "https://public.ecr.aws"),
))


@dataclass(frozen=True, config=_SETTINGS)
class MirrorConfig:
    default: Text = ""
    offline: Flag = False
    upstreams: Annotated[tuple[UpstreamConfig, ...], BeforeValidator(_list)] = PUBLIC_UPSTREAMS


@dataclass(frozen=True, config=_SETTINGS)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    uploads: UploadsConfig = field(default_factory=UploadsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    mirror: MirrorConfig = field(default_factory=MirrorConfig)


Layer = dict[str, dict[str, Any]]
_CONFIG = TypeAdapter(Config)
_SECTIONS: dict[str, type[Any]] = get_type_hints(Config)
_TYPE_NAMES = {"int_type": "int", "bool_type": "bool", "string_type": "str"}


def _where(loc: tuple[int | str, ...]) -> str:
    """`('mirror', 'upstreams', 0, 'url')` -> `mirror.upstreams[0].url`."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def _message(error: ErrorDetails, origin: str) -> str:
    """One pydantic error in the words this loader has always used, prefixed by where the
    value was written, so a user can find the line without knowing pydantic."""
    loc, kind, value = error["loc"], error["type"], error["input"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        if len(loc) == 1:
            return f"{origin}: unknown section [{loc[0]}]"
        if len(loc) > 2:
            return f"{origin}: {_where(loc[:-1])}: unknown key {loc[-1]}"
        return f"{origin}: unknown key {_where(loc)}"
    if kind == "dataclass_type":
        return f"{origin}: [{loc[0]}] must be a table" if len(loc) == 1 else f"{origin}: {_where(loc)}: must be a table"
    if kind == "value_error":
        return f"{origin}: {_where(loc)}: {error.get('ctx', {}).get('error')}"
    if kind == "literal_error":
        return f"{origin}: {_where(loc)}: expected one of {', '.join(LOG_LEVELS)}, got {value!r}"
    return f"{origin}: {_where(loc)}: expected {_TYPE_NAMES.get(kind, kind)}, got {value!r}"


def _check(layer: Mapping[str, Any], origin: str) -> Layer:
    """The layer's own settings, validated on their own, so an error names where it was
    written; unset keys are left out so they do not hide a lower layer's."""
    try:
        config = _CONFIG.validate_python(layer)
    except ValidationError as err:
        raise ConfigError(_message(err.errors()[0], origin)) from None
    return {name: {key: getattr(getattr(config, name), key) for key in values} for name, values in layer.items()}


def _keys(section: str) -> set[str]:
    return {f.name for f in dataclasses.fields(_SECTIONS[section])}


def _from_env(env: Mapping[str, str]) -> Layer:
    """OCIREG_SERVER_LISTEN=... sets server.listen; any other OCIREG_ name is an error."""
    layer: dict[str, dict[str, Any]] = {}
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or var == ENV_CONFIG_FILE:
            continue
        rest = var[len(ENV_PREFIX):].lower()
        section = next((s for s in _SECTIONS if rest.startswith(s + "_")), None)
        key = rest[len(section) + 1:] if section else ""
        if section is None or key not in _keys(section):
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
    config = Config(**{name: _SECTIONS[name](**merged.get(name, {})) for name in _SECTIONS})
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
