#!/usr/bin/env python3
"""Benchmark ocireg against CNCF Distribution (docker-registry) and nginx; write BENCHMARKS.md.

    python3 bench/run.py            # full run (~15 min): 3 repetitions, 10 s loads, 1 GiB blob
    python3 bench/run.py --quick    # smoke run (~2 min), report in bench/out/BENCHMARKS-quick.md

See bench/README.md. Standard library only; installs wrk, nginx, ab and docker-registry with
apt-get when they are missing (root or sudo).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from ocibench import report, tools
from ocibench.procs import BenchError
from ocibench.results import Results
from ocibench.scenarios import Bench, Settings, log

PHASES = ("get", "small", "range", "push", "mirror")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 repetition, 2 s loads, 128 MiB blob; report in bench/out/")
    p.add_argument("--reps", type=int, help="repetitions (default 3; quick 1)")
    p.add_argument("--duration", type=float, help="seconds per wrk/ab run (default 10; quick 2)")
    p.add_argument("--blob-mib", type=int, help="size of the big blob in MiB (default 1024; quick 128)")
    p.add_argument("--only", help=f"comma-separated phases to run, of {','.join(PHASES)}")
    p.add_argument("--output", type=Path,
                   help="report file (default BENCHMARKS.md; quick bench/out/BENCHMARKS-quick.md)")
    p.add_argument("--python", help="interpreter to run ocireg with (default .venv/bin/python, else this one)")
    p.add_argument("--workdir", type=Path, help="parent of the scratch folder (default /var/tmp); needs ~5 GiB free")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (data, configs, server logs)")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="record ocireg with py-spy (raw folded stacks) in every scenario into DIR; "
                        "the figures of such a run are perturbed")
    p.add_argument("--report-only", type=Path, metavar="RESULTS_JSON",
                   help="rebuild the report from a saved results file, run nothing")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    q = args.quick
    s = Settings(
        reps=args.reps or (1 if q else 3),
        duration=args.duration or (2.0 if q else 10.0),
        blob_size=(args.blob_mib or (128 if q else 1024)) << 20,
        small_pushes=3 if q else 10,
        get_samples=2 if q else 5,
        concurrent_samples=1 if q else 3,
        pull_samples=1 if q else 3,
        server_cpu=args.server_cpu,
        client_cpu=args.client_cpu,
        upstream_cpu=args.server_cpu,
    )
    if args.only:
        wanted = tuple(x.strip() for x in args.only.split(",") if x.strip())
        unknown = set(wanted) - set(PHASES)
        if unknown:
            raise SystemExit(f"unknown phase(s) {', '.join(sorted(unknown))}; phases: {', '.join(PHASES)}")
        s.phases = wanted
    return s


def main(argv: list[str]) -> int:
    args = parse(argv)
    out_dir = HERE / "out"
    output = args.output or (out_dir / "BENCHMARKS-quick.md" if args.quick else REPO / "BENCHMARKS.md")
    analysis = HERE / "analysis.md"
    if args.report_only:
        text = report.write(Results.load(args.report_only), output, analysis)
        print(text)
        return 0

    s = settings_from(args)
    cpus = sorted(os.sched_getaffinity(0))
    if s.server_cpu not in cpus or s.client_cpu not in cpus or s.server_cpu == s.client_cpu:
        raise SystemExit(f"need two distinct CPUs for servers and clients; this process may use {cpus}")
    started = time.time()
    paths = tools.ensure_tools(log)
    python = tools.ocireg_python(REPO, args.python, log)
    if args.profile:
        s.profile_dir = args.profile.resolve()
        s.py_spy = shutil.which("py-spy") or str(Path(python).parent / "py-spy")
        if not Path(s.py_spy).exists():
            raise SystemExit("--profile needs py-spy: pip install py-spy (into ocireg's venv or on PATH)")
    os.sched_setaffinity(0, {s.client_cpu})  # this process is the fast reader; wrk and ab inherit it
    parent = args.workdir or Path("/var/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    need = s.blob_size * 6
    free = shutil.disk_usage(parent).free
    if free < need:
        raise SystemExit(f"{parent} has {free / 2**30:.1f} GiB free; the run needs about {need / 2**30:.1f} GiB")
    workdir = Path(tempfile.mkdtemp(prefix="ocireg-bench-", dir=parent))
    log(f"scratch folder {workdir}; ocireg runs with {python}")

    results = Results()
    results.meta = {
        "command": "python3 bench/run.py" + ("" if not argv else " " + shlex.join(argv)),
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": tools.machine(),
        "versions": tools.versions(paths, python, REPO),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(s).items()},
    }
    if s.profile_dir:
        results.note("run", f"py-spy recorded ocireg during this run (profiles in {s.profile_dir}): "
                            "its figures are perturbed")
    bench = Bench(s, paths, python, REPO, workdir, results)
    failed = []
    try:
        bench.setup()
        for phase in s.phases:
            try:
                getattr(bench, f"phase_{phase}")()
            except BenchError as err:
                failed.append(phase)
                log(f"phase {phase} failed: {err}")
                results.note(phase, f"phase failed: {str(err).splitlines()[0]}")
            dead = [n for n, srv in bench.running.items() if not srv.alive()]
            if dead:
                raise BenchError(f"server(s) died during {phase}: {', '.join(dead)}\n"
                                 + "\n".join(bench.running[n].log_tail() for n in dead))
    except (BenchError, KeyboardInterrupt) as err:
        failed.append("setup" if not results.values else "run")
        log(f"stopped: {err!r}")
        if not isinstance(err, KeyboardInterrupt):
            traceback.print_exc()
    finally:
        bench.stop_all()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results.meta["elapsed_min"] = (time.time() - started) / 60
    raw = (args.output.with_suffix(".json") if args.output
           else out_dir / ("results-quick.json" if args.quick else "results.json"))
    results.save(raw)
    text = report.write(results, output, analysis)
    log(f"wrote {output} and {raw} in {results.meta['elapsed_min']:.1f} min")
    start = text.find("## Targets")
    print(text[start:text.find("\n## ", start + 5)])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
