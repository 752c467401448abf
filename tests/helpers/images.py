"""Deterministic multi-arch test images, built offline, written as OCI image layouts.

Real clients (skopeo, ctr, oras) must be driven with real images, yet the tests may not reach
any registry. So each image is made here from nothing: a gzip tar layer per platform, an image
config whose `rootfs.diff_ids` match the uncompressed layer, one manifest per platform, a
BuildKit-style attestation manifest (platform unknown/unknown) and an index over them.

Two flavours share that shape: OCI (image index of OCI manifests) and Docker (manifest list of
schema2 manifests). Every byte is fixed by the arguments (tar times, gzip header, random payload
seeded), so digests are stable from run to run and tests can compare them exactly.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
IN_TOTO = "application/vnd.in-toto+json"

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
ATTESTATION_TYPE_ANNOTATION = "vnd.docker.reference.type"
ATTESTATION_DIGEST_ANNOTATION = "vnd.docker.reference.digest"

AMD64 = "linux/amd64"
ARM64 = "linux/arm64"
ATTESTATION = "attestation"

_EPOCH = 1_700_000_000
_CREATED = "2023-11-14T22:13:20Z"


@dataclass(frozen=True)
class Flavour:
    """The media types of one manifest family, and how its tools print JSON."""

    index: str
    manifest: str
    config: str
    layer: str
    indent: int | None  # BuildKit writes compact JSON; Docker's tools indent by three


OCI = Flavour(OCI_INDEX, OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP, indent=None)
DOCKER = Flavour(DOCKER_LIST, DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP, indent=3)


@dataclass(frozen=True)
class Blob:
    """Content with its media type: anything a descriptor can point to."""

    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        """The descriptor that references this blob, with optional extra fields."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class ChildImage:
    """One manifest of an index with everything it references."""

    name: str
    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]
    platform: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def index_entry(self) -> dict[str, Any]:
        entry = self.manifest.descriptor()
        if self.annotations:
            entry["annotations"] = self.annotations
        entry["platform"] = self.platform
        return entry


@dataclass(frozen=True)
class MultiArchImage:
    """A multi-arch image: an index (or manifest list) and its children, in index order."""

    flavour: Flavour
    index: Blob
    children: tuple[ChildImage, ...]

    @property
    def digest(self) -> str:
        return self.index.digest

    def child(self, name: str) -> ChildImage:
        """The child named `linux/amd64`, `linux/arm64` or `attestation`."""
        return next(c for c in self.children if c.name == name)

    def child_digests(self) -> list[str]:
        return [c.digest for c in self.children]

    def blobs(self) -> list[Blob]:
        """Every blob and manifest, the index last (the order a pusher must follow)."""
        out: list[Blob] = []
        for child in self.children:
            out.extend([*child.layers, child.config, child.manifest])
        out.append(self.index)
        return out


def build_image(
    flavour: Flavour = OCI, *, seed: str = "ocireg", layer_size: int = 0
) -> MultiArchImage:
    """Build the amd64 + arm64 + attestation image of a flavour.

    `seed` changes every digest (to get distinct images); `layer_size` adds an incompressible
    payload of that many bytes to each platform layer, for tests that need bulk.
    """
    amd64 = _platform_image(flavour, "amd64", None, seed, layer_size)
    arm64 = _platform_image(flavour, "arm64", "v8", seed, layer_size)
    attestation = _attestation_image(amd64, seed)
    children = (amd64, arm64, attestation)
    index = {
        "schemaVersion": 2,
        "mediaType": flavour.index,
        "manifests": [c.index_entry() for c in children],
    }
    return MultiArchImage(flavour, Blob(flavour.index, _dump(index, flavour.indent)), children)


def write_oci_layout(image: MultiArchImage, directory: Path, tag: str = "v1") -> Path:
    """Write `image` as an OCI image layout that `oci:<directory>:<tag>` names."""
    blobs_dir = directory / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    for blob in image.blobs():
        (blobs_dir / blob.digest.removeprefix("sha256:")).write_bytes(blob.data)
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    entry = image.index.descriptor(annotations={REF_NAME_ANNOTATION: tag})
    index = {"schemaVersion": 2, "manifests": [entry]}
    (directory / "index.json").write_text(json.dumps(index))
    return directory


