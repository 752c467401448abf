"""Properties of the configuration loader: whatever a file, the environment or a flag holds,
loading either gives a Config or raises ConfigError naming the setting, and a valid value comes
back as it was written."""

from __future__ import annotations

import dataclasses
import math
import string
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.config import (
    LOG_LEVELS,
    Config,
    ConfigError,
    LogConfig,
    MirrorConfig,
    ServerConfig,
    UploadsConfig,
    UpstreamConfig,
    load,
)

SECTIONS = {"server": ServerConfig, "storage": None, "uploads": UploadsConfig, "log": LogConfig,
            "mirror": MirrorConfig}
KEYS = sorted({f.name for cls in (ServerConfig, UploadsConfig, LogConfig, MirrorConfig, UpstreamConfig)
               for f in dataclasses.fields(cls)} | {"root"})

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.datetimes(), st.dates(), st.times(),  # TOML has these too
    st.text(max_size=30), st.sampled_from([math.inf, -math.inf, math.nan, -1, 1.5]),
    st.sampled_from(["30s", "1h30m", "-5s", "unlimited", "1e400", "http://h.test", "ftp://x", "debug", "verbose",
                     "0", "-1", "99999999999999999999"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


def _section_keys(name: str) -> list[str]:
    cls = SECTIONS[name]
    return ["root"] if cls is None else [f.name for f in dataclasses.fields(cls)]


upstream_entries = st.dictionaries(st.sampled_from([f.name for f in dataclasses.fields(UpstreamConfig)]),
                                   scalars | st.lists(scalars, max_size=2), max_size=5)
known_sections = st.sampled_from(sorted(SECTIONS)).flatmap(lambda name: st.tuples(st.just(name), st.dictionaries(
    st.sampled_from(_section_keys(name)), scalars | st.lists(upstream_entries, max_size=2), max_size=5)))
tables = st.lists(known_sections, max_size=4).map(dict) | st.dictionaries(
    st.sampled_from(sorted(SECTIONS)) | st.text(max_size=8),
    st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), values, max_size=5) | values,
    max_size=4,
)
env_names = st.builds(lambda section, key: f"OCIREG_{section}_{key}".upper(),
                      st.sampled_from(sorted(SECTIONS)) | st.text(string.ascii_letters, max_size=6),
                      st.sampled_from(KEYS) | st.text(string.ascii_letters + "_", max_size=8))
envs = st.dictionaries(env_names, st.text(max_size=20), max_size=4)


def _load(**kwargs: Any) -> Config | ConfigError:
    """The loaded Config, or the ConfigError; any other exception fails the test."""
    try:
        return load(**kwargs)
    except ConfigError as err:
        return err


@settings(max_examples=60, deadline=None)
@given(tables, envs)
def test_any_table_and_environment_load_or_raise_config_error(table: dict[str, Any], env: dict[str, str]) -> None:
    outcome = _load(env=env, overrides=table)
    assert isinstance(outcome, Config) or str(outcome)


SETTINGS = [(section, key) for section in sorted(SECTIONS) for key in _section_keys(section)]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(SETTINGS), scalars | st.lists(upstream_entries, max_size=2))
def test_any_value_of_one_setting_loads_or_raises_config_error_naming_it(setting: tuple[str, str],
                                                                          value: Any) -> None:
    section, key = setting
    outcome = _load(env={}, overrides={section: {key: value}})
    assert isinstance(outcome, Config) or f"{section}.{key}" in str(outcome)


durations = st.floats(min_value=0, max_value=1e9, allow_nan=False) | st.just(math.inf)
counts = st.integers(min_value=1, max_value=2**40)
components = st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,8}){0,2}", fullmatch=True)


@settings(max_examples=30, deadline=None)
@given(durations, durations, counts, counts, st.sampled_from(LOG_LEVELS))
def test_valid_values_round_trip(timeout: float, expiry: float, connections: int, sessions: int,
                                 level: str) -> None:
    table = {"server": {"header_timeout": timeout, "max_connections": connections},
             "uploads": {"expiry": expiry, "max_sessions": sessions}, "log": {"level": level}}
    config = load(env={}, overrides=table)
    assert (config.server.header_timeout, config.server.max_connections) == (timeout, connections)
    assert (config.uploads.expiry, config.uploads.max_sessions, config.log.level) == (expiry, sessions, level)


@settings(max_examples=30, deadline=None)
@given(counts, st.integers(min_value=0, max_value=10**6), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_environment_strings_round_trip(sessions: int, amount: int, unit: str) -> None:
    env = {"OCIREG_UPLOADS_MAX_SESSIONS": str(sessions), "OCIREG_UPLOADS_EXPIRY": f"{amount}{unit}"}
    config = load(env=env)
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert config.uploads.max_sessions == sessions
    assert config.uploads.expiry == amount * scale


@settings(max_examples=30, deadline=None)
@given(components, st.sampled_from(["http", "https"]), components, st.none() | st.integers(1, 65535),
       st.text(string.ascii_lowercase + "/", max_size=10))
def test_valid_upstreams_round_trip(name: str, scheme: str, host: str, port: int | None, path: str) -> None:
    url = f"{scheme}://{host}{f':{port}' if port else ''}/{path}"
    config = load(env={}, overrides={"mirror": {"upstreams": [{"name": name, "url": url}], "default": name}})
    assert config.mirror.upstreams == (UpstreamConfig(name, url),)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["ftp", "http", "https", "not a scheme"]), st.text(max_size=12),
       st.text(string.ascii_letters + string.digits + "/#?:%", min_size=4, max_size=12))
def test_a_refused_url_never_shows_its_password(scheme: str, url_tail: str, password: str) -> None:
    url = f"{scheme}://user:{password}@{url_tail}"
    outcome = _load(env={}, overrides={"mirror": {"upstreams": [{"name": "a.test", "url": url}]}})
    assert isinstance(outcome, Config) or (f":{password}@" not in str(outcome) and "user:" not in str(outcome))
