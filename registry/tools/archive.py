"""OCI image layout archives (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`) as tar files:
what `export` writes, what `import` reads, and what skopeo and buildkit write too."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import uuid
from collections.abc import Iterable
from typing import IO, Any

from ..errors import RegistryError
from ..reference import Digest

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT = {"imageLayoutVersion": "1.0.0"}
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def blob_member(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


class ArchiveError(Exception):
    """The archive cannot be imported; the message says which part and why."""


def member_path(name: str) -> str:
    """A member's path in the layout. Only a leading `./` (how `tar -C dir .` writes the root)
    is dropped: `.index.json` and `../index.json` are other files, not the index."""
    return name[2:] if name.startswith("./") else name


def member_digest(name: str) -> Digest | None:
    """The digest a `blobs/<alg>/<hex>` member holds, or None for any other member; a member
    under `blobs/<alg>/` that names no valid digest is an ArchiveError."""
    parts = member_path(name).split("/")
    if len(parts) != 3 or parts[0] != "blobs":
        return None
    try:
        return Digest.parse(f"{parts[1]}:{parts[2]}")
    except RegistryError as err:
        raise ArchiveError(f"{name[:200]}: {err.message}") from None


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_archive(path: str, index: dict[str, Any], blobs: Iterable[tuple[Digest, str]],
                  on_blob: Any = None) -> None:
    """Blocking: write to a temporary file beside `path`, then rename, so a cut-short export
    (a full disk, an interrupt) leaves neither a truncated archive under the requested name nor
    the temporary file. The temporary name is unique: two exports never write into one file."""
    tmp = f"{path}.{uuid.uuid4().hex[:12]}.partial"
    try:
        with open(tmp, "xb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, LAYOUT_FILE, json.dumps(LAYOUT).encode())
            for digest, source in blobs:
                info = tar.gettarinfo(source, arcname=blob_member(digest))
                info.mode, info.uid, info.gid, info.uname, info.gname, info.mtime = 0o644, 0, 0, "", "", 0
                with open(source, "rb") as handle:
                    tar.addfile(info, handle)
                if on_blob is not None:
                    on_blob(info.size)
            _add_bytes(tar, INDEX_FILE, json.dumps(index, indent=2).encode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


def open_archive(path: str) -> tarfile.TarFile:
    """Streaming read: blobs are consumed in archive order, never all extracted at once.
    Only plain tar is read, so the archive's own size bounds what an import writes: a few
    compressed kilobytes could otherwise expand to any size before a digest is checked."""
    with open(path, "rb") as handle:
        start = handle.read(6)
    for magic, kind in COMPRESSED.items():
        if start.startswith(magic):
            raise ArchiveError(f"{kind}-compressed archives are refused; decompress it first")
    return tarfile.open(path, "r|")


def read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    """A regular, non-sparse member: a sparse one's holes expand past what the archive holds."""
    if member.issparse():
        raise ArchiveError(f"{member.name[:200]}: sparse members are refused")
    handle = tar.extractfile(member)
    if handle is None:
        raise ArchiveError(f"{member.name[:200]} is not a regular file")
    return handle
