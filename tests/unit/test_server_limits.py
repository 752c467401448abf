"""The connection cap against the process's open-file limit, in a child process whose limits
the test sets (the test run's own limits stay untouched)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import resource, sys
from registry.server import connection_cap
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))
cap = connection_cap(int(sys.argv[3]))
print(cap, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def _probe(soft: int, hard: int, max_connections: int) -> tuple[int, int]:
    result = subprocess.run([sys.executable, "-c", PROBE, str(soft), str(hard), str(max_connections)],
                            capture_output=True, text=True, timeout=60, check=True)
    cap, soft_after = result.stdout.split()
    return int(cap), int(soft_after)


def test_soft_limit_is_raised_to_the_hard_one() -> None:
    assert _probe(256, 4096, 1024) == (1024, 4096)


def test_cap_is_lowered_to_what_the_hard_limit_allows() -> None:
    cap, soft = _probe(256, 256, 1024)
    assert soft == 256
    assert cap == (256 - 64) // 3
