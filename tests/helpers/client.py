"""A minimal distribution-spec client over `requests`, for pushes and checks by exact bytes.

Real clients re-encode or convert manifests in ways a test cannot always control; this one puts
and gets exactly the bytes it is given, so a test can tell the registry's doing from the
client's. Proxies from the environment are ignored: every request goes straight to loopback.
"""

from __future__ import annotations

from typing import Any

import requests

from tests.helpers.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    MultiArchImage,
)

MANIFEST_ACCEPT = f"{OCI_INDEX}, {OCI_MANIFEST}, {DOCKER_LIST}, {DOCKER_MANIFEST}"


class RegistryClient:
    """Blob and manifest calls against one registry at `base_url` (http://host:port)."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request to `path` (absolute URL or /v2/...) with the client's timeout."""
        url = path if path.startswith("http") else self.base_url + path
        return self.session.request(method, url, timeout=self.timeout, **kwargs)

    def push_blob(self, name: str, blob: Blob) -> None:
        """Monolithic upload (POST then PUT ?digest=), skipped when the blob already exists."""
        if self.request("HEAD", f"/v2/{name}/blobs/{blob.digest}").status_code == 200:
            return
        started = self.request("POST", f"/v2/{name}/blobs/uploads/")
        _expect(started, 202)
        location = started.headers["Location"]
        separator = "&" if "?" in location else "?"
        done = self.request(
            "PUT",
            f"{location}{separator}digest={blob.digest}",
            data=blob.data,
            headers={"Content-Type": "application/octet-stream"},
        )
        _expect(done, 201)

    def put_manifest(self, name: str, reference: str, manifest: Blob) -> requests.Response:
        """PUT the manifest's exact bytes with its media type; expects 201."""
        response = self.request(
            "PUT",
            f"/v2/{name}/manifests/{reference}",
            data=manifest.data,
            headers={"Content-Type": manifest.media_type},
        )
        _expect(response, 201)
        return response

    def get_manifest(
        self, name: str, reference: str, accept: str = MANIFEST_ACCEPT
    ) -> requests.Response:
        return self.request("GET", f"/v2/{name}/manifests/{reference}", headers={"Accept": accept})

    def push_image(self, name: str, image: MultiArchImage, tag: str) -> None:
        """Push every blob and child manifest by digest, then the index under `tag`."""
        for child in image.children:
            for blob in (*child.layers, child.config):
                self.push_blob(name, blob)
            self.put_manifest(name, child.digest, child.manifest)
        self.put_manifest(name, tag, image.index)

    def referrers(
        self, name: str, digest: str, artifact_type: str | None = None
    ) -> requests.Response:
        params = {"artifactType": artifact_type} if artifact_type else None
        return self.request("GET", f"/v2/{name}/referrers/{digest}", params=params)


def _expect(response: requests.Response, status: int) -> None:
    """Raise with the whole exchange when a registry answers something else than `status`."""
    if response.status_code != status:
        raise AssertionError(describe(response, f"expected {status}"))


def describe(response: requests.Response, why: str = "") -> str:
    """Request and response, headers and body, for an assertion message or a bug report."""
    request = response.request
    body = response.content[:2000].decode(errors="replace")
    return (
        f"{why}\n> {request.method} {request.url}\n"
        + "".join(f"> {k}: {_text(v)}\n" for k, v in request.headers.items())
        + f"< {response.status_code} {response.reason}\n"
        + "".join(f"< {k}: {v}\n" for k, v in response.headers.items())
        + f"<\n{body}"
    )


def _text(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
