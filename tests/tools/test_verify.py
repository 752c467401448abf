"""`ocireg verify [--repair]`: re-hash every blob, check links, manifests and tags.

A byte flipped in a cached blob on disk is found and named; `--repair` moves it to
`<data>/quarantine/` and drops its links, and the next pull through the mirror (upstream up)
fetches it again, so the bytes served match the digest and a new verify is clean. A pushed
image has no upstream to heal it: after the repair it is still reported as broken.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from tests.helpers.client import RegistryClient
from tests.helpers.images import AMD64, OCI, build_image
from tests.helpers.skopeo import Skopeo
from tests.tools.conftest import (
    APP,
    APP_REPO,
    MIRRORED_APP,
    Ocireg,
    Upstream,
    assert_dir_holds,
    blob_path,
    describe_run,
    sha256,
    summary_line,
)


def flip_byte(path: Path, at: int = 10) -> bytes:
    """Flip one bit of the file in place; returns the damaged bytes."""
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    return bytes(data)


def failures(stderr: str) -> list[str]:
    return [
        line.strip().removeprefix("failed: ") for line in stderr.splitlines() if "failed:" in line
    ]


def test_verify_finds_a_flipped_blob_and_after_repair_the_mirror_heals_it(
    ocireg: Ocireg, upstream: Upstream, skopeo: Skopeo, tmp_path: Path
) -> None:
    ocireg.ok("seed", "app:v1")
    clean = ocireg.ok("verify")
    assert clean.startswith(f"verified {len(APP.blobs())} blobs"), clean

    layer = APP.child(AMD64).layers[0]
    stored = blob_path(ocireg.data, layer.digest)
    damaged = flip_byte(stored)

    found = ocireg.fails("verify")
    assert summary_line(found).endswith("failed"), describe_run(found)
    named = [f for f in failures(found.stderr) if layer.digest in f]
    assert f"blob {layer.digest}: content does not match its digest" in named, describe_run(found)
    others = [f for f in failures(found.stderr) if layer.digest not in f]
    assert others == [], f"verify blamed intact content: {others}"

    repaired = ocireg.ok("verify", "--repair")
    assert "1 blobs quarantined" in repaired, repaired
    quarantined = ocireg.data / "quarantine" / f"sha256-{layer.digest[7:]}"
    assert quarantined.read_bytes() == damaged
    assert not stored.exists()

    server = ocireg.serve()
    log_mark = len(upstream.log())
    out = tmp_path / "healed"
    skopeo.copy_all(f"docker://{server.ref(MIRRORED_APP)}:v1", f"dir:{out}")
    assert_dir_holds(out, APP)  # the bytes served match every digest again
    assert sha256(stored.read_bytes()) == layer.digest, "the cache holds the bad bytes still"
    refetched = [
        e for e in upstream.log()[log_mark:] if e.method == "GET" and "/blobs/" in e.target
    ]
    assert [e.target for e in refetched] == [f"/v2/{APP_REPO}/blobs/{layer.digest}"], refetched

    again = ocireg.ok("verify")
    assert again.startswith(f"verified {len(APP.blobs())} blobs"), again


def test_verify_names_a_pushed_image_that_repair_cannot_heal(local_ocireg: Ocireg) -> None:
    """No upstream holds a pushed image: moving its bad blob aside leaves it broken, and verify
    (with or without --repair) says so and exits non-zero."""
    server = local_ocireg.serve()
    image = build_image(OCI, seed="tools-verify-local")
    RegistryClient(server.url).push_image("team/web", image, "v2")
    child = image.child(AMD64)
    flip_byte(blob_path(local_ocireg.data, child.layers[0].digest))

    found = local_ocireg.fails("verify")
    assert any(
        child.layers[0].digest in f and "does not match" in f for f in failures(found.stderr)
    ), describe_run(found)
    repair = local_ocireg.cli("verify", "--repair")
    broken = (
        f"team/web: manifest {child.digest} needs blob {child.layers[0].digest}, which is missing"
    )
    after = local_ocireg.fails("verify")
    assert broken in failures(after.stderr), describe_run(after)
    assert repair.returncode != 0 and broken in failures(repair.stderr), describe_run(repair)


def test_verify_names_a_tag_whose_manifest_is_gone(local_ocireg: Ocireg) -> None:
    server = local_ocireg.serve()
    image = build_image(OCI, seed="tools-verify-tag")
    RegistryClient(server.url).push_image("team/web", image, "v2")
    blob_path(local_ocireg.data, image.digest).unlink()

    found = local_ocireg.fails("verify")
    wanted = re.compile(rf"team/web:v2: points at {image.digest}, which is not here")
    assert any(wanted.fullmatch(f) for f in failures(found.stderr)), describe_run(found)


def age(path: Path, seconds: float) -> None:
    """Make `path` and everything under it look last written `seconds` ago."""
    when = time.time() - seconds
    for item in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.utime(item, (when, when))


def abandoned_upload(http: requests.Session, url: str) -> str:
    """A push that sent part of a blob and went away: the session's id."""
    started = http.post(f"{url}/v2/team/app/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = urljoin(url, started.headers["Location"])
    sent = http.patch(location, data=b"x" * 4096, headers={"Content-Type": "application/octet-stream"})
    assert sent.status_code == 202, sent.text
    return urlsplit(location).path.rsplit("/", 1)[1]


def test_verify_reports_an_upload_session_idle_past_the_expiry_and_repair_removes_it(
    local_ocireg: Ocireg, http: requests.Session
) -> None:
    with local_ocireg.config.open("a") as config:
        config.write('\n[uploads]\nexpiry = "1h"\n')
    server = local_ocireg.serve()
    upload_id = abandoned_upload(http, server.url)
    server.process.stop()
    session = local_ocireg.data / "uploads" / upload_id
    assert session.is_dir()

    fresh = local_ocireg.ok("verify")  # a push in progress is no leftover
    assert fresh.startswith("verified 0 blobs"), fresh
    age(session, 2 * 3600)
    found = local_ocireg.fails("verify")
    wanted = re.compile(rf"uploads/{upload_id}: an upload session idle for 2h \(expiry 1h\), 4\.\d KB")
    assert [f for f in failures(found.stderr) if wanted.fullmatch(f)] == failures(found.stderr) != [], (
        describe_run(found)
    )
    repaired = local_ocireg.ok("verify", "--repair")
    assert "1 leftovers removed (4." in repaired, repaired
    assert not session.exists()
    assert local_ocireg.ok("verify").startswith("verified 0 blobs")


def test_verify_reports_stale_temporary_files_and_empty_session_folders(local_ocireg: Ocireg) -> None:
    server = local_ocireg.serve()
    RegistryClient(server.url).push_image("team/web", build_image(OCI, seed="tools-verify-leftovers"), "v2")
    server.process.stop()
    tags = local_ocireg.data / "repositories" / "team" / "web" / "_tags"
    stale = tags / ".tmp-crashed"
    stale.write_bytes(b"sha256:")
    empty = local_ocireg.data / "uploads" / "00000000-0000-4000-8000-000000000000"
    empty.mkdir(parents=True)
    fresh = tags / ".tmp-writing-now"
    fresh.write_bytes(b"")
    assert local_ocireg.ok("verify").startswith("verified"), "fresh leftovers may still be in use"

    age(stale, 3600)
    age(empty, 3600)
    found = local_ocireg.fails("verify")
    assert sorted(failures(found.stderr)) == [
        "repositories/team/web/_tags/.tmp-crashed: a temporary file of a write that never finished, 7 B",
        f"uploads/{empty.name}: an empty upload session folder, 0 B",
    ], describe_run(found)
    repaired = local_ocireg.ok("verify", "--repair")
    assert "2 leftovers removed" in repaired, repaired
    assert not stale.exists() and not empty.exists() and fresh.exists()
    assert local_ocireg.ok("verify").startswith("verified")
