"""`ocireg export` and `ocireg import`: a CI cache carried between runs as one tar file.

The round trip a CI job does: seed the mirror, export, wipe the store, import with no upstream
at all, then pull by tag and by digest with skopeo and containerd's `ctr` (hosts.toml naming
ocireg as the mirror of docker.io). The export is read by skopeo's own `oci-archive:`
transport; archives written by skopeo import too. A damaged archive is refused and leaves
nothing visible behind.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import requests

from tests.helpers.client import RegistryClient
from tests.helpers.containerd import Containerd, write_hosts_toml
from tests.helpers.images import (
    AMD64,
    ARM64,
    OCI,
    REF_NAME_ANNOTATION,
    build_image,
    write_oci_layout,
)
from tests.helpers.skopeo import Skopeo
from tests.tools.conftest import (
    APP,
    HUB,
    LIST,
    MIRRORED_APP,
    Ocireg,
    OciregFactory,
    Upstream,
    assert_dir_holds,
    assert_single_dir_holds,
    catalog,
    describe_run,
    store_snapshot,
    summary_line,
)

LOCAL = build_image(OCI, seed="tools-local")  # pushed to ocireg itself as team/web:v2


def export_mirrored(ocireg: Ocireg, archive: Path) -> None:
    """Seed app:v1 and app:list from the upstream and export them."""
    ocireg.ok("seed", "app:v1", "app:list")
    summary = ocireg.ok("export", "-o", str(archive), "app:v1", "app:list")
    assert summary.startswith("exported 2 images"), summary


def archive_index(archive: Path) -> dict[str, object]:
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert "oci-layout" in names and "index.json" in names, names
        member = tar.extractfile("index.json")
        assert member is not None
        return dict(json.loads(member.read()))


def ref_names(index: dict[str, object]) -> dict[str, str]:
    """ref name -> digest of each entry of an archive's index.json."""
    entries = index["manifests"]
    assert isinstance(entries, list)
    return {e["annotations"][REF_NAME_ANNOTATION]: e["digest"] for e in entries}


def rewrite_archive(source: Path, target: Path, member_name: str, flip_at: int | None) -> None:
    """Copy a tar member by member; flip one byte of `member_name` (or cut the tar off there)."""
    with tarfile.open(source) as src, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src.getmembers():
            handle = src.extractfile(member)
            data = handle.read() if handle is not None else b""
            if member.name == member_name and flip_at is not None:
                data = data[:flip_at] + bytes([data[flip_at] ^ 0x01]) + data[flip_at + 1 :]
            dst.addfile(member, io.BytesIO(data))


def blob_members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return [name for name in tar.getnames() if name.startswith("blobs/")]


def assert_nothing_visible(http: requests.Session, restore: Ocireg) -> None:
    """No repository, tag or manifest in the store, on disk or through the API."""
    repositories = restore.data / "repositories"
    leftovers = [str(p.relative_to(restore.data)) for p in repositories.rglob("*") if p.is_file()]
    assert leftovers == [], f"links or tags left behind: {leftovers}"
    server = restore.serve("--offline")
    assert catalog(http, server) == []
    for reference in ("v1", "list", APP.digest, LIST.digest):
        response = http.get(f"{server.url}/v2/{MIRRORED_APP}/manifests/{reference}")
        assert response.status_code == 404, (reference, response.status_code, response.text)
    tags = http.get(f"{server.url}/v2/{MIRRORED_APP}/tags/list")
    assert tags.status_code == 404 or tags.json().get("tags") in (None, []), tags.text