def layout_entry(directory: Path, tag: str = "v1") -> dict[str, Any]:
    """The descriptor that `index.json` of a layout holds for `tag`."""
    index = json.loads((directory / "index.json").read_text())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get(REF_NAME_ANNOTATION) == tag:
            return dict(entry)
    raise KeyError(f"no manifest tagged {tag!r} in {directory}/index.json: {index}")


def layout_blob(directory: Path, digest: str) -> bytes:
    """The bytes a layout stores for `digest`."""
    algorithm, hex_digest = digest.split(":", 1)
    return (directory / "blobs" / algorithm / hex_digest).read_bytes()


def _platform_image(
    flavour: Flavour, arch: str, variant: str | None, seed: str, layer_size: int
) -> ChildImage:
    """One runnable-looking image: a gzip tar layer and a config that matches it."""
    platform = {"architecture": arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    name = f"linux/{arch}"
    files = {"etc/ocireg-test": f"{name} {seed}\n".encode()}
    if layer_size:
        files["payload.bin"] = random.Random(f"{seed}/{name}").randbytes(layer_size)
    tar = _tar(files)
    layer = Blob(flavour.layer, _gzip(tar))
    config = Blob(flavour.config, _dump(_image_config(platform, [tar]), None))
    manifest = _manifest(flavour, config, [layer])
    return ChildImage(name, manifest, config, (layer,), platform)


def _attestation_image(subject: ChildImage, seed: str) -> ChildImage:
    """A BuildKit-style attestation manifest (in-toto statement) about `subject`.

    It is an OCI manifest in both flavours, as BuildKit writes it: a schema2 manifest cannot
    carry an in-toto layer (skopeo rejects "unsupported docker v2s2 media type"), and a Docker
    manifest list may reference OCI manifests.
    """
    statement = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": "ocireg-test", "digest": {"sha256": subject.digest[7:]}}],
        "predicate": {"spdxVersion": "SPDX-2.3", "name": f"ocireg-test {seed}"},
    }
    layer = Blob(IN_TOTO, _dump(statement, None))
    platform = {"architecture": "unknown", "os": "unknown"}
    config = Blob(OCI_CONFIG, _dump(_image_config(platform, [layer.data]), None))
    manifest = _manifest(
        OCI, config, [layer], {"in-toto.io/predicate-type": "https://spdx.dev/Document"}
    )
    annotations = {
        ATTESTATION_DIGEST_ANNOTATION: subject.digest,
        ATTESTATION_TYPE_ANNOTATION: "attestation-manifest",
    }
    return ChildImage(ATTESTATION, manifest, config, (layer,), platform, annotations)


def _manifest(
    flavour: Flavour,
    config: Blob,
    layers: list[Blob],
    layer_annotations: dict[str, str] | None = None,
) -> Blob:
    extra = {"annotations": layer_annotations} if layer_annotations else {}
    body = {
        "schemaVersion": 2,
        "mediaType": flavour.manifest,
        "config": config.descriptor(),
        "layers": [layer.descriptor(**extra) for layer in layers],
    }
    return Blob(flavour.manifest, _dump(body, flavour.indent))


def _image_config(platform: dict[str, str], uncompressed_layers: list[bytes]) -> dict[str, Any]:
    diff_ids = ["sha256:" + hashlib.sha256(data).hexdigest() for data in uncompressed_layers]
    return {
        "created": _CREATED,
        **platform,
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": _CREATED, "created_by": "ocireg tests/helpers/images.py"}],
    }


def _tar(files: dict[str, bytes]) -> bytes:
    """A tar with fixed owners, modes and times, so equal inputs give equal bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directories = sorted({str(Path(name).parent) for name in files} - {"."})
        for directory in directories:
            tar.addfile(_tarinfo(directory + "/", tarfile.DIRTYPE, 0o755, 0))
        for name, data in sorted(files.items()):
            tar.addfile(_tarinfo(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    return buffer.getvalue()


def _tarinfo(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, _EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def _dump(value: Any, indent: int | None) -> bytes:
    if indent is None:
        return json.dumps(value, separators=(",", ":")).encode()
    return json.dumps(value, indent=indent).encode()
