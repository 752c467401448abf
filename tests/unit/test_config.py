from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest

from registry.config import Config, ConfigError, UpstreamConfig, load

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "ocireg.toml"


def test_defaults() -> None:
    config = load(env={})
    assert config == Config()
    assert config.server.listen == "127.0.0.1:5000"
    assert config.storage.root == "./data"


def test_shipped_file_documents_the_defaults() -> None:
    with open(SHIPPED, "rb") as handle:
        assert tomllib.load(handle)  # not empty: every setting is written out
    assert load(str(SHIPPED), env={}) == Config()


def test_layers_override_in_order(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[server]\nlisten = "127.0.0.1:6000"\n[storage]\nroot = "/from/file"\n[log]\naccess = false\n')
    config = load(str(path), env={"OCIREG_STORAGE_ROOT": "/from/env"}, overrides={"server": {"listen": "[::1]:7000"}})
    assert config.server.listen == "[::1]:7000"
    assert (config.server.host, config.server.port) == ("::1", 7000)
    assert config.storage.root == "/from/env"
    assert config.log.access is False


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[storage]\nroot = "/x"\n')
    assert load(env={"OCIREG_CONFIG": str(path)}).storage.root == "/x"


@pytest.mark.parametrize("text, named", [
    ("[server]\nlisen = 'x'\n", "server.lisen"),
    ("[nope]\n", "[nope]"),
    ("[log]\naccess = 'maybe'\n", "log.access"),
    ("[server]\nlisten = 'noport'\n", "server.listen"),
])
def test_bad_files_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        load(str(path), env={})


def test_unknown_environment_variable() -> None:
    with pytest.raises(ConfigError, match="OCIREG_SERVER_LISTN"):
        load(env={"OCIREG_SERVER_LISTN": "x"})
    with pytest.raises(ConfigError, match="OCIREG_WHATEVER"):
        load(env={"OCIREG_WHATEVER": "x"})


def test_mirror_upstreams_and_durations(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[mirror]\ndefault = "docker.io"\n\n[[mirror.upstreams]]\nname = "docker.io"\n'
                    'url = "http://127.0.0.1:5402"\ntag_ttl = "0s"\nmax_stale = "1h30m"\ninclude = ["library/*"]\n')
    mirror = load(str(path), env={}).mirror
    assert mirror.default == "docker.io"
    (upstream,) = mirror.upstreams
    assert (upstream.tag_ttl, upstream.max_stale, upstream.include) == (0.0, 5400.0, ("library/*",))
    assert load(env={}).mirror.upstreams[0].tag_ttl == 300.0


@pytest.mark.parametrize("text, named", [
    ('[[mirror.upstreams]]\nname = "a"\nurl = "http://x"\ntag_ttl = "soon"\n', "tag_ttl"),
    ('[[mirror.upstreams]]\nname = "a"\nurl = "http://x"\nbogus = 1\n', "bogus"),
    ('[[mirror.upstreams]]\nname = "a"\n', "needs a name and a url"),
    ('[mirror]\ndefault = "nowhere"\n', "mirror.default"),
])
def test_bad_mirror_settings(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named):
        load(str(path), env={})


def test_examples_are_valid() -> None:
    examples = SHIPPED.parent / "examples"
    config = load(str(examples / "mirror-local-upstream.toml"), env={"PRIVATE_REGISTRY_PASSWORD": "x"})
    assert config.mirror.default == "registry.example.internal"
    for path in examples.rglob("*.toml"):
        with open(path, "rb") as handle:
            tomllib.load(handle)
    assert json.loads((examples / "daemon.json").read_text())["registry-mirrors"] == ["http://localhost:5000"]


UPSTREAM = '[[mirror.upstreams]]\nname = "a.test"\nurl = "http://127.0.0.1:1"\n'


@pytest.mark.parametrize("text, named", [
    ('[log]\nlevel = "verbose"\n', "log.level: expected one of debug, info, warning, error, got 'verbose'"),
    ('[server]\nheader_timeout = -1\n', "server.header_timeout: .* got -1.0"),
    ('[server]\nbody_timeout = nan\n', "server.body_timeout: .* got nan"),
    ('[server]\nkeepalive_timeout = -0.5\n', "server.keepalive_timeout"),
    ('[server]\nmax_connections = -1\n', "server.max_connections: .* got -1"),
    ('[server]\nmax_connections = 0\n', "server.max_connections: expected a count of one or more, got 0"),
    ('[server]\nmax_connections = inf\n', "server.max_connections: expected int, got inf"),
    ('[server]\nmax_connections = 1.5\n', "server.max_connections: expected int, got 1.5"),
    ('[server]\nlisten = "127.0.0.1:1_000"\n', "server.listen"),
    ('[server]\nlisten = "127.0.0.1:"\n', "server.listen"),
    ('[uploads]\nmax_sessions = -3\n', "uploads.max_sessions: .* got -3"),
    ('[uploads]\nmax_sessions = 0\n', "uploads.max_sessions: expected a count of one or more, got 0"),
    ('[uploads]\nexpiry = -60\n', "uploads.expiry: .* got -60.0"),
    ('[mirror]\nupstreams = [{name = "a.test", url = "not a url"}]\n', "upstreams\\[0\\].url: .*'not a url'"),
    ('[mirror]\nupstreams = [{name = "a.test", url = "ftp://h.test"}]\n', "upstreams\\[0\\].url: .*'ftp://h.test'"),
    ('[mirror]\nupstreams = [{name = "a.test", url = "http://"}]\n', "upstreams\\[0\\].url"),
    ('[mirror]\nupstreams = [{name = "a.test", url = "http://h.test:99999"}]\n', "upstreams\\[0\\].url"),
    ('[mirror]\nupstreams = [{name = "Not A Host", url = "http://h.test"}]\n', "upstreams\\[0\\].name: 'Not A Host'"),
    ('[mirror]\nupstreams = [{name = "a.test/b", url = "http://h.test"}]\n', "upstreams\\[0\\].name"),
    ('[mirror]\nupstreams = [{name = "h.test:5000", url = "http://h.test"}]\n', "upstreams\\[0\\].name"),
    (UPSTREAM + 'tag_ttl = -5\n', "upstreams\\[0\\].tag_ttl: .* got -5.0"),
    (UPSTREAM + 'max_stale = -1\n', "upstreams\\[0\\].max_stale"),
    (UPSTREAM + 'password_env = "UNSET_PASSWORD"\n', "password_env: environment variable UNSET_PASSWORD is not set"),
])
def test_values_that_cannot_work_are_refused_at_load(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named):
        load(str(path), env={})


def test_a_url_with_a_password_is_named_without_it(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[mirror]\nupstreams = [{name = "a.test", url = "ftp://user:s3cret@h.test/x"}]\n')
    with pytest.raises(ConfigError) as raised:
        load(str(path), env={})
    assert "s3cret" not in str(raised.value) and "user" not in str(raised.value)
    assert "ftp://h.test/x" in str(raised.value)


def test_environment_values_are_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"log\.level"):
        load(env={"OCIREG_LOG_LEVEL": "loud"})
    with pytest.raises(ConfigError, match=r"uploads\.max_sessions: expected int, got '1e3'"):
        load(env={"OCIREG_UPLOADS_MAX_SESSIONS": "1e3"})
    assert load(env={"OCIREG_UPLOADS_MAX_SESSIONS": "12", "OCIREG_LOG_LEVEL": "WARNING"}).uploads.max_sessions == 12


def test_a_storage_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "data"
    file.write_text("")
    with pytest.raises(ConfigError, match=f"storage.root: '{file}' exists and is not a folder"):
        load(env={}, overrides={"storage": {"root": str(file)}})
    assert load(env={}, overrides={"storage": {"root": str(tmp_path / "new")}}).storage.root == str(tmp_path / "new")


def test_a_set_password_variable_is_accepted_and_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(UPSTREAM + 'password_env = "UPSTREAM_PASSWORD"\n')
    (upstream,) = load(str(path), env={"UPSTREAM_PASSWORD": "x"}).mirror.upstreams
    assert upstream.password_env == "UPSTREAM_PASSWORD"


@pytest.mark.parametrize("word, expected", [("1", True), ("Yes", True), ("ON", True), ("true", True),
                                            ("0", False), ("no", False), ("Off", False), ("FALSE", False)])
def test_booleans_take_exactly_these_words(word: str, expected: bool) -> None:
    assert load(env={"OCIREG_LOG_ACCESS": word}).log.access is expected


@pytest.mark.parametrize("word", ["t", "y", "2", "", "off ", "enabled"])
def test_other_boolean_words_are_refused(word: str) -> None:
    with pytest.raises(ConfigError, match=f"environment: log.access: expected bool, got {word!r}"):
        load(env={"OCIREG_LOG_ACCESS": word})


@pytest.mark.parametrize("value", [True, 2.0, "2.0", "0x10", [1]])
def test_counts_are_integers_or_integer_strings_only(value: object) -> None:
    with pytest.raises(ConfigError, match=r"flags: server\.max_connections: expected int, got"):
        load(env={}, overrides={"server": {"max_connections": value}})
    assert load(env={}, overrides={"server": {"max_connections": " +12 "}}).server.max_connections == 12


def test_an_error_names_the_layer_it_was_written_in(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[uploads]\nexpiry = \"-5s\"\n")
    with pytest.raises(ConfigError, match=f"^{path}: uploads.expiry: expected a duration like"):
        load(str(path), env={})
    with pytest.raises(ConfigError, match=r"^environment: uploads\.max_sessions: expected a count of one or more"):
        load(env={"OCIREG_UPLOADS_MAX_SESSIONS": "0"})
    with pytest.raises(ConfigError, match=r"^flags: mirror\.upstreams\[1\]: unknown key tll"):
        load(env={}, overrides={"mirror": {"upstreams": [{"name": "a", "url": "http://a"},
                                                         {"name": "b", "url": "http://b", "tll": 1}]}})


def test_settings_are_frozen_hashable_dataclasses() -> None:
    config = load(env={"OCIREG_LOG_LEVEL": "WARNING"})
    assert config.log.level == "warning"
    assert hash(config) == hash(load(env={"OCIREG_LOG_LEVEL": "warning"}))
    assert [f.name for f in dataclasses.fields(UpstreamConfig)][:2] == ["name", "url"]
    assert UpstreamConfig("a.test", "http://a.test").url == "http://a.test"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.log.level = "debug"  # type: ignore[misc]
