"""SIGKILL loops: pushes, mirror fills, `ocireg gc` and `ocireg import` killed at random moments.

Each loop runs ten trials; the moment of each kill comes from a seeded generator, so a failing
trial can be replayed. After every kill:
- `ocireg verify` is clean, or reports only what `verify --repair` mends (after which a plain
  `verify` is clean): a crash may leave leftovers, never damage;
- every write that was acknowledged (a 201, a finished import) reads back byte-exact from a
  restarted server;
- nothing else is visible: every listed tag resolves to a manifest whose blobs are all whole,
  and every blob file in the store hashes to its name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.e2e.test_crash import OCI_MANIFEST, _assert_served, _check_store, _pusher
from tests.helpers.client import MANIFEST_ACCEPT, RegistryClient
from tests.helpers.images import OCI, MultiArchImage, build_image, write_oci_layout
from tests.helpers.procs import isolated_env
from tests.helpers.registries import REPO_ROOT, RegistryEndpoint, docker_registry_server, ocireg_server
from tests.helpers.upstream import MirrorConfig, UpstreamEntry, patterned_blob

pytestmark = pytest.mark.slow

TRIALS = 10
PUSHERS = 20
FILLERS = 20
TIMEOUT = 30.0


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def cli(workdir: Path, command: str, *args: str, config: Path | None = None) -> subprocess.Popen[str]:
    """`python -m registry COMMAND --data DIR` on a server's data folder, not waited for."""
    flags = ["--config", str(config)] if config is not None else []
    argv = [sys.executable, "-m", "registry", command, *flags, "--data", str(workdir / "ocireg-data"), *args]
    env = {k: v for k, v in isolated_env().items() if not k.startswith("OCIREG_")}
    return subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)


def finished(process: subprocess.Popen[str], timeout: float = 120.0) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, f"exit {process.returncode}\n{out}\n{err}"


def assert_verify_clean(workdir: Path, config: Path | None = None) -> str:
    """Clean, or only what `--repair` mends; returns what was found, for the failure message."""
    status, report = finished(cli(workdir, "verify", config=config))
    if status == 0:
        return ""
    print(f"verify after a kill found what --repair mends:\n{report}")
    repaired, repair_report = finished(cli(workdir, "verify", "--repair", config=config))
    assert repaired == 0, f"verify found damage it cannot repair:\n{report}\n{repair_report}"
    again, again_report = finished(cli(workdir, "verify", config=config))
    assert again == 0, f"verify not clean after --repair:\n{again_report}"
    return report


def assert_store_whole(data: Path) -> None:
    """Every blob file hashes to its name: a partial blob is never published."""
    for path in data.glob("blobs/sha256/*/*/data"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.parent.name, path


def assert_listed_complete(url: str, name: str, *, tags_only: bool = False) -> list[str]:
    """Every tag the server lists resolves to a manifest whose referenced content is whole
    (`tags_only`: the listing alone, when the caller checks the content itself)."""
    session = http()
    listed = session.get(f"{url}/v2/{name}/tags/list", timeout=TIMEOUT)
    if listed.status_code == 404:
        return []
    assert listed.status_code == 200, listed.text
    tags: list[str] = listed.json().get("tags") or []
    for tag in [] if tags_only else tags:
        assert_manifest_complete(session, url, name, tag)
    return tags


def assert_manifest_complete(session: requests.Session, url: str, name: str, reference: str) -> None:
    got = session.get(f"{url}/v2/{name}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT},
                      timeout=TIMEOUT)
    assert got.status_code == 200, (name, reference, got.status_code, got.text[:300])
    body = got.json()
    children = [m["digest"] for m in body.get("manifests", [])]
    for child in children:
        assert_manifest_complete(session, url, name, child)
    for blob in [body["config"], *body.get("layers", [])] if "config" in body else []:
        data = session.get(f"{url}/v2/{name}/blobs/{blob['digest']}", timeout=TIMEOUT)
        assert data.status_code == 200 and digest_of(data.content) == blob["digest"], (reference, blob)


def kill_after(process: subprocess.Popen[str], delay: float) -> None:
    """SIGKILL `process` after `delay` seconds unless it has ended (its pid is not reused then)."""
    time.sleep(delay)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)


# -- pushes -------------------------------------------------------------------------------------


