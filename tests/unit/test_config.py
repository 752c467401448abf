from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from registry.config import Config, ConfigError, load

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
    config = load(str(examples / "mirror-local-upstream.toml"), env={})
    assert config.mirror.default == "registry.example.internal"
    for path in examples.rglob("*.toml"):
        with open(path, "rb") as handle:
            tomllib.load(handle)
    assert json.loads((examples / "daemon.json").read_text())["registry-mirrors"] == ["http://localhost:5000"]
