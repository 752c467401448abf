"""A small real disk for tests of a full one: a tmpfs mounted on a folder of the test's own.

Mounting needs root, which CI and the developers' machines have; a test that needs it fails
(never skips) elsewhere, as a missing binary does, so a disk-full test cannot pass quietly.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(folder: Path, size: int) -> Iterator[Path]:
    """`folder` (made if missing) as a tmpfs of `size` bytes while the block runs. A process
    still using it at the end gets a lazy unmount, so the test's own cleanup never hangs."""
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root", pytrace=False)
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)
