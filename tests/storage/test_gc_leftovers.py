"""What gc removes outside the blob store: idle upload sessions, folders no session can use,
and temporary files of atomic writes that were cut short."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from registry.storage.gc import GcOptions, GcReport, collect_garbage

HOUR = 3600.0
STATE = '{"name": "app", "algorithm": "sha256"}'


def _backdate(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    for item in [*path.rglob("*"), path] if path.is_dir() else [path]:
        os.utime(item, (when, when))


def _session(root: Path, name: str, data: bytes, idle: float, state: bool = True) -> Path:
    folder = root / "uploads" / name
    folder.mkdir(parents=True)
    (folder / "data").write_bytes(data)
    if state:
        (folder / "state").write_text(STATE)
    _backdate(folder, idle)
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    _session(root, "idle-2h", b"a" * 1000, 2 * HOUR)
    _session(root, "fresh", b"b" * 100, 0)
    _session(root, "stateless-2h", b"c" * 10, 2 * HOUR, state=False)
    empty = root / "uploads" / "empty-2h"
    empty.mkdir()
    _backdate(empty, 2 * HOUR)
    tags = root / "repositories" / "app" / "_tags"
    tags.mkdir(parents=True)
    (tags / ".tmp-old").write_bytes(b"x" * 7)
    _backdate(tags / ".tmp-old", 2 * HOUR)
    (tags / ".tmp-new").write_bytes(b"y")
    return root


def _gc(root: Path, **options: float | bool) -> GcReport:
    return collect_garbage(str(root), GcOptions(**options), lambda name: False)  # type: ignore[arg-type]


def _left(root: Path) -> set[str]:
    return {*os.listdir(root / "uploads"), *os.listdir(root / "repositories" / "app" / "_tags")}


def test_leftovers_older_than_the_grace_go(root: Path) -> None:
    report = _gc(root, grace=HOUR, upload_expiry=3 * HOUR)
    assert _left(root) == {"idle-2h", "fresh", ".tmp-new"}
    assert report.uploads_removed == 2 and report.leftovers_removed == 1
    assert report.bytes_freed == 10 + 7


def test_sessions_idle_past_the_expiry_go(root: Path) -> None:
    report = _gc(root, grace=HOUR, upload_expiry=HOUR)
    assert _left(root) == {"fresh", ".tmp-new"}
    assert report.bytes_freed == 1000 + len(STATE) + 10 + 7


def test_zero_grace_removes_every_session(root: Path) -> None:
    """The server is stopped: a session is idle for good, whatever the expiry."""
    _gc(root, grace=0)
    assert _left(root) == set()


def test_dry_run_counts_and_keeps(root: Path) -> None:
    report = _gc(root, grace=0, dry_run=True)
    assert report.uploads_removed == 4 and report.leftovers_removed == 2
    assert report.bytes_freed == 1000 + 100 + 2 * len(STATE) + 10 + 7 + 1
    assert len(_left(root)) == 6
