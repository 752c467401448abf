"""The whole on-disk layout, as pure functions of validated names and digests.

    <data>/
      blobs/<alg>/<hex[:2]>/<hex>/data                 every blob and manifest, stored once
      repositories/<name>/_layers/<alg>/<hex>          blob membership: descriptor JSON
      repositories/<name>/_manifests/<alg>/<hex>       manifest membership: descriptor JSON
      repositories/<name>/_tags/<tag>                  the digest the tag points to
      repositories/<name>/_referrers/<alg>/<subject-hex>/<alg>-<hex>   referrer descriptor JSON
      uploads/<id>/data, uploads/<id>/state            upload sessions in flight

Blobs and manifests have separate membership folders so that a layer cannot be fetched as a
manifest and deleting one kind never unlinks the other. Names nest (`team/app/api`); the reserved
folders start with `_`, which the name grammar forbids for a component, so they cannot collide.
Callers pass only values that passed `registry.reference`; nothing here can climb out of <data>.
"""

from __future__ import annotations

from ..reference import Digest

BLOBS = "blobs"
REPOSITORIES = "repositories"
UPLOADS = "uploads"
RESERVED_PREFIX = "_"
REPOSITORY_PARTS = ("_manifests", "_layers", "_tags")


def blob_data(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}/data"


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layer_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_layers/{digest.algorithm}/{digest.hex}"


def manifest_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/{digest.algorithm}/{digest.hex}"


def tags(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_tags"


def tag(name: str, tag_name: str) -> str:
    return f"{tags(name)}/{tag_name}"


def referrers(name: str, subject: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_referrers/{subject.algorithm}/{subject.hex}"


def referrer(name: str, subject: Digest, referrer_digest: Digest) -> str:
    return f"{referrers(name, subject)}/{referrer_digest.algorithm}-{referrer_digest.hex}"


def referrer_digest(entry: str) -> Digest:
    """The inverse of the file name `referrer` writes."""
    algorithm, _, hexpart = entry.partition("-")
    return Digest.parse(f"{algorithm}:{hexpart}")


def upload_data(upload_id: str) -> str:
    return f"{UPLOADS}/{upload_id}/data"


def upload_state(upload_id: str) -> str:
    return f"{UPLOADS}/{upload_id}/state"


def upload_dir(upload_id: str) -> str:
    return f"{UPLOADS}/{upload_id}"