def test_kill_during_concurrent_pushes(tmp_path: Path) -> None:
    """Twenty pushers (chunked blobs, then a manifest) and a kill; ten times on one store."""
    workdir, done = tmp_path / "server", dict[str, bytes]()
    for trial in range(TRIALS):
        rng = random.Random(f"push-{trial}")
        stop = threading.Event()
        with ocireg_server(workdir) as server:
            before = len(done)
            threads = [threading.Thread(target=_pusher, args=(server.url, trial * 100 + i, done, stop))
                       for i in range(PUSHERS)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while len(done) == before and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.5))
            os.kill(server.process.pid, signal.SIGKILL)
            stop.set()
            for thread in threads:
                thread.join(TIMEOUT)
            assert len(done) > before, f"trial {trial}: no push completed"
        _check_store(workdir / "ocireg-data")
        assert_verify_clean(workdir)
        with ocireg_server(workdir) as restarted:
            _assert_served(restarted, dict(list(done.items())[before:]))
            listed = assert_listed_complete(restarted.url, "crash/test", tags_only=True)
            assert set(done) <= set(listed), sorted(set(done) - set(listed))
    with ocireg_server(workdir) as last:
        _assert_served(last, done)
        assert_listed_complete(last.url, "crash/test")


# -- mirror fills -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    upstream: RegistryEndpoint
    blobs: Sequence[bytes]


@pytest.fixture
def seeded_upstream(tmp_path: Path) -> Iterator[Seeded]:
    """Distribution holding FILLERS blobs of 1 MiB in library/fill."""
    with docker_registry_server(tmp_path / "upstream") as upstream:
        client = RegistryClient(upstream.url, timeout=120)
        blobs = [patterned_blob(1024 * 1024, seed=f"campaign-fill-{i}") for i in range(FILLERS)]
        for blob in blobs:
            client.push_blob("library/fill", blob)
        yield Seeded(upstream, [blob.data for blob in blobs])


def _fill(url: str, data: bytes, stop: threading.Event) -> None:
    if stop.is_set():
        return
    try:
        http().get(f"{url}/v2/docker.io/library/fill/blobs/{digest_of(data)}", timeout=TIMEOUT)
    except requests.RequestException:
        pass


def test_kill_during_mirror_fills(tmp_path: Path, seeded_upstream: Seeded) -> None:
    """Twenty concurrent uncached pulls through the mirror and a kill, on a fresh cache each time."""
    config = MirrorConfig([UpstreamEntry("docker.io", seeded_upstream.upstream.url)]).write(
        tmp_path / "ocireg.toml")
    for trial in range(TRIALS):
        rng = random.Random(f"fill-{trial}")
        workdir = tmp_path / f"mirror-{trial}"
        stop = threading.Event()
        with ocireg_server(workdir, ["--config", str(config)]) as server:
            threads = [threading.Thread(target=_fill, args=(server.url, data, stop))
                       for data in seeded_upstream.blobs]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(0.05, 1.0))
            os.kill(server.process.pid, signal.SIGKILL)
            stop.set()
            for thread in threads:
                thread.join(TIMEOUT)
        assert_store_whole(workdir / "ocireg-data")
        assert_verify_clean(workdir, config)
        with ocireg_server(workdir, ["--config", str(config)]) as restarted:
            session = http()
            for data in seeded_upstream.blobs:
                got = session.get(f"{restarted.url}/v2/docker.io/library/fill/blobs/{digest_of(data)}",
                                  timeout=TIMEOUT)
                assert got.status_code == 200 and got.content == data, (trial, got.status_code)
        assert_store_whole(workdir / "ocireg-data")


# -- gc -----------------------------------------------------------------------------------------


def _push_manifest(client: RegistryClient, name: str, seed: str, tag: str | None) -> str:
    """A config, a 256 KiB layer and their manifest, under `tag` or by digest only."""
    layer = patterned_blob(256 * 1024, seed=seed)
    config_data = json.dumps({"seed": seed}).encode()
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(config_data),
              "size": len(config_data)}
    client.push_blob(name, layer)
    session = client.session
    start = session.post(f"{client.base_url}/v2/{name}/blobs/uploads/?digest={config['digest']}",
                         data=config_data, timeout=TIMEOUT)
    assert start.status_code == 201, start.text
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                           "layers": [layer.descriptor()]}).encode()
    digest = digest_of(manifest)
    put = session.put(f"{client.base_url}/v2/{name}/manifests/{tag or digest}", data=manifest,
                      headers={"Content-Type": OCI_MANIFEST}, timeout=TIMEOUT)
    assert put.status_code == 201, put.text
    return digest


