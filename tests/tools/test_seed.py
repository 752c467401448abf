"""`ocireg seed`: fill the mirror cache from an upstream so that later pulls need no upstream.

The upstream is Distribution holding `library/app:v1` (an OCI index: amd64, arm64 and an
attestation for amd64) and `library/app:list` (a Docker manifest list of the same shape). Seeding
then stopping the upstream proves the cache is complete: every seeded platform pulls through
`ocireg serve` with skopeo, byte for byte, with nothing left to ask upstream. The upstream's own
access log is the witness that a second seed downloads nothing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import requests

from tests.helpers.images import AMD64, ARM64, ATTESTATION, MultiArchImage
from tests.helpers.registries import AccessLogEntry
from tests.helpers.skopeo import Skopeo
from tests.tools.conftest import (
    APP,
    LIST,
    MIRRORED_APP,
    Ocireg,
    Upstream,
    assert_dir_holds,
    assert_single_dir_holds,
    blob_path,
    describe_run,
    summary_line,
)

IMAGES_TXT = f"""\
# images the CI jobs need; comments and blank lines are ignored

app:v1            # the OCI index, by tag, Docker Hub shorthand
docker.io/library/app:list
   # an indented comment
docker.io/library/app@{APP.digest}
"""


def blob_gets(entries: list[AccessLogEntry]) -> set[str]:
    """The digests of the blobs GET from the upstream."""
    return {
        e.target.rsplit("/", 1)[1] for e in entries if e.method == "GET" and "/blobs/" in e.target
    }


def manifest_gets_by_digest(entries: list[AccessLogEntry]) -> list[str]:
    return [e.target for e in entries if e.method == "GET" and "/manifests/sha256:" in e.target]


def fetched_bytes(summary: str) -> str:
    match = re.search(r"(\d[\d.]* [KMGT]?B) fetched from upstream", summary)
    assert match, f"summary names no bytes fetched: {summary!r}"
    return match.group(1)


def platform_blobs(image: MultiArchImage, *platforms: str) -> set[str]:
    return {b.digest for c in image.children if c.name in platforms for b in (c.config, *c.layers)}


def skopeo_error(skopeo: Skopeo, *args: str) -> str:
    """Run a skopeo command that must fail; its stderr."""
    argv = [skopeo.binary, "--insecure-policy", *args]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env=skopeo.env,
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert result.returncode != 0, f"{' '.join(argv)} succeeded:\n{result.stdout}{result.stderr}"
    return result.stderr


def test_seed_from_file_is_idempotent_and_serves_every_platform_without_upstream(
    ocireg: Ocireg, upstream: Upstream, skopeo: Skopeo, tmp_path: Path
) -> None:
    images_txt = tmp_path / "images.txt"
    images_txt.write_text(IMAGES_TXT)

    first = ocireg.ok("seed", "-f", str(images_txt))
    assert first.startswith("seeded 3 of 3 images"), first
    assert fetched_bytes(first) != "0 B", first
    every_blob = {b.digest for image in (APP, LIST) for b in image.blobs()}
    for digest in every_blob:
        assert blob_path(ocireg.data, digest).is_file(), f"{digest} not in the cache"
    layers_and_configs = platform_blobs(APP, AMD64, ARM64, ATTESTATION) | platform_blobs(
        LIST, AMD64, ARM64, ATTESTATION
    )
    assert blob_gets(upstream.log()) == layers_and_configs

    log_mark = len(upstream.log())
    second = ocireg.ok("seed", "-f", str(images_txt))
    assert second.startswith("seeded 3 of 3 images"), second
    assert fetched_bytes(second) == "0 B", second
    again = upstream.log()[log_mark:]
    assert blob_gets(again) == set(), f"the second seed fetched blobs again: {again}"
    assert manifest_gets_by_digest(again) == [], f"the second seed refetched manifests: {again}"

    upstream.stop()
    server = ocireg.serve()
    repo = server.ref(MIRRORED_APP)
    for tag, image in (("v1", APP), ("list", LIST)):
        out = tmp_path / f"pulled-{tag}"
        skopeo.copy_all(f"docker://{repo}:{tag}", f"dir:{out}")
        assert_dir_holds(out, image)
    out = tmp_path / "pulled-by-digest"
    skopeo.copy_all(f"docker://{repo}@{APP.digest}", f"dir:{out}")
    assert_dir_holds(out, APP)


def test_seed_one_platform_serves_it_and_refuses_the_others_clearly(
    ocireg: Ocireg, upstream: Upstream, skopeo: Skopeo, http: requests.Session, tmp_path: Path
) -> None:
    summary = ocireg.ok("seed", "--platform", ARM64, "app:v1", "app:list")
    assert summary.startswith("seeded 2 of 2 images"), summary
    wanted = platform_blobs(APP, ARM64) | platform_blobs(LIST, ARM64)
    # the attestation describes amd64, so it goes with amd64
    left_out = platform_blobs(APP, AMD64, ATTESTATION) | platform_blobs(LIST, AMD64, ATTESTATION)
    assert blob_gets(upstream.log()) == wanted
    for digest in wanted:
        assert blob_path(ocireg.data, digest).is_file(), f"arm64 {digest} missing"
    for digest in left_out:
        assert not blob_path(ocireg.data, digest).exists(), f"seeded {digest} too"

    upstream.stop()
    server = ocireg.serve()
    repo = server.ref(MIRRORED_APP)
    for tag, image in (("v1", APP), ("list", LIST)):
        out = tmp_path / f"arm64-{tag}"
        skopeo(
            "--override-os", "linux", "--override-arch", "arm64", "--override-variant", "v8",
            "copy", "--preserve-digests", "--src-tls-verify=false",
            f"docker://{repo}:{tag}", f"dir:{out}",
        )  # fmt: skip
        assert_single_dir_holds(out, image, ARM64)

        # amd64 was not seeded and the upstream is gone: an error that names it, no bytes
        amd64 = image.child(AMD64).digest
        error = skopeo_error(
            skopeo,
            "--override-os", "linux", "--override-arch", "amd64",
            "copy", "--src-tls-verify=false", f"docker://{repo}:{tag}", f"dir:{tmp_path / 'x'}",
        )  # fmt: skip
        assert amd64 in error and "503" in error, error
        response = http.get(f"{server.url}/v2/{MIRRORED_APP}/manifests/{amd64}")
        assert response.status_code == 503, response.text
        body = response.json()["errors"][0]
        assert body["code"] == "UNAVAILABLE" and "unreachable" in body["message"], body


def test_seed_after_a_partial_seed_fetches_only_what_is_missing(
    ocireg: Ocireg, upstream: Upstream
) -> None:
    """What an interrupted or narrower run stored is not fetched again (resumable)."""
    ocireg.ok("seed", "--platform", ARM64, "app:v1")
    log_mark = len(upstream.log())

    summary = ocireg.ok("seed", "app:v1")
    assert summary.startswith("seeded 1 of 1 images"), summary
    assert blob_gets(upstream.log()[log_mark:]) == platform_blobs(APP, AMD64, ATTESTATION)
    for blob in APP.blobs():
        assert blob_path(ocireg.data, blob.digest).is_file(), blob.digest


def test_seed_names_each_image_that_failed_and_why(ocireg: Ocireg, upstream: Upstream) -> None:
    result = ocireg.fails("seed", "app:v1", "nosuch:v1", "app:v404")
    summary = summary_line(result)
    assert summary.startswith("seeded 1 of 3 images") and "2 failed" in summary, describe_run(
        result
    )
    failures = [line for line in result.stderr.splitlines() if "failed:" in line]
    assert any("docker.io/library/nosuch:v1" in line for line in failures), describe_run(result)
    assert any("docker.io/library/app:v404" in line for line in failures), describe_run(result)
    assert all("not found upstream" in line for line in failures), describe_run(result)
    for blob in APP.blobs():  # the good image is whole all the same
        assert blob_path(ocireg.data, blob.digest).is_file(), blob.digest
