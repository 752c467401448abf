#!/usr/bin/env python3
"""Summarise py-spy raw (folded) profiles: hottest functions by own and by inclusive samples.

    python3 bench/pyspy_top.py DIR_OR_FILES... [--top 15]

`bench/run.py --profile DIR` writes one `<server>-<scenario>-rep<N>.txt` per scenario (py-spy
record --threads --format raw, idle samples dropped, so percentages are of the samples in which
a thread was running Python or a C call made from Python, e.g. hashlib or os.write).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")
# Leaves that are a thread waiting, which py-spy does not always recognise as idle: an executor
# thread blocked in its queue's get(), the event loop in epoll_wait.
IDLE_LEAVES = {"_worker (concurrent/futures/thread.py)", "EpollSelector.select (selectors.py)",
               "_PollLikeSelector.select (selectors.py)"}


def function(frame: str) -> str:
    """`put_upload (registry/handlers/uploads.py:95)` -> `put_upload (registry/handlers/uploads.py)`."""
    return _LINE.sub(")", frame.strip())


def summarise(path: Path, top: int, keep_idle: bool = False) -> str:
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread = frames[0] if frames[0].startswith("thread") else ""
        frames = frames[1:] if thread else frames
        if not keep_idle and frames and function(frames[-1]) in IDLE_LEAVES:
            continue
        kind = "event loop thread" if "MainThread" in (thread or frames[0]) else "executor threads"
        threads[kind] += n
        total += n
        if not frames:
            continue
        own[function(frames[-1])] += n
        for f in {function(f) for f in frames}:
            incl[f] += n
    if not total:
        return f"{path.name}: no samples\n"
    shares = ", ".join(f"{k} {v / total:.0%}" for k, v in threads.items())
    out = [f"== {path.name}: {total} busy samples ({shares})",
           "   own time:"]
    out += [f"   {v / total:6.1%}  {k}" for k, v in own.most_common(top)]
    out.append("   inclusive (registry/, mirror/, aiohttp/ frames):")
    shown = [(k, v) for k, v in incl.most_common() if re.search(r"\((registry|mirror|aiohttp)/", k)]
    out += [f"   {v / total:6.1%}  {k}" for k, v in shown[:top]]
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--idle", action="store_true", help="keep samples of threads waiting (executor queue, epoll)")
    args = p.parse_args()
    files = []
    for path in args.paths:
        files += sorted(path.glob("*.txt")) if path.is_dir() else [path]
    for f in files:
        print(summarise(f, args.top, args.idle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
