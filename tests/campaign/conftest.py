"""The fuzz module is left out of runs that deselect e2e or slow tests.

schemathesis builds its cases when the module is imported, which costs seconds of CPU; the fast
tier (`-m "not e2e and not slow"`) would deselect every one of them afterwards anyway.
"""

from __future__ import annotations

from pathlib import Path

import pytest

FUZZ_MODULE = "test_fuzz_api.py"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name != FUZZ_MODULE:
        return None
    expression = str(config.getoption("markexpr") or "")
    return True if "not e2e" in expression or "not slow" in expression else None