def test_export_wipe_import_then_pull_by_tag_and_digest_with_skopeo_and_ctr(
    ocireg: Ocireg,
    upstream: Upstream,
    skopeo: Skopeo,
    containerd: Containerd,
    tmp_path: Path,
) -> None:
    archive = tmp_path / "cache.tar"
    export_mirrored(ocireg, archive)
    assert ref_names(archive_index(archive)) == {"v1": APP.digest, "list": LIST.digest}

    # skopeo reads the export with its own oci-archive transport
    read_back = tmp_path / "read-back"
    skopeo.copy_all(f"oci-archive:{archive}:v1", f"dir:{read_back}")
    assert_dir_holds(read_back, APP)

    # a CI job's next run: no network, an empty store, the cache file
    upstream.stop()
    shutil.rmtree(ocireg.data)
    first = ocireg.ok("import", str(archive))
    assert first.startswith("imported 2 images"), first
    after_first = store_snapshot(ocireg.data)
    second = ocireg.ok("import", str(archive))
    assert second.startswith("imported 2 images"), second
    assert store_snapshot(ocireg.data) == after_first, "a second import changed the store"

    server = ocireg.serve()
    repo = server.ref(MIRRORED_APP)
    for reference, image in ((":v1", APP), (":list", LIST), (f"@{APP.digest}", APP),
                             (f"@{LIST.digest}", LIST)):  # fmt: skip
        out = tmp_path / f"pulled{reference.replace(':', '-').replace('@', '-')}"
        skopeo.copy_all(f"docker://{repo}{reference}", f"dir:{out}")
        assert_dir_holds(out, image)

    hosts_dir = tmp_path / "hosts"
    write_hosts_toml(hosts_dir, HUB, server.url)
    name = f"{HUB}/library/app"
    containerd.ctr(
        "images", "pull", "--hosts-dir", str(hosts_dir), "--platform", ARM64, f"{name}:v1"
    )
    containerd.ctr(
        "images", "pull", "--hosts-dir", str(hosts_dir), "--platform", AMD64, f"{name}:list"
    )
    containerd.ctr("images", "pull", "--hosts-dir", str(hosts_dir), "--platform", AMD64,
                   f"{name}@{APP.digest}")  # fmt: skip
    listed = containerd.ctr("images", "ls").stdout
    for reference, digest in ((f"{name}:v1", APP.digest), (f"{name}:list", LIST.digest),
                              (f"{name}@{APP.digest}", APP.digest)):  # fmt: skip
        assert any(
            line.split()[:1] == [reference] and digest in line for line in listed.splitlines()
        ), listed
    assert containerd.content(APP.digest) == APP.index.data
    assert containerd.content(LIST.digest) == LIST.index.data
    for image, platform in ((APP, ARM64), (APP, AMD64), (LIST, AMD64)):
        child = image.child(platform)
        assert containerd.content(child.digest) == child.manifest.data, (image.digest, platform)
        for blob in (child.config, *child.layers):
            assert containerd.content(blob.digest) == blob.data, (platform, blob.digest)


def test_export_completes_a_partly_cached_image_and_names_what_failed(
    ocireg: Ocireg, upstream: Upstream, skopeo: Skopeo, tmp_path: Path
) -> None:
    """Only arm64 was seeded: the export fetches the rest through the mirror, so the archive
    holds the whole image. An image nobody has fails the export, by name, and writes nothing."""
    ocireg.ok("seed", "--platform", ARM64, "app:v1")
    archive = tmp_path / "cache.tar"
    summary = ocireg.ok("export", "-o", str(archive), "app:v1")
    assert summary.startswith("exported 1 images"), summary
    with tarfile.open(archive) as tar:
        members = set(tar.getnames())
    assert {f"blobs/sha256/{b.digest[7:]}" for b in APP.blobs()} <= members, members
    out = tmp_path / "read-back"
    skopeo.copy_all(f"oci-archive:{archive}:v1", f"dir:{out}")
    assert_dir_holds(out, APP)

    failed = tmp_path / "failed.tar"
    result = ocireg.fails("export", "-o", str(failed), "app:v1", "nosuch:v1")
    assert summary_line(result).endswith("1 failed"), describe_run(result)
    assert any("nosuch:v1" in line and "failed:" in line for line in result.stderr.splitlines()), (
        describe_run(result)
    )
    assert not failed.exists() and not Path(f"{failed}.partial").exists()


def test_export_and_import_keep_the_names_of_locally_pushed_images(
    local_ocireg: Ocireg, ocireg_factory: OciregFactory, skopeo: Skopeo, tmp_path: Path
) -> None:
    """`team/web:v2` pushed to ocireg comes back as `team/web:v2`, not as a Docker Hub image."""
    server = local_ocireg.serve()
    RegistryClient(server.url).push_image("team/web", LOCAL, "v2")
    archive = tmp_path / "local.tar"
    summary = local_ocireg.ok("export", "-o", str(archive), "team/web:v2")
    assert summary.startswith("exported 1 images"), summary
    assert ref_names(archive_index(archive)) == {"v2": LOCAL.digest}
    out = tmp_path / "read-back"
    skopeo.copy_all(f"oci-archive:{archive}:v2", f"dir:{out}")
    assert_dir_holds(out, LOCAL)

    restore = ocireg_factory(f"http://127.0.0.1:{server.port}", name="restore")
    imported = restore.ok("import", str(archive))
    assert imported.startswith("imported 1 images") and imported.endswith(": team/web:v2"), imported
    restored = restore.serve()
    for reference in (":v2", f"@{LOCAL.digest}"):
        pulled = tmp_path / f"pulled{reference[:3]}"
        skopeo.copy_all(f"docker://{restored.ref('team/web')}{reference}", f"dir:{pulled}")
        assert_dir_holds(pulled, LOCAL)


