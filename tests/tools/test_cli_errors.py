"""Every tool that cannot do its work says why in one line, `ocireg <command>: <what and why>`,
naming the file or image at fault, exits non-zero, prints no traceback and leaves nothing
half-written behind: not an archive, not its temporary file, not an image in the store."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.images import OCI, build_image, write_oci_layout
from tests.helpers.registries import REPO_ROOT
from tests.tools.conftest import Ocireg, describe_run, store_snapshot

IMAGE = build_image(OCI, seed="tools-cli-errors", layer_size=64 * 1024)


def one_line_error(result: subprocess.CompletedProcess[str], command: str, *named: str) -> str:
    """The single stderr line of a failed command; asserts its shape and what it names."""
    assert result.returncode != 0, describe_run(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, describe_run(result)
    assert lines[0].startswith(f"ocireg {command}: "), describe_run(result)
    for text in named:
        assert text in lines[0], describe_run(result)
    return lines[0]


def layout_tar(tmp_path: Path, name: str, index: Any = None, index_bytes: bytes | None = None) -> Path:
    """IMAGE as an OCI layout archive; `index`/`index_bytes` replace its index.json."""
    layout = write_oci_layout(IMAGE, tmp_path / f"{name}-layout", "v1")
    if index is not None or index_bytes is not None:
        (layout / "index.json").write_bytes(index_bytes if index_bytes is not None else json.dumps(index).encode())
    archive = tmp_path / f"{name}.tar"
    with tarfile.open(archive, "w") as tar:
        for path in sorted(layout.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(layout)))
    return archive


def partials(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if "partial" in name)


GOOD_ENTRY = {"mediaType": IMAGE.index.media_type, "digest": IMAGE.digest, "size": IMAGE.index.size}


@pytest.mark.parametrize("index, index_bytes", [
    (None, b"[" * 100_000 + b"]" * 100_000),
    ([GOOD_ENTRY], None),
    ({"manifests": "all of them"}, None),
    ({"manifests": [{"mediaType": IMAGE.index.media_type}]}, None),
    ({"manifests": [7]}, None),
    ({"manifests": [{**GOOD_ENTRY, "annotations": ["v1"]}]}, None),
    ({"manifests": [{**GOOD_ENTRY, "annotations": {"org.opencontainers.image.ref.name": 3}}]}, None),
    ({"manifests": [{**GOOD_ENTRY, "digest": "sha256:not-hex"}]}, None),
    ({"manifests": [{**GOOD_ENTRY, "digest": ["sha256"]}]}, None),
    (None, b"\xff\xfe not json"),
], ids=["deep", "list", "manifests-str", "no-digest", "entry-int", "annotations-list", "ref-int",
        "bad-digest", "digest-list", "not-json"])  # fmt: skip
def test_import_of_an_odd_index_is_one_line_naming_the_archive(
    local_ocireg: Ocireg, tmp_path: Path, index: Any, index_bytes: bytes | None
) -> None:
    archive = layout_tar(tmp_path, "odd", index, index_bytes)
    result = local_ocireg.cli("import", "--name", "team/app", str(archive))
    line = one_line_error(result, "import", str(archive), "index.json", "nothing imported")
    assert "Traceback" not in result.stderr, line
    assert not [k for k in store_snapshot(local_ocireg.data) if k.startswith("repositories/")], line


def test_export_to_a_folder_is_refused_and_leaves_no_partial(local_ocireg: Ocireg, tmp_path: Path) -> None:
    local_ocireg.ok("import", "--name", "team/app", str(layout_tar(tmp_path, "good")))
    target = tmp_path / "out"
    target.mkdir()
    result = local_ocireg.cli("export", "-o", str(target), "team/app:v1")
    one_line_error(result, "export", str(target), "folder")
    assert partials(tmp_path) == [] and os.listdir(target) == []


def test_export_to_a_full_disk_fails_in_one_line_and_leaves_nothing(local_ocireg: Ocireg, tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes a write past 32 KB fail with EFBIG, as a full disk fails with
    ENOSPC: the archive (over 128 KB of layers) cannot be finished."""
    local_ocireg.ok("import", "--name", "team/app", str(layout_tar(tmp_path, "good")))
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    archive = out_dir / "cache.tar"
    argv = [sys.executable, "-m", "registry", "export", "--config", str(local_ocireg.config),
            "--data", str(local_ocireg.data), "-o", str(archive), "team/app:v1"]  # fmt: skip

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, 32 * 1024))

    result = subprocess.run(argv, cwd=REPO_ROOT, env=local_ocireg.env, capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL, preexec_fn=small_disk, check=False)  # fmt: skip
    one_line_error(result, "export", str(archive), "nothing written")
    assert os.listdir(out_dir) == [], os.listdir(out_dir)


