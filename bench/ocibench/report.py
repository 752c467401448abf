"""BENCHMARKS.md from the raw figures: a table per scenario, ratios, the issue's targets."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .results import Results, median, ratios

O, D, N = "ocireg", "docker-registry", "nginx"
CLIENT_FULL = 0.9  # load generator busier than this: the figure is a floor, not the server's limit


def fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def spread(xs: list[float]) -> str:
    """`median (min–max)`; a single figure alone."""
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt(xs[0])
    lo, hi = min(xs), max(xs)
    if fmt(lo) == fmt(hi):
        return fmt(median(xs))
    return f"{fmt(median(xs))} ({fmt(lo)}–{fmt(hi)})"


def ratio_text(xs: list[float], digits: int = 2) -> str:
    if not xs:
        return "–"
    m = median(xs)
    text = f"{m:.{digits}f}×"
    if len(xs) > 1 and f"{min(xs):.{digits}f}" != f"{max(xs):.{digits}f}":
        text += f" ({min(xs):.{digits}f}–{max(xs):.{digits}f})"
    return text


@dataclass
class Row:
    label: str
    scenario: str
    metric: str


def table(r: Results, rows: list[Row], servers: list[str], ratio_pairs: list[tuple[str, str]],
          headers: dict[str, str] | None = None) -> list[str]:
    headers = headers or {}
    head = ["figure", *[headers.get(s, s) for s in servers], *[f"{headers.get(a, a)} / {headers.get(b, b)}"
                                                             for a, b in ratio_pairs]]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.label]
        for s in servers:
            cells.append(spread(r.get(row.scenario, row.metric, s)))
        for a, b in ratio_pairs:
            cells.append(ratio_text(ratios(r.get(row.scenario, row.metric, a), r.get(row.scenario, row.metric, b))))
        if any(c != "–" for c in cells[1:]):
            out.append("| " + " | ".join(cells) + " |")
    return out


@dataclass
class Target:
    scenario: str
    target: str
    measure: Callable[[Results], list[float]]  # per-repetition figures compared with the bound
    check: Callable[[float], bool]
    unit: str = "×"


def _r(scen: str, metric: str, a: str, b: str) -> Callable[[Results], list[float]]:
    return lambda res: ratios(res.get(scen, metric, a), res.get(scen, metric, b))


def _v(scen: str, metric: str, s: str) -> Callable[[Results], list[float]]:
    return lambda res: res.get(scen, metric, s)


TARGETS = [
    Target("GET 1 GiB, fast reader", "≥ 0.9 × nginx", _r("get", "throughput_gbs", O, N), lambda x: x >= 0.9),
    Target("server CPU per GB served", "≤ 1.5 × nginx", _r("get", "cpu_s_per_gb", O, N), lambda x: x <= 1.5),
    Target("8 concurrent GETs", "≥ 0.9 × nginx", _r("get", "concurrent_gbs", O, N), lambda x: x >= 0.9),
    Target("manifest GET by tag", "≥ 5 × docker-registry req/s", _r("manifest_tag", "rps", O, D), lambda x: x >= 5),
    Target("manifest GET by digest", "≥ 5 × docker-registry req/s", _r("manifest_digest", "rps", O, D),
           lambda x: x >= 5),
    Target("blob HEAD", "≥ 5 × docker-registry req/s", _r("blob_head", "rps", O, D), lambda x: x >= 5),
    Target("1 MiB Range GETs", "≥ 0.8 × nginx req/s", _r("range", "rps", O, N), lambda x: x >= 0.8),
    Target("push 1 GiB, digest verified", "≥ 4 × docker-registry MB/s", _r("push", "mbs", O, D), lambda x: x >= 4),
    Target("mirror cold pull of 1 GiB", "≤ 1.2 × direct pull time", _r("mirror_cold", "seconds", O, "direct"),
           lambda x: x <= 1.2),
    Target("16 concurrent cold pulls: upstream GETs", "exactly 1", _v("mirror_cold16", "upstream_gets", O),
           lambda x: x == 1, unit=""),
    Target("16 concurrent cold pulls: time", "≤ 1.3 × 16 direct pulls", _r("mirror_cold16", "seconds", O, "direct"),
           lambda x: x <= 1.3),
    Target("warm pull through the mirror", "≤ 1.05 × direct", _r("mirror_warm", "seconds", O, "direct"),
           lambda x: x <= 1.05),
    Target("peak RSS serving 1 GiB GETs", "≤ 60 MB", _v("get", "peak_rss_mb", O), lambda x: x <= 60, unit=" MB"),
]


def target_rows(r: Results) -> list[tuple[Target, list[float], str]]:
    rows = []
    for t in TARGETS:
        xs = t.measure(r)
        if not xs:
            verdict = "not measured"
        elif t.unit == "":  # counts: every repetition must meet it
            verdict = "met" if all(t.check(x) for x in xs) else "NOT MET"
        else:
            verdict = "met" if t.check(median(xs)) else "NOT MET"
        rows.append((t, xs, verdict))
    return rows


def _measured(t: Target, xs: list[float]) -> str:
    if not xs:
        return "–"
    if t.unit == "×":
        return ratio_text(xs, 3)
    if t.unit == "":
        return ", ".join(f"{x:g}" for x in xs) + (" (per repetition)" if len(xs) > 1 else "")
    return spread(xs) + t.unit


def client_warnings(r: Results) -> list[str]:
    out = []
    labels = {"get": "GET 1 GiB", "manifest_tag": "manifest by tag", "manifest_digest": "manifest by digest",
              "blob_head": "blob HEAD", "v2_base": "GET /v2/", "range": "Range GETs"}
    for scen, metrics in r.values.items():
        for metric in ("client_busy", "concurrent_client_busy"):
            for server, xs in metrics.get(metric, {}).items():
                if xs and median(xs) >= CLIENT_FULL:
                    what = labels.get(scen, scen) + (" (concurrent)" if metric.startswith("concurrent") else "")
                    out.append(f"{what}: the load generator's CPU was {median(xs):.0%} busy against {server}; "
                               f"{server}'s figure is a floor set by the client, not the server's limit.")
    return out


def render(r: Results, analysis: str = "") -> str:
    m = r.meta
    s = m.get("settings", {})
    mach = m.get("machine", {})
    ver = m.get("versions", {})
    blob_mib = s.get("blob_size", 1 << 30) / 2**20
    blob_name = "1 GiB" if blob_mib == 1024 else f"{blob_mib:.0f} MiB"
    reps = s.get("reps", 3)
    L: list[str] = []
    L += ["# Benchmarks: ocireg, CNCF Distribution (docker-registry), nginx", ""]
    if m.get("quick"):
        L += ["**Quick smoke run: short loads, one repetition, a small blob. Not for comparison.**", ""]
    L += [f"Generated by `{m.get('command', 'python3 bench/run.py')}` on {m.get('date', '?')} "
          f"in {m.get('elapsed_min', 0):.1f} min. Figures are medians of {reps} repetition(s) with (min–max); "
          "ratios are the median of the per-repetition ratios (the servers of one repetition run minutes "
          "apart, so pairing cancels most drift of a shared machine). GB = 10⁹ bytes, MB = 10⁶ bytes.", ""]
    L += ["## Machine and versions", "",
          f"- CPU: {mach.get('cpu', '?')}, {mach.get('cores', '?')} cores; {mach.get('memory', '?')} RAM; "
          f"kernel {mach.get('kernel', '?')}; {mach.get('os', '?')}",
          f"- servers pinned to CPU {s.get('server_cpu', 0)} and load generators to CPU {s.get('client_cpu', 1)} "
          f"with `taskset`; loopback only",
          *[f"- {k}: {v}" for k, v in ver.items()]]
    L.append("")
    L += ["## Targets (issue 5)", "", "| scenario | target | measured | verdict |", "|---|---|---|---|"]
    for t, xs, verdict in target_rows(r):
        L.append(f"| {t.scenario} | {t.target} | {_measured(t, xs)} | {'**' + verdict + '**' if verdict != 'met' else verdict} |")
    L.append("")

    three, rp3 = [O, D, N], [(O, D), (O, N)]
    L += [f"## GET of a {blob_name} blob", "",
          f"A fresh connection per GET, read by `bench/ocibench/client.py` (1 MiB `recv_into`); a repetition's "
          f"figure is the median of {s.get('get_samples', 5)} GETs. {s.get('big_concurrency', 8)} concurrent: that "
          f"many GETs started together, aggregate bytes / wall time, median of {s.get('concurrent_samples', 3)} rounds. "
          "nginx serves the very file in ocireg's store with `sendfile on`. Server CPU is utime+stime from "
          "/proc/PID/stat over all the GETs of a repetition, per GB sent. Time to first byte runs from the "
          "connect to the first response byte. Peak RSS is VmHWM, reset before the phase.", ""]
    L += table(r, [Row("throughput, GB/s", "get", "throughput_gbs"),
                   Row("time to first byte, ms", "get", "ttfb_ms"),
                   Row("server CPU, s per GB", "get", "cpu_s_per_gb"),
                   Row(f"{s.get('big_concurrency', 8)} concurrent, aggregate GB/s", "get", "concurrent_gbs"),
                   Row(f"{s.get('big_concurrency', 8)} concurrent, server CPU s per GB", "get", "concurrent_cpu_s_per_gb"),
                   Row("peak RSS during the GETs, MB", "get", "peak_rss_mb"),
                   Row("reader CPU busy (1 = its core full)", "get", "client_busy")], three, rp3)
    L.append("")
    L += ["## Small requests", "",
          f"{s.get('small_connections', 64)} keep-alive connections for {s.get('duration', 10):g} s per run; "
          "GETs with `wrk -t1`, blob HEAD with `ab -i -k` (wrk 4.1 waits for a body after a HEAD and stalls). "
          "Manifests are asked with the Accept header of containerd. nginx serves the manifest file from "
          "ocireg's store and answers `/v2/` with a constant, as the ceiling of what one core can answer.", ""]
    for scen, title in (("manifest_tag", "Manifest GET by tag"), ("manifest_digest", "Manifest GET by digest"),
                        ("blob_head", "Blob HEAD"), ("v2_base", "`GET /v2/`")):
        L += [f"### {title}", ""]
        L += table(r, [Row("requests/s", scen, "rps"), Row("p99 latency, ms", scen, "p99_ms"),
                       Row("server CPU, µs per request", scen, "cpu_us_per_req"),
                       Row("load generator CPU busy", scen, "client_busy")], three, rp3)
        L.append("")
    L += [f"## Random {s.get('range_size', 1 << 20) >> 20} MiB Range GETs", "",
          f"`wrk -t1 -c{s.get('range_connections', 16)}` with `bench/ocibench/range.lua`: each request asks "
          "`Range: bytes=a-b` at a random byte offset of the big blob.", ""]
    L += table(r, [Row("requests/s", "range", "rps"), Row("p99 latency, ms", "range", "p99_ms"),
                   Row("server CPU, µs per request", "range", "cpu_us_per_req"),
                   Row("server CPU, s per GB", "range", "cpu_s_per_gb"),
                   Row("load generator CPU busy", "range", "client_busy")], three, rp3)
    L.append("")
    L += ["## Push", "",
          f"`POST /v2/<name>/blobs/uploads/` then `PUT <location>?digest=` with the whole body "
          f"(sendfile from a file); the registry verifies the digest before it answers 201. A new random "
          f"{blob_name} blob per repetition; the page cache is synced before each push. Small pushes: median of "
          f"{s.get('small_pushes', 10)} distinct {s.get('small_push_size', 4 << 20) >> 20} MiB blobs. "
          "`new file` is the floor of any push on this disk: the harness itself writes a new file of the blob's "
          "size from a 1 MiB buffer and fsyncs it, without network or hashing. On this VM it swings between "
          "~0.2 s and ~2.5 s of CPU per GiB from run to run (a page of new page cache costs a host fault when "
          "the hypervisor has taken it back), and every server's push pays the same.", ""]
    L += table(r, [Row(f"push {blob_name}, MB/s", "push", "mbs"), Row("server CPU, s per GB", "push", "cpu_s_per_gb"),
                   Row(f"push {s.get('small_push_size', 4 << 20) >> 20} MiB, ms", "push_small", "ms")],
               [O, D, "new file"], [(O, D)])
    L.append("")
    L += ["## Pull-through mirror", "",
          f"The upstream is the docker-registry above, holding the blob as `library/big`. **ocireg** is started "
          f"as a mirror of it (`[[mirror.upstreams]] name = \"docker.io\"`, `tag_ttl = \"0s\"`) and pulled as "
          f"`/v2/docker.io/library/big/blobs/<digest>`; **docker-registry** is a second Distribution with "
          f"`proxy: remoteurl:` the upstream. Each cold pull runs on a freshly started mirror with an empty store "
          f"(so its peak RSS is that pull's); `direct` is the same GET from the upstream itself (median of "
          f"{s.get('pull_samples', 3)}, like the warm pulls). A cold pull ends when the client has the last byte. "
          f"Upstream GETs "
          f"are counted in the upstream's access log. Upstream and mirror share CPU "
          f"{s.get('server_cpu', 0)}.", ""]
    hdr = {O: "ocireg mirror", D: "docker-registry proxy"}
    L += table(r, [Row("cold pull, s", "mirror_cold", "seconds"),
                   Row("warm pull, s", "mirror_warm", "seconds"),
                   Row(f"{s.get('cold_concurrency', 16)} concurrent cold pulls, s (all done)", "mirror_cold16", "seconds")],
               [O, D, "direct"], [(O, "direct"), (D, "direct"), (O, D)], hdr)
    L.append("")
    L += table(r, [Row("upstream GETs, one cold pull", "mirror_cold", "upstream_gets"),
                   Row("upstream HEADs, one cold pull", "mirror_cold", "upstream_heads"),
                   Row(f"upstream GETs, {s.get('cold_concurrency', 16)} concurrent cold pulls", "mirror_cold16", "upstream_gets"),
                   Row(f"upstream HEADs, {s.get('cold_concurrency', 16)} concurrent cold pulls", "mirror_cold16", "upstream_heads"),
                   Row("peak RSS, one cold pull, MB", "mirror_cold", "peak_rss_mb"),
                   Row(f"peak RSS, {s.get('cold_concurrency', 16)} cold pulls, MB", "mirror_cold16", "peak_rss_mb"),
                   Row("mirror CPU, s per GB served, one cold pull", "mirror_cold", "cpu_s_per_gb"),
                   Row(f"mirror CPU, s per GB served, {s.get('cold_concurrency', 16)} cold pulls", "mirror_cold16", "cpu_s_per_gb")],
               [O, D], [(O, D)], hdr)
    L.append("")
    notes = client_warnings(r)
    for scen, texts in r.notes.items():
        notes += [f"{scen}: {t}" for t in texts]
    if notes:
        L += ["## Notes from the run", "", *[f"- {n}" for n in notes], ""]
    if analysis.strip():
        L += ["## Analysis", "", analysis.strip(), ""]
    return "\n".join(L)


def write(r: Results, path: Path, analysis_file: Path | None = None) -> str:
    analysis = analysis_file.read_text() if analysis_file and analysis_file.exists() else ""
    text = render(r, analysis)
    path.write_text(text)
    return text
