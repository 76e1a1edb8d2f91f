"""The embedded store against a real Prometheus 2.42: ingest, bytes, select, CPU, memory.

Data (``bench/tsdb_target.py``): a simulated model server with 8 models, scraped every
5 s through the real SDK (counters by outcome, the sketch's latency histograms with
every ``le`` bucket they export after realistic traffic, in-flight gauges, process,
system and GPU gauges), plus every value of NAB's ``realAWSCloudwatch``. NAB's values
are laid on the same 5 s grid (their 5-minute timestamps are not kept: the issue asks
for their values, and a common grid lets both stores cut chunks the same way); each
file is cut into parts as long as the run, one series per part, so no value is lost.

Figures, ours and Prometheus's, in one run:

- **ingest**: every scrape appended with one ``Store.append`` (durable on return,
  ``fsync="batch"``, the head cut every 30 min as in production); samples/s of wall
  time and process CPU per million samples, counting only the ``append`` calls.
- **bytes per sample**: after ``cut_head()`` and ``compact()`` of everything, the
  chunk payload and the whole SQLite file (and its pages in use; the rest is free
  pages left by the WAL rows of the head). Prometheus: the same samples written as
  OpenMetrics with timestamps and turned into a block by ``promtool tsdb
  create-blocks-from openmetrics`` (its ``chunks/`` directory, and the whole block);
  its CPU for that is printed too. Data span one 2 h block window, as Prometheus
  would cut it.
- **select**: a second set of 10k series (the demo's series, 1k per ``shard``) over
  24 h at a 60 s interval (300 s with ``--quick``: 24 h of 10k series at 60 s is too
  slow to build in a quick run) ending now, in the state production leaves: the part
  older than 2 h written with ``append_series`` (chunks of up to 1440 samples, what
  ``compact()`` makes of it; appending 22 h scrape by scrape would only take
  longer), the last 2 h appended scrape by scrape (30-minute chunks and the head),
  then ``compact()`` with its defaults. ``select`` of 1k and 10k series over the last
  1 h and 24 h, median of 3 after one warm-up. Prometheus: the same samples
  backfilled with promtool (one file per 2 h block) and queried over HTTP with
  ``count_over_time(...[range])``, which reads and decodes the same samples but
  returns one number per series; the sample counts of both must agree.
- **CPU per sample, live**: Prometheus scraping the demo target, served over
  loopback with one pre-rendered body per step, as R jobs (R x series ~ 100k) every
  1 s; CPU seconds of its process over head samples appended, after a warm-up. Our
  ingest CPU (above) is the figure held against it; ours end to end (fetch with
  httpx, ``inferwatch.scrape.parse``, add job/instance, ``append``), which does
  what Prometheus's figure covers, is printed and checked against the goal too.
  It is the scrape manager's own path (``fetch``, ``parse_exposition``,
  ``store_scrape`` on a ``Target`` per replica): like Prometheus's scrape loop, which
  keeps a cache per target from each series' text to its labels and series ref, a
  target keeps a ``SeriesCache``, a map from its parsed label sets to their final
  ones, and the store remembers the refs of a target's last list of label sets. The parse
  without a cache (a target's first scrape) is timed on each replica's last body
  after the loop (the fastest of three passes) and printed beside it, outside the
  total.
- **memory**: resident memory with 100k active series. Prometheus: the live run
  above (1 s interval: its head keeps one open chunk per series whatever the
  interval). Ours: a child process that only appends the same 100k series at a 15 s
  interval for 121 scrapes (one whole head span, the last append cutting it; 41
  with ``--quick``); its peak RSS (held against Prometheus's largest), which
  includes the head cut that the last append starts (waited for), its largest RSS
  between appends (the head at its largest), at the end, and the interpreter's own
  before the store.

Goals: ingest >= 1,000,000 samples/s, <= 2 bytes/sample (chunks), CPU per sample <=
2x Prometheus's (store ingest; end to end reported beside it), peak RSS at 100k
series <= Prometheus's.

Usage: python bench/tsdb.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inferwatch.scrape.config import ScrapeConfig
from inferwatch.scrape.parse import parse_exposition
from inferwatch.scrape.target import Target, fetch, store_scrape
from inferwatch.tsdb.labels import Labels, Matcher
from inferwatch.tsdb.store import Store
from procs import Procs, free_port, wait_ready
from tsdb_target import STEP_S, Dataset, combine, nab_series, prefixes, simulate

BLOCK_MS = 2 * 3600 * 1000
COMPACT_AGE_MS = 2 * 3600 * 1000
MEMORY_SERIES = 100_000
MEMORY_INTERVAL_MS = 15_000
HERE = Path(__file__).resolve().parent


_START = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - _START:5.1f} s] {msg}", file=sys.stderr, flush=True)


def present(row: np.ndarray) -> tuple[list[int], list[float]]:
    cols = np.flatnonzero(~np.isnan(row))
    return cols.tolist(), row[cols].tolist()


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def label_json(labels: Labels) -> str:
    return json.dumps(labels, separators=(",", ":"))


# -- processes ------------------------------------------------------------------------


def start_target(procs: Procs, tmp: Path, ds: Dataset, rows: np.ndarray) -> tuple[Any, int]:
    np.save(tmp / "rows.npy", rows)
    (tmp / "prefixes.json").write_text(json.dumps(prefixes(ds.labels)))
    cmd = [sys.executable, str(HERE / "tsdb_target.py"), str(tmp / "rows.npy")]
    proc = procs.start([*cmd, str(tmp / "prefixes.json")], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("PORT "):
        raise RuntimeError(f"target server did not start: {line!r}")
    return proc, int(line.split()[1])


def start_prometheus(procs: Procs, tmp: Path, name: str, jobs: str) -> tuple[Any, str]:
    data = tmp / f"{name}-data"
    data.mkdir(exist_ok=True)
    config = tmp / f"{name}.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n" + jobs)
    port = free_port()
    cmd = [
        "/usr/bin/prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=30d",
        "--log.level=warn",
    ]
    log = tmp / f"{name}.log"
    proc = procs.start(cmd, log=log)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/-/ready", proc, log)
    return proc, url


def prom_metrics(url: str) -> dict[str, float]:
    """Its own /metrics, summed over label sets per name."""
    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


# -- ingest and bytes per sample ------------------------------------------------------


def ingest(store: Store, ds: Dataset, t0_ms: int, step_ms: int) -> dict[str, float]:
    labels = ds.labels
    wall = cpu = 0.0
    n = 0
    for i, row in enumerate(ds.values):
        cols, vals = present(row)
        samples = [(labels[j], v) for j, v in zip(cols, vals, strict=True)]
        w0, c0 = time.perf_counter(), time.process_time()
        result = store.append(t0_ms + i * step_ms, samples)
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        n += result.accepted
        if result.rejected:
            raise RuntimeError(f"step {i}: the store rejected {result.rejected} samples")
    return {"samples": n, "wall_s": wall, "cpu_s": cpu}


def verify(store: Store, ds: Dataset, t0_ms: int, step_ms: int, mint: int, maxt: int) -> bool:
    """Whether ``select`` gives back exactly the samples appended."""
    got = {s.labels: s for s in store.select([Matcher("__name__", "=~", ".+")], mint, maxt)}
    steps = t0_ms + np.arange(ds.values.shape[0]) * step_ms
    for j, labels in enumerate(ds.labels):
        col = ds.values[:, j]
        keep = ~np.isnan(col)
        s = got.get(labels)
        if s is None or not (
            np.array_equal(s.timestamps, steps[keep]) and np.array_equal(s.values, col[keep])
        ):
            log(f"  MISMATCH in select of {labels}")
            return False
    return len(got) == len(ds.labels)


def bytes_by_kind(path: Path, ds: Dataset) -> dict[str, tuple[int, int]]:
    kind_of = {label_json(lab): k for lab, k in zip(ds.labels, ds.kinds, strict=True)}
    out: dict[str, tuple[int, int]] = {}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT s.labels, sum(c.n), sum(length(c.data)) FROM chunks c "
            "JOIN series s ON s.id = c.series_id GROUP BY c.series_id"
        )
        for text, n, size in rows:
            kind = kind_of[text]
            a, b = out.get(kind, (0, 0))
            out[kind] = (a + n, b + size)
    return out


def live_page_bytes(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        size = db.execute("PRAGMA page_size").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * size)


def bench_ingest(tmp: Path, ds: Dataset, t0_ms: int) -> dict[str, Any]:
    path = tmp / "ingest.db"
    step_ms = STEP_S * 1000
    store = Store(path, retention_seconds=None)
    try:
        r = ingest(store, ds, t0_ms, step_ms)
        t = time.perf_counter()
        store.cut_head()
        cut_s = time.perf_counter() - t
        t = time.perf_counter()
        store.compact(older_than=-86400.0)
        compact_s = time.perf_counter() - t
        chunk = store.chunk_bytes()
        end = t0_ms + ds.values.shape[0] * step_ms
        ok = verify(store, ds, t0_ms, step_ms, t0_ms, end)
    finally:
        store.close()
    n = r["samples"]
    out: dict[str, Any] = {
        "samples": n,
        "ingest_samples_per_s": round(n / r["wall_s"]),
        "ingest_cpu_s_per_million": round(r["cpu_s"] / n * 1e6, 3),
        "final_cut_s": round(cut_s, 3),
        "compact_s": round(compact_s, 3),
        "bytes_per_sample_chunks": round(chunk / n, 3),
        "bytes_per_sample_file": round(path.stat().st_size / n, 3),
        "bytes_per_sample_file_pages_in_use": round(live_page_bytes(path) / n, 3),
        "select_returns_what_was_appended": ok,
    }
    kinds = bytes_by_kind(path, ds)
    demo = [v for k, v in kinds.items() if k != "nab"]
    kinds["demo"] = (sum(v[0] for v in demo), sum(v[1] for v in demo))
    for kind, (k_n, k_bytes) in sorted(kinds.items()):
        out[f"bytes_per_sample_chunks_{kind}"] = round(k_bytes / k_n, 3)
    return out


def write_openmetrics(path: Path, ds: Dataset, t0_ms: int, step_ms: int, rows: range) -> None:
    prefix = prefixes(ds.labels)
    with path.open("w") as f:
        for i in rows:
            cols, vals = present(ds.values[i])
            ts = f" {(t0_ms + i * step_ms) / 1000:.3f}\n"
            f.write("".join([f"{prefix[j]} {v!r}{ts}" for j, v in zip(cols, vals, strict=True)]))
        f.write("# EOF\n")


def promtool_blocks(src: Path, out: Path) -> float:
    """Run promtool on one OpenMetrics file; return its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(src), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"promtool failed: {done.stdout}{done.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    src.unlink()
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def block_stats(data: Path) -> tuple[int, int, int]:
    """(samples, chunk bytes, block bytes) of every block under ``data``."""
    samples = chunk = total = 0
    for meta in data.glob("*/meta.json"):
        samples += json.loads(meta.read_text())["stats"]["numSamples"]
        chunk += dir_bytes(meta.parent / "chunks")
        total += dir_bytes(meta.parent)
    return samples, chunk, total


