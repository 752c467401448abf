"""What `ocireg import` takes from an archive: exactly `index.json`, `oci-layout` and
`blobs/<alg>/<hex>` (a leading `./` allowed), from a plain tar whose size bounds what is written;
content must have the size its descriptors declare. A refused archive leaves no blob, upload or
link behind."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.helpers.images import OCI, build_image, write_oci_layout
from tests.tools.conftest import Ocireg, describe_run

IMAGE = build_image(OCI, seed="tools-members")
SPARSE_SIZE = 16 * 1024 * 1024


def layout(tmp_path: Path) -> Path:
    return write_oci_layout(IMAGE, tmp_path / "layout", "v1")


def tar_layout(folder: Path, archive: Path, rename: dict[str, str] | None = None) -> Path:
    with tarfile.open(archive, "w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = str(path.relative_to(folder))
                tar.add(path, arcname=(rename or {}).get(name, name))
    return archive


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def refused(ocireg: Ocireg, archive: Path, *named: str) -> str:
    result = ocireg.cli("import", "--name", "team/app", str(archive))
    assert result.returncode != 0, describe_run(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ocireg import: {archive}: "), describe_run(result)
    assert all(text in lines[0] for text in named), describe_run(result)
    for part in ("repositories", "uploads"):
        assert files_under(ocireg.data / part) == [], (part, files_under(ocireg.data / part))
    return lines[0]


@pytest.mark.parametrize("index_name", [".index.json", "../index.json", "blobs/index.json", "x/index.json"])
def test_only_a_member_named_exactly_index_json_is_the_index(
    local_ocireg: Ocireg, tmp_path: Path, index_name: str
) -> None:
    archive = tar_layout(layout(tmp_path), tmp_path / "renamed.tar", {"index.json": index_name})
    refused(local_ocireg, archive, "no index.json")


def test_a_leading_dot_slash_is_the_layout_root(local_ocireg: Ocireg, tmp_path: Path) -> None:
    folder = layout(tmp_path)
    archive = tmp_path / "dotted.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(folder), "."], check=True)
    with tarfile.open(archive) as tar:
        assert "./index.json" in tar.getnames()
    summary = local_ocireg.ok("import", "--name", "team/app", str(archive))
    assert summary.startswith("imported 1 images") and summary.endswith("team/app:v1"), summary


def test_a_compressed_archive_is_refused_before_anything_is_written(local_ocireg: Ocireg, tmp_path: Path) -> None:
    plain = tar_layout(layout(tmp_path), tmp_path / "plain.tar")
    archive = tmp_path / "cache.tar.gz"
    archive.write_bytes(gzip.compress(plain.read_bytes()))
    refused(local_ocireg, archive, "gzip-compressed")
    assert files_under(local_ocireg.data / "blobs") == []


def test_a_sparse_member_is_refused_before_its_holes_are_written(local_ocireg: Ocireg, tmp_path: Path) -> None:
    """A 16 MB hole stored in a few kilobytes: its bytes (zeros, with their true digest) would be
    written in full before any check. It is refused and nothing of it reaches the disk."""
    folder = layout(tmp_path)
    zeros = hashlib.sha256()
    for _ in range(SPARSE_SIZE // 2**20):
        zeros.update(bytes(2**20))
    hole = folder / "blobs" / "sha256" / zeros.hexdigest()
    with open(hole, "wb") as handle:
        handle.truncate(SPARSE_SIZE)
    archive = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "-cf", str(archive), "-C", str(folder), "."], check=True)
    assert archive.stat().st_size < SPARSE_SIZE // 4
    with tarfile.open(archive) as tar:
        assert any(member.issparse() for member in tar.getmembers())
    refused(local_ocireg, archive, zeros.hexdigest(), "sparse")
    assert not [name for name in files_under(local_ocireg.data / "blobs") if zeros.hexdigest() in name]


def test_an_index_entry_with_the_wrong_size_is_refused(local_ocireg: Ocireg, tmp_path: Path) -> None:
    folder = layout(tmp_path)
    index = json.loads((folder / "index.json").read_text())
    index["manifests"][0]["size"] = IMAGE.index.size + 1
    (folder / "index.json").write_text(json.dumps(index))
    archive = tar_layout(folder, tmp_path / "bad-size.tar")
    refused(local_ocireg, archive, IMAGE.digest, f"holds {IMAGE.index.size} bytes", str(IMAGE.index.size + 1))


def test_a_layer_with_the_wrong_size_is_refused(local_ocireg: Ocireg, tmp_path: Path) -> None:
    folder = layout(tmp_path)
    layer = b"layer bytes"
    config = b"{}"
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest(), "size": 5}],
    }).encode()  # fmt: skip
    for data in (layer, config, manifest):
        (folder / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()).write_bytes(data)
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(manifest),
             "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    archive = tar_layout(folder, tmp_path / "bad-layer.tar")
    refused(local_ocireg, archive, hashlib.sha256(layer).hexdigest(), digest, "says 5")


def test_members_are_never_extracted_outside_the_store(local_ocireg: Ocireg, tmp_path: Path) -> None:
    """Names that climb out are ignored, never written anywhere."""
    folder = layout(tmp_path)
    archive = tar_layout(folder, tmp_path / "climb.tar")
    with tarfile.open(archive, "a") as tar:
        info = tarfile.TarInfo("../../escaped")
        info.size = 3
        tar.addfile(info, fileobj=io.BytesIO(b"bad"))
    summary = local_ocireg.ok("import", "--name", "team/app", str(archive))
    assert summary.startswith("imported 1 images"), summary
    assert not any("escaped" in name for _, _, names in os.walk(tmp_path) for name in names)
