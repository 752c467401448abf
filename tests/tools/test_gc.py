"""`ocireg gc`: mark and sweep while the server runs, and the mirror's eviction rules.

Safety first: eight clients push distinct images into a running `ocireg serve` while gc runs
again and again with its default grace period; every image must pull back with equal digests.
Content made unreferenced before (and backdated past the grace period with os.utime) must be
freed. Then the options: `--untagged` drops manifests no tag or referrer keeps; `--older-than`
and `--max-size` evict mirrored images least recently pulled first (the mirror records a pull
on the manifest link's mtime), and never evict what was pushed to ocireg itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
import requests

from tests.helpers.client import RegistryClient
from tests.helpers.images import AMD64, OCI, Blob, MultiArchImage, build_image
from tests.helpers.skopeo import Skopeo
from tests.tools.conftest import (
    APP,
    LIST,
    MIRRORED_APP,
    Ocireg,
    Upstream,
    assert_dir_holds,
    blob_path,
    describe_run,
    manifest_link,
    store_snapshot,
    summary_line,
)

HOUR = 3600.0
DAY = 86400.0
PUSHERS = 8
IMAGES_PER_PUSHER = 4
LOCAL = build_image(OCI, seed="tools-gc-local", layer_size=64 * 1024)


def backdate(paths: Iterable[Path], seconds: float) -> None:
    when = time.time() - seconds
    for path in paths:
        os.utime(path, (when, when))


def blob_files(data: Path, blobs: Iterable[Blob]) -> list[Path]:
    return [blob_path(data, b.digest) for b in blobs]


def freed_bytes(summary: str) -> int:
    """The bytes a gc summary says it freed (`gc freed 1.2 KB (...)`), rounded as printed."""
    match = re.match(r"gc (?:would free|freed) ([\d.]+) (B|KB|MB|GB|TB) ", summary)
    assert match, f"not a gc summary: {summary!r}"
    scale = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}[match.group(2)]
    return int(float(match.group(1)) * scale)


def at_least(summary: str, expected: int) -> bool:
    """The summary's bytes freed, rounded to 0.1 KB/MB/..., cover `expected` bytes."""
    freed = freed_bytes(summary)
    return freed >= expected or (expected >= 1000 and freed >= round(expected, -2) - 50)


def push_single(client: RegistryClient, repo: str, image: MultiArchImage, reference: str) -> Blob:
    """Push the amd64 child of `image` alone (config, layer, manifest); returns the manifest."""
    child = image.child(AMD64)
    for blob in (*child.layers, child.config):
        client.push_blob(repo, blob)
    client.put_manifest(repo, reference, child.manifest)
    return child.manifest


def delete(client: RegistryClient, path: str) -> None:
    response = client.request("DELETE", path)
    assert response.status_code == 202, (path, response.status_code, response.text)