def _calibrate(process: subprocess.Popen[str]) -> float:
    """How long one undisturbed run takes, to spread the kills over it."""
    started = time.monotonic()
    status, report = finished(process)
    assert status == 0, report
    return time.monotonic() - started


def test_kill_during_gc(tmp_path: Path) -> None:
    """gc runs beside the server (it is meant to); each trial adds garbage and keepers, and kills it."""
    workdir = tmp_path / "server"
    kept: dict[str, str] = {}
    with ocireg_server(workdir) as server:
        client = RegistryClient(server.url)
        duration, outcomes = 1.0, list[int]()
        for trial in range(TRIALS + 1):
            rng = random.Random(f"gc-{trial}")
            new: dict[str, str] = {}
            for i in range(4):
                new[f"t{trial}-{i}"] = _push_manifest(client, "gc/app", f"keep-{trial}-{i}", f"t{trial}-{i}")
                _push_manifest(client, "gc/app", f"drop-{trial}-{i}", None)
                gone = _push_manifest(client, "gc/old", f"old-{trial}-{i}", "old")
                assert client.request("DELETE", f"/v2/gc/old/manifests/{gone}").status_code == 202
            kept.update(new)
            gc = cli(workdir, "gc", "--grace", "0s", "--untagged")
            if trial == 0:
                duration = _calibrate(gc)
                continue
            threading.Thread(target=kill_after, args=(gc, rng.uniform(0.2, 1.0) * duration)).start()
            gc.wait(120)
            outcomes.append(gc.returncode)
            assert_verify_clean(workdir)
            session = http()
            for tag, digest in new.items():
                assert_manifest_complete(session, server.url, "gc/app", tag)
                assert_manifest_complete(session, server.url, "gc/app", digest)
            assert set(kept) <= set(assert_listed_complete(server.url, "gc/app", tags_only=True))
    assert_store_whole(workdir / "ocireg-data")
    assert any(code == -signal.SIGKILL for code in outcomes), f"no gc was killed mid-run: {outcomes}"
    status, report = finished(cli(workdir, "gc", "--grace", "0s", "--untagged"))
    assert status == 0, report
    with ocireg_server(workdir) as restarted:
        assert set(kept) <= set(assert_listed_complete(restarted.url, "gc/app"))


# -- import -------------------------------------------------------------------------------------


def _archive(image: MultiArchImage, directory: Path) -> Path:
    """An OCI layout as one tar: oci-layout and index.json first, then the blobs."""
    layout = write_oci_layout(image, directory / "layout", "v1")
    archive = directory / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for path in [layout / "oci-layout", layout / "index.json", *sorted(layout.glob("blobs/sha256/*"))]:
            data = path.read_bytes()
            info = tarfile.TarInfo(str(path.relative_to(layout)))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def test_kill_during_import(tmp_path: Path) -> None:
    """Each trial imports a new image under its own name and is killed: all or nothing."""
    workdir = tmp_path / "server"
    images = [build_image(OCI, seed=f"campaign-import-{i}", layer_size=1536 * 1024) for i in range(TRIALS + 1)]
    archives = [_archive(image, tmp_path / f"archive-{i}") for i, image in enumerate(images)]
    with ocireg_server(workdir) as server:
        duration = _calibrate(cli(workdir, "import", "--name", "imp/app0", str(archives[0])))
        outcomes: list[int] = []
        for trial in range(1, TRIALS + 1):
            rng = random.Random(f"import-{trial}")
            name = f"imp/app{trial}"
            importer = cli(workdir, "import", "--name", name, str(archives[trial]))
            threading.Thread(target=kill_after, args=(importer, rng.uniform(0.2, 1.0) * duration)).start()
            importer.wait(120)
            outcomes.append(importer.returncode)
            tags = assert_listed_complete(server.url, name)
            if importer.returncode == 0:
                assert tags == ["v1"], (trial, tags)
            assert_verify_clean(workdir)
            status, report = finished(cli(workdir, "import", "--name", name, str(archives[trial])))
            assert status == 0, report
            got = http().get(f"{server.url}/v2/{name}/manifests/v1", headers={"Accept": MANIFEST_ACCEPT},
                             timeout=TIMEOUT)
            assert got.content == images[trial].index.data
            assert assert_listed_complete(server.url, name) == ["v1"]
        assert_store_whole(workdir / "ocireg-data")
    assert any(code == -signal.SIGKILL for code in outcomes), f"no import was killed mid-run: {outcomes}"