@pytest.mark.parametrize("which", ["first", "last"])
def test_import_refuses_an_archive_with_a_flipped_byte_and_imports_nothing(
    ocireg: Ocireg,
    ocireg_factory: OciregFactory,
    upstream: Upstream,
    http: requests.Session,
    tmp_path: Path,
    which: str,
) -> None:
    archive = tmp_path / "cache.tar"
    export_mirrored(ocireg, archive)
    members = blob_members(archive)
    damaged_member = members[0] if which == "first" else members[-1]
    damaged = tmp_path / "damaged.tar"
    rewrite_archive(archive, damaged, damaged_member, flip_at=10)

    restore = ocireg_factory(upstream.url, name="restore")
    result = restore.fails("import", str(damaged))
    assert result.stderr.startswith(f"ocireg import: {damaged}: "), describe_run(result)
    assert result.stderr.rstrip().endswith("nothing imported"), describe_run(result)
    assert damaged_member.rsplit("/", 1)[1] in result.stderr, describe_run(result)
    assert "does not match its digest" in result.stderr, describe_run(result)
    upstream.stop()
    assert_nothing_visible(http, restore)


def test_import_refuses_a_truncated_archive_with_a_clear_message(
    ocireg: Ocireg, ocireg_factory: OciregFactory, upstream: Upstream,
    http: requests.Session, tmp_path: Path,
) -> None:  # fmt: skip
    """A cache file cut short (a CI upload that died): refused with a message, not a traceback."""
    archive = tmp_path / "cache.tar"
    export_mirrored(ocireg, archive)
    data = archive.read_bytes()
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(data[: len(data) // 2])

    restore = ocireg_factory(upstream.url, name="restore")
    result = restore.fails("import", str(truncated))
    assert "Traceback" not in result.stderr, describe_run(result)
    assert result.stderr.startswith(f"ocireg import: {truncated}: "), describe_run(result)
    assert len(result.stderr.splitlines()) == 1, describe_run(result)
    upstream.stop()
    assert_nothing_visible(http, restore)


@pytest.mark.parametrize("platforms", ["all", "one"])
def test_import_an_archive_written_by_skopeo(
    local_ocireg: Ocireg, skopeo: Skopeo, tmp_path: Path, platforms: str
) -> None:
    """skopeo's archives name entries by tag only: `--name` gives the repository."""
    layout = write_oci_layout(APP, tmp_path / "layout", "v1")
    archive = tmp_path / "skopeo.tar"
    if platforms == "all":
        skopeo.copy_all(f"oci:{layout}:v1", f"oci-archive:{archive}:v1")
    else:  # one platform: the archive's entry is a manifest, not an index
        skopeo("--override-os", "linux", "--override-arch", "arm64", "--override-variant", "v8",
               "copy", "--preserve-digests", f"oci:{layout}:v1", f"oci-archive:{archive}:v1")  # fmt: skip

    unnamed = local_ocireg.fails("import", str(archive))
    assert "--name" in unnamed.stderr, describe_run(unnamed)

    summary = local_ocireg.ok("import", "--name", "team/app", str(archive))
    # the repository is the one named, as pushed to ocireg (not docker.io/team/app)
    assert summary.startswith("imported 1 images") and summary.endswith(": team/app:v1"), summary
    server = local_ocireg.serve()
    out = tmp_path / "pulled"
    if platforms == "all":
        skopeo.copy_all(f"docker://{server.ref('team/app')}:v1", f"dir:{out}")
        assert_dir_holds(out, APP)
    else:
        skopeo.copy_all(f"docker://{server.ref('team/app')}:v1", f"dir:{out}")
        assert_single_dir_holds(out, APP, ARM64)