def test_gc_while_eight_pushes_run_loses_none_and_frees_what_was_unreferenced(
    local_ocireg: Ocireg, skopeo: Skopeo, tmp_path: Path
) -> None:
    """The documented guarantee, with the default grace period (1h).

    Before: `team/gone` is pushed, then its manifest and blobs are deleted through the API and
    its files backdated two hours: unreferenced and old, gc must free it. `team/kept` is as old
    but tagged: gc must keep it. `team/revived` is made unreferenced and old like `team/gone`,
    but one of the pushes sends its blobs again under a new name, which must renew them. Then
    8 threads push 4 distinct images each while gc runs in a loop from the moment the pushes
    start until they end, and once more after.
    """
    server = local_ocireg.serve()
    client = RegistryClient(server.url)
    gone = build_image(OCI, seed="tools-gc-gone", layer_size=32 * 1024)
    gone_child = gone.child(AMD64)
    gone_manifest = push_single(client, "team/gone", gone, "v1")
    delete(client, f"/v2/team/gone/manifests/{gone_manifest.digest}")
    for blob in (*gone_child.layers, gone_child.config):
        delete(client, f"/v2/team/gone/blobs/{blob.digest}")
    revived = build_image(OCI, seed="tools-gc-revived", layer_size=32 * 1024)
    revived_manifest = push_single(client, "team/revived", revived, "v1")
    delete(client, f"/v2/team/revived/manifests/{revived_manifest.digest}")
    for blob in (*revived.child(AMD64).layers, revived.child(AMD64).config):
        delete(client, f"/v2/team/revived/blobs/{blob.digest}")
    kept = build_image(OCI, seed="tools-gc-kept")
    client.push_image("team/kept", kept, "v1")
    old_content = [*gone.blobs(), *revived.blobs(), *kept.blobs()]
    backdate([p for p in blob_files(local_ocireg.data, old_content) if p.exists()], 2 * HOUR)

    images = {
        f"team/push-{i}/img-{j}": build_image(OCI, seed=f"tools-gc-{i}-{j}", layer_size=128 * 1024)
        for i in range(PUSHERS)
        for j in range(IMAGES_PER_PUSHER)
    }
    images["team/push-0/img-0"] = revived  # pushes old, unreferenced blobs again
    start = threading.Event()
    errors: list[str] = []

    def pusher(i: int) -> None:
        own = RegistryClient(server.url, timeout=60)
        start.wait()
        try:
            for j in range(IMAGES_PER_PUSHER):
                name = f"team/push-{i}/img-{j}"
                own.push_image(name, images[name], "v1")
        except Exception as error:
            errors.append(f"pusher {i}: {error!r}")

    threads = [threading.Thread(target=pusher, args=(i,)) for i in range(PUSHERS)]
    for thread in threads:
        thread.start()
    start.set()
    summaries: list[str] = []
    while any(thread.is_alive() for thread in threads):
        result = local_ocireg.cli("gc")
        assert result.returncode == 0, describe_run(result)
        summaries.append(summary_line(result))
    overlapping = len(summaries)
    for thread in threads:
        thread.join()
    assert not errors, f"pushes failed while gc ran: {errors}\ngc runs: {summaries}"
    assert overlapping >= 2, f"only {overlapping} gc runs overlapped the pushes: make them longer"
    summaries.append(local_ocireg.ok("gc"))  # and once more after the pushes

    assert sum(freed_bytes(s) for s in summaries) > 0, summaries
    for blob in (*gone_child.layers, gone_child.config, gone_manifest):
        assert not blob_path(local_ocireg.data, blob.digest).exists(), f"{blob.digest} not freed"

    for name, image in [*images.items(), ("team/kept", kept)]:
        out = tmp_path / "pulled" / name.replace("/", "_")
        out.parent.mkdir(exist_ok=True)
        skopeo.copy_all(f"docker://{server.ref(name)}:v1", f"dir:{out}")
        assert_dir_holds(out, image)


def test_gc_frees_the_blobs_of_a_deleted_manifest(local_ocireg: Ocireg) -> None:
    """A manifest deleted through the API (the client deletes nothing else, as skopeo and
    `crane delete` do): its unique layer and config are then referenced by no manifest."""
    server = local_ocireg.serve()
    client = RegistryClient(server.url)
    image = build_image(OCI, seed="tools-gc-deleted")
    child = image.child(AMD64)
    manifest = push_single(client, "team/deleted", image, "v1")
    delete(client, f"/v2/team/deleted/manifests/{manifest.digest}")
    kept = build_image(OCI, seed="tools-gc-kept-2")
    client.push_image("team/kept", kept, "v1")

    summary = local_ocireg.ok("gc", "--grace", "0s")
    assert at_least(summary, sum(b.size for b in (manifest, child.config, *child.layers))), summary
    for blob in (manifest, child.config, *child.layers):
        assert not blob_path(local_ocireg.data, blob.digest).exists(), f"{blob.digest} not freed"
    for blob in kept.blobs():
        assert blob_path(local_ocireg.data, blob.digest).is_file(), (
            f"{blob.digest} of a tagged image"
        )


def test_gc_dry_run_reports_and_removes_nothing(local_ocireg: Ocireg) -> None:
    server = local_ocireg.serve()
    client = RegistryClient(server.url)
    image = build_image(OCI, seed="tools-gc-dry")
    manifest = push_single(client, "team/dry", image, "v1")
    delete(client, f"/v2/team/dry/manifests/{manifest.digest}")
    before = store_snapshot(local_ocireg.data)

    summary = local_ocireg.ok("gc", "--dry-run", "--grace", "0s", "--untagged")
    assert summary.startswith("gc would free") and freed_bytes(summary) > 0, summary
    assert store_snapshot(local_ocireg.data) == before


