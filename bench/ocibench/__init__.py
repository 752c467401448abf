"""ocireg's side-by-side benchmark: ocireg, CNCF Distribution (`docker-registry`) and nginx.

Standard library only, so `python3 bench/run.py` works before any venv exists. Modules:
  tools.py      install wrk, nginx, ab, docker-registry with apt-get when missing; versions
  procs.py      a pinned server process: start, wait, stop, CPU ticks, peak RSS
  servers.py    how each server is configured and started (ocireg, Distribution, nginx)
  client.py     raw HTTP on loopback: OCI pushes, the fast reader for big GETs
  loadgen.py    wrk and ab runs, parsed
  scenarios.py  the measurements, server after server inside each repetition
  results.py    raw per-repetition figures (bench/out/results.json)
  report.py     medians, ratios, targets, BENCHMARKS.md
"""