def bench_promtool(tmp: Path, t0_ms: int, subsets: dict[str, Dataset]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    all_samples = all_chunk = all_total = 0
    cpu = 0.0
    for name, sub in subsets.items():
        src, data = tmp / f"{name}.om", tmp / f"promtool-{name}"
        write_openmetrics(src, sub, t0_ms, STEP_S * 1000, range(sub.values.shape[0]))
        cpu += promtool_blocks(src, data)
        samples, chunk, total = block_stats(data)
        if samples != sub.samples:
            raise RuntimeError(f"promtool stored {samples} samples of {sub.samples}")
        out[f"prometheus_bytes_per_sample_chunks_{name}"] = round(chunk / samples, 3)
        all_samples += samples
        all_chunk += chunk
        all_total += total
        shutil.rmtree(data)
    out["prometheus_bytes_per_sample_chunks"] = round(all_chunk / all_samples, 3)
    out["prometheus_bytes_per_sample_block"] = round(all_total / all_samples, 3)
    out["promtool_cpu_s_per_million"] = round(cpu / all_samples * 1e6, 3)
    return out


# -- select --------------------------------------------------------------------------


def select_set(ds: Dataset, steps: int, shards: int, per_shard: int) -> Dataset:
    """``shards`` x ``per_shard`` series with the demo's label sets and values, plus
    ``job``, ``shard`` and a ``series`` number (which keeps label sets distinct once
    PromQL drops ``__name__``)."""
    demo = [j for j, k in enumerate(ds.kinds) if k != "nab"]
    labels: list[Labels] = []
    cols: list[int] = []
    for shard in range(shards):
        for i in range(per_shard):
            j = demo[(shard * per_shard + i) % len(demo)]
            extra = (("job", "select"), ("series", str(len(labels))), ("shard", str(shard)))
            labels.append(tuple(sorted(ds.labels[j] + extra)))
            cols.append(j)
    values = np.nan_to_num(ds.values[:steps][:, cols], nan=0.0)
    return Dataset(labels, ["select"] * len(labels), values)


def median_ms(fn: Any, repeats: int = 3) -> tuple[float, Any]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return round(float(np.median(times)) * 1000, 2), result


def bench_select(tmp: Path, procs: Procs, sel: Dataset, step_ms: int) -> dict[str, Any]:
    steps = sel.values.shape[0]
    end_ms = int(time.time() // 60 * 60 * 1000)
    t0_ms = end_ms - (steps - 1) * step_ms
    out: dict[str, Any] = {"select_series": len(sel.labels), "select_interval_s": step_ms // 1000}
    store = Store(tmp / "select.db", retention_seconds=None)
    try:
        # History older than 2 h straight into chunks of up to 1440 samples (what
        # compact() makes of it), the last 2 h appended scrape by scrape.
        old = steps - 1 - COMPACT_AGE_MS // step_ms
        timestamps = t0_ms + np.arange(old, dtype=np.int64) * step_ms
        columns = np.ascontiguousarray(sel.values[:old].T)
        t = time.perf_counter()
        for labels, column in zip(sel.labels, columns, strict=True):
            store.append_series(labels, timestamps, column)
        out["select_set_backfill_s"] = round(time.perf_counter() - t, 3)
        recent = Dataset(sel.labels, sel.kinds, sel.values[old:])
        r = ingest(store, recent, t0_ms + old * step_ms, step_ms)
        out["select_set_ingest_samples_per_s"] = round(r["samples"] / r["wall_s"])
        store.wait_for_cut()  # a head cut still running would compete with the selects
        t = time.perf_counter()
        store.compact()
        out["select_set_compact_s"] = round(time.perf_counter() - t, 3)
        queries = {
            "1k": [Matcher("job", "=", "select"), Matcher("shard", "=", "3")],
            "10k": [Matcher("job", "=", "select")],
        }
        for qname, matchers in queries.items():
            for rname, span_ms in (("1h", 3600_000), ("24h", 86400_000)):
                ms, series = median_ms(
                    lambda m=matchers, s=span_ms: store.select(m, end_ms - s, end_ms)
                )
                n = sum(s.values.size for s in series)
                out[f"select_{qname}_{rname}_ms"] = ms
                out[f"select_{qname}_{rname}_samples"] = n
                log(f"  inferwatch select {qname:>3} series {rname:>3}: {ms:8.1f} ms ({n} samples)")
    finally:
        store.close()
    # Prometheus: backfill one OpenMetrics file per 2 h block window, then query.
    data = tmp / "promsel-data"
    data.mkdir()
    first = t0_ms // BLOCK_MS
    for window in range(first, (end_ms // BLOCK_MS) + 1):
        lo = max(0, math.ceil((window * BLOCK_MS - t0_ms) / step_ms))
        hi = min(steps, math.ceil(((window + 1) * BLOCK_MS - t0_ms) / step_ms))
        if lo < hi:
            src = tmp / "sel.om"
            write_openmetrics(src, sel, t0_ms, step_ms, range(lo, hi))
            promtool_blocks(src, data)
    proc, url = start_prometheus(procs, tmp, "promsel", "scrape_configs: []\n")
    try:
        for qname, selector in (("1k", '{job="select",shard="3"}'), ("10k", '{job="select"}')):
            for rname in ("1h", "24h"):
                query = {"query": f"count_over_time({selector}[{rname}])", "time": end_ms / 1000}

                def run(q: dict[str, Any] = query) -> Any:
                    resp = httpx.get(f"{url}/api/v1/query", params=q, timeout=120)
                    resp.raise_for_status()
                    return resp.json()["data"]["result"]

                ms, result = median_ms(run)
                n = int(sum(float(x["value"][1]) for x in result))
                out[f"prometheus_select_{qname}_{rname}_ms"] = ms
                out[f"prometheus_select_{qname}_{rname}_samples"] = n
                log(f"  prometheus select {qname:>3} series {rname:>3}: {ms:8.1f} ms ({n} samples)")
    finally:
        procs.stop(proc)
    out["select_same_samples_as_prometheus"] = all(
        out[f"select_{q}_{r}_samples"] == out[f"prometheus_select_{q}_{r}_samples"]
        for q in ("1k", "10k")
        for r in ("1h", "24h")
    )
    return out


# -- live scrape and memory -------------------------------------------------------------


def bench_live(
    tmp: Path, procs: Procs, port: int, replicas: int, warm_s: float, window_s: float
) -> dict[str, Any]:
    jobs = "scrape_configs:\n" + "".join(
        f"  - job_name: r{r}\n    params: {{r: ['{r}']}}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        for r in range(replicas)
    )
    proc, url = start_prometheus(procs, tmp, "promlive", jobs)
    try:
        ps = psutil.Process(proc.pid)
        time.sleep(warm_s)
        m0, c0, w0 = prom_metrics(url), sum(ps.cpu_times()[:2]), time.monotonic()
        rss_max = 0
        while time.monotonic() - w0 < window_s:
            time.sleep(1.0)
            rss_max = max(rss_max, ps.memory_info().rss)
        m1, c1, w1 = prom_metrics(url), sum(ps.cpu_times()[:2]), time.monotonic()
        rss = ps.memory_info().rss
    finally:
        procs.stop(proc)
    appended = m1["prometheus_tsdb_head_samples_appended_total"]
    appended -= m0["prometheus_tsdb_head_samples_appended_total"]
    return {
        "prometheus_scrape_jobs": replicas,
        "prometheus_head_series": int(m1["prometheus_tsdb_head_series"]),
        "prometheus_samples_per_s": round(appended / (w1 - w0)),
        "prometheus_cpu_s_per_million": round((c1 - c0) / appended * 1e6, 3),
        "prometheus_cpu_cores": round((c1 - c0) / (w1 - w0), 3),
        "prometheus_rss_bytes": rss,
        "prometheus_rss_bytes_max": max(rss_max, rss),
        "prometheus_go_heap_inuse_bytes": int(m1.get("go_memstats_heap_inuse_bytes", 0)),
    }


def bench_scrape_loop(tmp: Path, port: int, replicas: int, seconds: float) -> dict[str, Any]:
    """Our end-to-end path on the same target, as the scrape manager runs it.

    Each replica is a :class:`Target` of its own job: ``fetch``, then
    ``parse_exposition`` with the target's series cache, then ``store_scrape`` (target
    labels from the target's map of final label sets, staleness, the synthetic series,
    one append). One untimed pass over the replicas first creates their series, as
    Prometheus's warm-up does; then scrapes round-robin, as fast as they go, for
    ``seconds``. The last body of each replica is then parsed again without a cache.
    """
    store = Store(tmp / "scrape.db", retention_seconds=None)
    cpu = {"fetch": 0.0, "parse": 0.0, "store": 0.0}
    n = 0
    last_bodies: dict[int, tuple[bytes, str | None]] = {}
    address = f"127.0.0.1:{port}"
    targets: dict[int, Target] = {}
    try:
        with httpx.Client() as client:
            k = 0
            start = math.inf
            while time.monotonic() - start < seconds:
                if k == replicas:
                    cpu = dict.fromkeys(cpu, 0.0)
                    n = 0
                    start = time.monotonic()
                r = replicas + k % replicas  # replicas of their own, fresh step counters
                k += 1
                target = targets.get(r)
                if target is None:
                    job = f"r{r - replicas}"
                    config = ScrapeConfig(job_name=job, scrape_timeout=30.0)
                    url = f"http://{address}/metrics?r={r}"
                    labels = {"job": job, "instance": address}
                    target = targets[r] = Target(config, url=url, labels=labels)
                c0 = time.process_time()
                body, content_type = fetch(target, client)
                c1 = time.process_time()
                parsed = parse_exposition(body, content_type, cache=target.parse_cache)
                c2 = time.process_time()
                result = store_scrape(
                    target, store, parsed, "", int(time.time() * 1000), time.perf_counter()
                )
                c3 = time.process_time()
                if result.error:
                    raise RuntimeError(f"scrape of replica {r} failed: {result.error}")
                n += result.samples_post_relabel
                last_bodies[r] = (body, content_type)
                for key, t0, t1 in (("fetch", c0, c1), ("parse", c1, c2), ("store", c2, c3)):
                    cpu[key] += t1 - t0
    finally:
        store.close()
    uncached_cpu, uncached_n = math.inf, 0
    for _ in range(3):  # the fastest of three passes over them
        cpu_pass, uncached_n = 0.0, 0
        for body, content_type in last_bodies.values():
            c0 = time.process_time()
            uncached_n += len(parse_exposition(body, content_type))
            cpu_pass += time.process_time() - c0
        uncached_cpu = min(uncached_cpu, cpu_pass)
    out: dict[str, Any] = {"inferwatch_scrape_samples": n}
    for key, value in cpu.items():
        out[f"inferwatch_scrape_{key}_cpu_s_per_million"] = round(value / n * 1e6, 3)
    out["inferwatch_scrape_total_cpu_s_per_million"] = round(sum(cpu.values()) / n * 1e6, 3)
    out["inferwatch_scrape_parse_uncached_cpu_s_per_million"] = round(
        uncached_cpu / uncached_n * 1e6, 3
    )
    return out


def peak_rss() -> int:
    """This process's peak RSS: ``VmHWM`` (``ru_maxrss`` survives ``exec`` on Linux, so in
    a child it can be the parent's)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_child(tmp: Path) -> None:
    """Child mode: append 100k series every 15 s in a clean process, report its RSS."""
    proc = psutil.Process()
    baseline = proc.memory_info().rss
    spec = json.loads((tmp / "memory.json").read_text())
    rows = np.load(tmp / "rows.npy", mmap_mode="r")
    base = [tuple((k, v) for k, v in lab) for lab in spec["labels"]]
    instance = ("instance", spec["instance"])
    replicas: list[list[Labels]] = [
        [tuple(sorted((*lab, instance, ("job", f"r{r}")))) for lab in base]
        for r in range(spec["replicas"])
    ]
    after_labels = proc.memory_info().rss
    store = Store(tmp / "memory.db", retention_seconds=None)
    t0 = int(time.time() * 1000) - spec["scrapes"] * MEMORY_INTERVAL_MS
    largest_head = 0
    rss_at: dict[str, int] = {}
    for i in range(spec["scrapes"]):
        cols, vals = present(np.asarray(rows[i]))
        samples = [(labs[j], v) for labs in replicas for j, v in zip(cols, vals, strict=True)]
        t = time.perf_counter()
        store.append(t0 + i * MEMORY_INTERVAL_MS, samples)
        append_s = time.perf_counter() - t
        del samples
        rss = proc.memory_info().rss
        if i == 19:
            rss_at["after_20_scrapes"] = rss
        if i < spec["scrapes"] - 1:  # the last append cuts the head
            largest_head = max(largest_head, rss)
    t = time.perf_counter()
    store.wait_for_cut()  # the peak counts the whole cut
    cut_s = time.perf_counter() - t
    heads = {f.name: f.samples.get(()) for f in store.collect()}
    result = {
        "baseline_rss": baseline,
        "rss_after_labels": after_labels,
        "last_append_s": append_s,
        "cut_s": cut_s,
        "rss_largest_head": largest_head,
        "rss_end": proc.memory_info().rss,
        "peak_rss": peak_rss(),
        "series": heads["inferwatch_tsdb_series"],
        "head_samples_end": heads["inferwatch_tsdb_head_samples"],
        **rss_at,
    }
    store.close()
    print(json.dumps(result))


def bench_memory(tmp: Path, ds: Dataset, replicas: int, port: int, scrapes: int) -> dict[str, Any]:
    spec = {
        "labels": ds.labels,
        "replicas": replicas,
        "instance": f"127.0.0.1:{port}",
        "scrapes": scrapes,
    }
    (tmp / "memory.json").write_text(json.dumps(spec))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(tmp)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed: {done.stderr[-3000:]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "memory_scrapes": scrapes,
        "memory_series": int(r["series"]),
        "rss_bytes_baseline_interpreter": r["baseline_rss"],
        "rss_bytes_after_labels": r["rss_after_labels"],
        "rss_bytes_after_20_scrapes": r.get("after_20_scrapes"),
        "rss_bytes_largest_head": r["rss_largest_head"],
        "rss_bytes_end": r["rss_end"],
        "rss_bytes_peak": r["peak_rss"],
        "memory_last_append_s": round(r["last_append_s"], 3),
        "memory_head_cut_s": round(r["cut_s"], 3),
        "memory_head_samples_after_cut": int(r["head_samples_end"]),
    }


# -- main ------------------------------------------------------------------------------


@contextlib.contextmanager
def workspace() -> Iterator[tuple[Path, Procs]]:
    procs = Procs()
    tmp = Path(tempfile.mkdtemp(prefix="inferwatch-bench-tsdb-"))
    try:
        yield tmp, procs
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(Path(args.memory_child))
        return
    quick = args.quick
    steps = 360 if quick else 1440  # 30 min or 2 h at 5 s
    select_step_ms = 300_000 if quick else 60_000
    live_warm, live_window, loop_s = (6.0, 8.0, 5.0) if quick else (15.0, 45.0, 20.0)
    # Full: one whole head span at 15 s, the last append cutting it (the largest head).
    mem_scrapes = 41 if quick else 121

    results: dict[str, Any] = {"quick": quick, "scrape_interval_s": STEP_S}
    with workspace() as (tmp, procs):
        t = time.perf_counter()
        demo = simulate(models=8, steps=steps, seed=1)
        nab = nab_series(steps)
        ds = combine(demo, nab)
        log(
            f"data: {len(demo.labels)} demo series ({demo.samples} samples), {len(nab.labels)} "
            f"NAB series ({nab.samples} samples), {steps} scrapes, {time.perf_counter() - t:.1f} s"
        )
        results.update(series_demo=len(demo.labels), series_nab=len(nab.labels))
        t0_ms = (int(time.time() * 1000) // BLOCK_MS - 2) * BLOCK_MS

        r = bench_ingest(tmp, ds, t0_ms)
        results.update(r)
        log(
            f"inferwatch ingest: {r['ingest_samples_per_s']:,} samples/s, "
            f"{r['ingest_cpu_s_per_million']} CPU s per million; bytes/sample: chunks "
            f"{r['bytes_per_sample_chunks']}, file {r['bytes_per_sample_file']} "
            f"(pages in use {r['bytes_per_sample_file_pages_in_use']})"
        )
        r = bench_promtool(tmp, t0_ms, {"demo": demo, "nab": nab})
        results.update(r)
        log(
            f"prometheus (promtool block): bytes/sample chunks "
            f"{r['prometheus_bytes_per_sample_chunks']}, "
            f"block {r['prometheus_bytes_per_sample_block']}"
        )

        sel_steps = 86400_000 // select_step_ms
        sel = select_set(demo, sel_steps, shards=10, per_shard=1000)
        results.update(bench_select(tmp, procs, sel, select_step_ms))

        rows = demo.values[-max(mem_scrapes, int(live_warm + live_window) + 10) :]
        active = int(np.count_nonzero(~np.isnan(rows[0])))
        replicas = math.ceil(MEMORY_SERIES / active)
        server, port = start_target(procs, tmp, demo, rows)
        r = bench_live(tmp, procs, port, replicas, live_warm, live_window)
        results.update(r)
        log(
            f"prometheus live: {r['prometheus_head_series']} series, "
            f"{r['prometheus_samples_per_s']:,} samples/s, {r['prometheus_cpu_s_per_million']} "
            f"CPU s per million, RSS {r['prometheus_rss_bytes'] / 2**20:.0f} MiB"
        )
        r = bench_scrape_loop(tmp, port, replicas, loop_s)
        results.update(r)
        log(
            f"inferwatch scrape+parse+append: {r['inferwatch_scrape_total_cpu_s_per_million']} "
            f"CPU s per million (parse {r['inferwatch_scrape_parse_cpu_s_per_million']}, "
            f"without a cache {r['inferwatch_scrape_parse_uncached_cpu_s_per_million']})"
        )
        procs.stop(server)
        r = bench_memory(tmp, demo, replicas, port, mem_scrapes)
        results.update(r)
        log(
            f"inferwatch memory: {r['memory_series']} series, RSS peak "
            f"{r['rss_bytes_peak'] / 2**20:.0f} MiB, end {r['rss_bytes_end'] / 2**20:.0f} MiB"
        )

    cpu_ratio = results["ingest_cpu_s_per_million"] / results["prometheus_cpu_s_per_million"]
    results["cpu_per_sample_ratio_vs_prometheus"] = round(cpu_ratio, 3)
    e2e_ratio = (
        results["inferwatch_scrape_total_cpu_s_per_million"]
        / results["prometheus_cpu_s_per_million"]
    )
    results["end_to_end_cpu_per_sample_ratio_vs_prometheus"] = round(e2e_ratio, 3)
    rss_ratio = results["rss_bytes_peak"] / results["prometheus_rss_bytes_max"]
    results["rss_ratio_vs_prometheus"] = round(rss_ratio, 3)
    head_ratio = results["rss_bytes_largest_head"] / results["prometheus_rss_bytes_max"]
    results["rss_largest_head_ratio_vs_prometheus"] = round(head_ratio, 3)
    goals = {
        "ingest_samples_per_s": (1_000_000, results["ingest_samples_per_s"] >= 1_000_000),
        "bytes_per_sample_chunks": (2.0, results["bytes_per_sample_chunks"] <= 2.0),
        "cpu_per_sample_ratio_vs_prometheus": (2.0, cpu_ratio <= 2.0),
        "end_to_end_cpu_per_sample_ratio_vs_prometheus": (2.0, e2e_ratio <= 2.0),
        "rss_ratio_vs_prometheus": (1.0, rss_ratio <= 1.0),
    }
    results["goals"] = {k: {"goal": g, "met": met} for k, (g, met) in goals.items()}
    for k, (g, met) in goals.items():
        log(f"goal {k}: {results[k]} vs {g}: {'met' if met else 'NOT met'}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