def test_gc_untagged_removes_manifests_no_tag_or_referrer_keeps(
    local_ocireg: Ocireg, http: requests.Session
) -> None:
    server = local_ocireg.serve()
    client = RegistryClient(server.url)
    tagged = build_image(OCI, seed="tools-gc-tagged")
    client.push_image("team/app", tagged, "v1")  # index by tag, its children by digest only
    untagged = build_image(OCI, seed="tools-gc-untagged")
    loose = push_single(client, "team/app", untagged, untagged.child(AMD64).digest)
    # an artifact about the tagged index (kept with it) and one about the loose manifest
    about_tagged = artifact(client, "team/app", tagged.index, "tagged")
    about_loose = artifact(client, "team/app", loose, "loose")

    plain = local_ocireg.ok("gc", "--grace", "0s")
    assert blob_path(local_ocireg.data, loose.digest).is_file(), f"gc without --untagged: {plain}"

    result = local_ocireg.cli("gc", "--untagged", "--grace", "0s")
    assert result.returncode == 0, describe_run(result)
    removed = {
        line.split()[-1] for line in result.stdout.splitlines() if line.startswith("removed ")
    }
    assert removed == {f"team/app@{loose.digest}", f"team/app@{about_loose.digest}"}, describe_run(
        result
    )
    loose_child = untagged.child(AMD64)
    for blob in (loose, about_loose, loose_child.config, *loose_child.layers):
        assert not blob_path(local_ocireg.data, blob.digest).exists(), f"{blob.digest} not freed"
    for blob in (*tagged.blobs(), about_tagged):
        assert blob_path(local_ocireg.data, blob.digest).is_file(), f"{blob.digest} removed"
    for digest in (tagged.digest, *tagged.child_digests(), about_tagged.digest):
        response = http.get(f"{server.url}/v2/team/app/manifests/{digest}",
                            headers={"Accept": "*/*"})  # fmt: skip
        assert response.status_code == 200, (digest, response.text)
    response = http.get(f"{server.url}/v2/team/app/manifests/{loose.digest}")
    assert response.status_code == 404, response.text


def artifact(client: RegistryClient, repo: str, subject: Blob, seed: str) -> Blob:
    """An OCI artifact manifest (empty config, one small layer) whose subject is `subject`."""
    layer = Blob("text/plain", f"about {seed}\n".encode())
    config = Blob("application/vnd.oci.empty.v1+json", b"{}")
    for blob in (layer, config):
        client.push_blob(repo, blob)
    body = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.note",
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject.descriptor(),
    }
    manifest = Blob("application/vnd.oci.image.manifest.v1+json", json.dumps(body).encode())
    client.put_manifest(repo, manifest.digest, manifest)
    return manifest


# -- mirror eviction ---------------------------------------------------------------------------


def mirror_closure_links(data: Path, image: MultiArchImage) -> list[Path]:
    return [manifest_link(data, MIRRORED_APP, d) for d in (image.digest, *image.child_digests())]


def seeded_store(ocireg: Ocireg) -> RegistryClient:
    """app:v1 and app:list in the mirror cache, LOCAL pushed as team/web:v2; server running.

    Every blob file is backdated a day so that the grace period protects nothing here, and the
    local image's links a month: old as it is, it is not mirror content and must stay.
    """
    ocireg.ok("seed", "app:v1", "app:list")
    server = ocireg.serve()
    client = RegistryClient(server.url)
    client.push_image("team/web", LOCAL, "v2")
    backdate(blob_files(ocireg.data, [*APP.blobs(), *LIST.blobs(), *LOCAL.blobs()]), DAY)
    local_links = (ocireg.data / "repositories" / "team" / "web").rglob("*")
    backdate([p for p in local_links if p.is_file()], 30 * DAY)
    return client


def present(data: Path, image: MultiArchImage) -> bool:
    """True if every blob of `image` is on disk, False if none is; fails on a partial image."""
    found = [blob_path(data, b.digest).is_file() for b in image.blobs()]
    assert all(found) or not any(found), f"{image.digest} partly evicted: {found}"
    return all(found)


def test_gc_older_than_evicts_mirror_content_not_pulled_for_that_long(
    ocireg: Ocireg, upstream: Upstream
) -> None:
    seeded_store(ocireg)
    backdate(mirror_closure_links(ocireg.data, APP), 10 * DAY)
    backdate(mirror_closure_links(ocireg.data, LIST), 2 * DAY)

    summary = ocireg.ok("gc", "--older-than", "7d")
    assert at_least(summary, sum(b.size for b in APP.blobs())), summary
    assert not present(ocireg.data, APP)
    assert present(ocireg.data, LIST)
    assert present(ocireg.data, LOCAL), "locally pushed content was evicted"
    tags = ocireg.data / "repositories" / MIRRORED_APP / "_tags"
    assert sorted(p.name for p in tags.iterdir()) == ["list"]