def test_gc_with_a_size_past_any_float_is_a_usage_error(local_ocireg: Ocireg) -> None:
    local_ocireg.data.mkdir(parents=True)
    for size in ("1e400G", "-5G", "nanG"):
        result = local_ocireg.cli("gc", f"--max-size={size}")
        one_line_error(result, "gc", repr(size))
        assert result.returncode == 2, describe_run(result)


def test_seed_from_a_missing_file_names_it(local_ocireg: Ocireg, tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    one_line_error(local_ocireg.cli("seed", "-f", str(missing)), "seed", str(missing), "No such file")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    one_line_error(local_ocireg.cli("seed", "-f", str(binary)), "seed", str(binary))


def test_seed_without_an_upstream_is_a_usage_error(local_ocireg: Ocireg, tmp_path: Path) -> None:
    """Seeding fills the mirror cache: with no upstream configured there is no mirror to fill."""
    config = tmp_path / "no-upstreams.toml"
    config.write_text("[mirror]\nupstreams = []\n")
    no_mirror = Ocireg(tmp_path / "no-mirror", config, local_ocireg.stack)
    result = no_mirror.cli("seed", "team/app:v1")
    one_line_error(result, "seed", "no upstream is configured")
    assert result.returncode == 2, describe_run(result)


def test_verify_and_gc_of_a_missing_data_folder_fail(local_ocireg: Ocireg, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-data"
    for command in ("verify", "gc"):
        result = local_ocireg.cli(command, data=missing)
        one_line_error(result, command, str(missing), "no such data folder")
        assert result.stdout == "", describe_run(result)
    assert not missing.exists()


@pytest.mark.parametrize("toml, named", [
    ('[log]\nlevel = "verbose"\n', "log.level"),
    ('[[mirror.upstreams]]\nname = "a.test"\nurl = "not a url"\n', "'not a url'"),
    ('[[mirror.upstreams]]\nname = "a.test"\nurl = "ftp://h.test"\n', "'ftp://h.test'"),
    ('[[mirror.upstreams]]\nname = "A Test"\nurl = "http://h.test"\n', "'A Test'"),
    ('[[mirror.upstreams]]\nname = "a.test"\nurl = "http://h.test"\ntag_ttl = -1\n', "tag_ttl"),
    ('[[mirror.upstreams]]\nname = "a.test"\nurl = "http://h.test"\npassword_env = "NOT_SET_ANYWHERE"\n',
     "NOT_SET_ANYWHERE"),
])  # fmt: skip
@pytest.mark.parametrize("command", ["serve", "verify"])
def test_a_bad_configuration_file_is_one_line_at_start(
    local_ocireg: Ocireg, command: str, toml: str, named: str
) -> None:
    local_ocireg.config.write_text(toml)
    one_line_error(local_ocireg.cli(command, timeout=30), command, "configuration error", named)


def test_data_that_is_a_file_is_named_as_such_not_as_a_listen_error(local_ocireg: Ocireg, tmp_path: Path) -> None:
    file = tmp_path / "data-file"
    file.write_text("")
    line = one_line_error(local_ocireg.cli("serve", data=file, timeout=30), "serve", str(file), "not a folder")
    assert "listen" not in line and "serve on" not in line


def test_a_password_in_a_refused_url_is_not_shown(local_ocireg: Ocireg) -> None:
    local_ocireg.config.write_text('[[mirror.upstreams]]\nname = "a.test"\nurl = "ftp://me:hunter2@h.test"\n')
    result = local_ocireg.cli("verify")
    one_line_error(result, "verify", "ftp://h.test")
    assert "hunter2" not in result.stderr + result.stdout


def test_a_failure_while_linking_names_the_image_and_what_was_imported(local_ocireg: Ocireg, tmp_path: Path) -> None:
    """A file where the repository's folder must go: the checks pass, linking cannot."""
    archive = layout_tar(tmp_path, "good")
    blocker = local_ocireg.data / "repositories" / "team"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("")
    result = local_ocireg.cli("import", "--name", "team/app", str(archive))
    one_line_error(result, "import", str(archive), "team/app:v1", "0 of 1 images imported")


def test_import_of_something_that_is_no_file_says_which(local_ocireg: Ocireg, tmp_path: Path) -> None:
    one_line_error(local_ocireg.cli("import", str(tmp_path / "absent.tar")), "import", "no such file")
    one_line_error(local_ocireg.cli("import", str(tmp_path)), "import", str(tmp_path), "not a regular file")
