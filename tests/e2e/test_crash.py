"""SIGKILL in the middle of pushes: the restarted server serves every completed push, and the
store holds no partial blob, manifest or tag."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from pathlib import Path

import requests

from tests.helpers.registries import RegistryEndpoint, ocireg_server

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push(session: requests.Session, url: str, name: str, tag: str) -> bytes:
    """Chunked blob uploads and a manifest push; returns the manifest once it was accepted."""
    layer, config = os.urandom(512 * 1024), json.dumps({"tag": tag}).encode()
    descriptors = []
    for blob, media_type in ((config, "application/vnd.oci.image.config.v1+json"),
                             (layer, "application/vnd.oci.image.layer.v1.tar")):
        location = session.post(f"{url}/v2/{name}/blobs/uploads/").headers["Location"]
        half = len(blob) // 2
        location = session.patch(f"{url}{location}", data=blob[:half]).headers["Location"]
        done = session.put(f"{url}{location}?digest={_digest(blob)}", data=blob[half:])
        assert done.status_code == 201
        descriptors.append({"mediaType": media_type, "digest": _digest(blob), "size": len(blob)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": descriptors[0], "layers": descriptors[1:]}).encode()
    resp = session.put(f"{url}/v2/{name}/manifests/{tag}", data=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert resp.status_code == 201
    return manifest


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # straight to loopback, whatever proxies the shell names
    return session


def _pusher(url: str, worker: int, done: dict[str, bytes], stop: threading.Event) -> None:
    session = _session()
    n = 0
    while not stop.is_set():
        tag = f"w{worker}-{n}"
        try:
            done[tag] = _push(session, url, "crash/test", tag)
        except (requests.RequestException, AssertionError, KeyError):
            return
        n += 1


def _check_store(data: Path) -> None:
    """Every blob file hashes to its name, and every link and tag points at existing content.

    Temporary files of writes cut short (`.tmp-*`) may remain; no reader ever looks at them."""
    for path in (data / "blobs" / "sha256").glob("*/*/data"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.parent.name, path
    repo = data / "repositories" / "crash" / "test"
    for link in [*repo.glob("_layers/sha256/[!.]*"), *repo.glob("_manifests/sha256/[!.]*")]:
        assert json.loads(link.read_text())["digest"].endswith(link.name)
        assert (data / "blobs" / "sha256" / link.name[:2] / link.name / "data").exists(), link
    for tag in repo.glob("_tags/[!.]*"):
        hexpart = tag.read_text().split(":")[1]
        assert (repo / "_manifests" / "sha256" / hexpart).exists(), tag


def test_kill_during_pushes_loses_nothing_completed(tmp_path: Path) -> None:
    done: dict[str, bytes] = {}
    stop = threading.Event()
    with ocireg_server(tmp_path) as first:
        workers = [threading.Thread(target=_pusher, args=(first.url, i, done, stop)) for i in range(4)]
        for worker in workers:
            worker.start()
        while len(done) < 12:
            threading.Event().wait(0.05)
        os.kill(first.process.pid, signal.SIGKILL)
        stop.set()
        for worker in workers:
            worker.join(30)
    _check_store(first.data_dir)
    with ocireg_server(tmp_path) as second:
        _assert_served(second, done)
        tags = _session().get(f"{second.url}/v2/crash/test/tags/list").json()["tags"]
        assert set(done) <= set(tags) and not any(tag.startswith(".") for tag in tags)


def _assert_served(server: RegistryEndpoint, done: dict[str, bytes]) -> None:
    session = _session()
    for tag, manifest in done.items():
        resp = session.get(f"{server.url}/v2/crash/test/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
        assert resp.status_code == 200 and resp.content == manifest, tag
        for blob in [json.loads(manifest)["config"], *json.loads(manifest)["layers"]]:
            got = session.get(f"{server.url}/v2/crash/test/blobs/{blob['digest']}")
            assert _digest(got.content) == blob["digest"], (tag, blob)