def test_gc_max_size_evicts_least_recently_pulled_mirror_content_first(
    ocireg: Ocireg, upstream: Upstream, skopeo: Skopeo, tmp_path: Path
) -> None:
    client = seeded_store(ocireg)
    backdate(mirror_closure_links(ocireg.data, APP), 3 * DAY)
    backdate(mirror_closure_links(ocireg.data, LIST), 3 * DAY)
    # a pull through the mirror records itself: app:v1 is now the most recently pulled
    out = tmp_path / "pulled"
    skopeo.copy_all(f"docker://{client.base_url.removeprefix('http://')}/{MIRRORED_APP}:v1",
                    f"dir:{out}")  # fmt: skip
    assert_dir_holds(out, APP)
    index_link = manifest_link(ocireg.data, MIRRORED_APP, APP.digest)
    assert time.time() - index_link.stat().st_mtime < HOUR, "the pull did not touch the link"

    total = sum(b.size for b in (*APP.blobs(), *LIST.blobs(), *LOCAL.blobs()))
    summary = ocireg.ok("gc", "--max-size", str(total - 1))
    assert at_least(summary, sum(b.size for b in LIST.blobs())), summary
    assert not present(ocireg.data, LIST), "the least recently pulled image was kept"
    assert present(ocireg.data, APP), "more was evicted than needed to fit"
    assert present(ocireg.data, LOCAL)

    # a limit below the local content alone: all mirror content goes, local stays
    ocireg.ok("gc", "--max-size", "1k")
    assert not present(ocireg.data, APP)
    assert present(ocireg.data, LOCAL), "locally pushed content was evicted"


@pytest.mark.parametrize("flag", ["--older-than", "--max-size"])
def test_gc_evicted_mirror_content_is_fetched_again_on_the_next_pull(
    ocireg: Ocireg, upstream: Upstream, skopeo: Skopeo, tmp_path: Path, flag: str
) -> None:
    client = seeded_store(ocireg)
    backdate(mirror_closure_links(ocireg.data, APP), 10 * DAY)
    backdate(mirror_closure_links(ocireg.data, LIST), 10 * DAY)
    ocireg.ok("gc", flag, "1d" if flag == "--older-than" else "1k")
    assert not present(ocireg.data, APP) and not present(ocireg.data, LIST)

    host = client.base_url.removeprefix("http://")
    for tag, image in (("v1", APP), ("list", LIST)):
        out = tmp_path / f"again-{tag}"
        skopeo.copy_all(f"docker://{host}/{MIRRORED_APP}:{tag}", f"dir:{out}")
        assert_dir_holds(out, image)


def test_gc_removes_upload_leftovers(local_ocireg: Ocireg, http: requests.Session) -> None:
    """A server killed mid-push leaves its session; a start cut short, an empty folder; an
    interrupted atomic write, a `.tmp-*` file. Past the grace the last two go; the session
    goes with `--grace 0s` (the server is stopped: nobody will resume it)."""
    server = local_ocireg.serve()
    location = http.post(f"{server.url}/v2/app/blobs/uploads/").headers["Location"]
    patched = http.patch(f"{server.url}{location}", data=os.urandom(2 * 1024 * 1024))
    assert patched.status_code == 202
    os.kill(server.process.pid, signal.SIGKILL)
    uploads = local_ocireg.data / "uploads"
    session = uploads / location.rsplit("/", 1)[1]
    empty = uploads / "00000000-0000-4000-8000-000000000000"
    empty.mkdir()
    interrupted = local_ocireg.data / "repositories" / "app" / "_tags" / ".tmp-cut"
    interrupted.parent.mkdir(parents=True)
    interrupted.write_bytes(b"x" * 100)
    backdate([empty, interrupted], 2 * HOUR)

    local_ocireg.ok("gc")
    assert not empty.exists() and not interrupted.exists()
    assert session.is_dir()
    summary = local_ocireg.ok("gc", "--grace", "0s")
    assert not session.exists(), summary
    assert at_least(summary, 2 * 1024 * 1024), summary
