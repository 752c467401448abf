"""An archive that carries an artifact with a `subject` (a signature, an SBOM) imports as a push
would: the referrers API of the subject lists it, filtered by artifact type too."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import requests

from tests.helpers.images import OCI, build_image, write_oci_layout
from tests.tools.conftest import Ocireg

IMAGE = build_image(OCI, seed="tools-referrers")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SBOM_TYPE = "application/vnd.example.sbom.v1+json"
EMPTY = b"{}"
SBOM = b'{"packages": []}'


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def artifact(subject: dict[str, object]) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SBOM_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_of(EMPTY), "size": 2},
        "layers": [{"mediaType": SBOM_TYPE, "digest": digest_of(SBOM), "size": len(SBOM)}],
        "subject": subject,
    }).encode()  # fmt: skip


def archive_with_artifact(tmp_path: Path) -> tuple[Path, str]:
    """IMAGE tagged v1 plus an untagged SBOM artifact whose subject is IMAGE's index."""
    layout = write_oci_layout(IMAGE, tmp_path / "layout", "v1")
    manifest = artifact({"mediaType": IMAGE.index.media_type, "digest": IMAGE.digest, "size": IMAGE.index.size})
    for data in (EMPTY, SBOM, manifest):
        (layout / "blobs" / "sha256" / digest_of(data)[7:]).write_bytes(data)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"].append({"mediaType": OCI_MANIFEST, "digest": digest_of(manifest), "size": len(manifest),
                               "artifactType": SBOM_TYPE})
    (layout / "index.json").write_text(json.dumps(index))
    archive = tmp_path / "with-sbom.tar"
    with tarfile.open(archive, "w") as tar:
        for path in sorted(layout.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(layout)))
    return archive, digest_of(manifest)


def test_an_imported_artifact_is_listed_by_the_referrers_api(
    local_ocireg: Ocireg, http: requests.Session, tmp_path: Path
) -> None:
    archive, referrer = archive_with_artifact(tmp_path)
    summary = local_ocireg.ok("import", "--name", "team/app", str(archive))
    assert summary.startswith("imported 2 images"), summary
    server = local_ocireg.serve()
    response = http.get(f"{server.url}/v2/team/app/referrers/{IMAGE.digest}")
    assert response.status_code == 200, response.text
    listed = response.json()["manifests"]
    assert [(d["digest"], d.get("artifactType")) for d in listed] == [(referrer, SBOM_TYPE)], listed
    filtered = http.get(f"{server.url}/v2/team/app/referrers/{IMAGE.digest}",
                        params={"artifactType": SBOM_TYPE})  # fmt: skip
    assert [d["digest"] for d in filtered.json()["manifests"]] == [referrer], filtered.text
