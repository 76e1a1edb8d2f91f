"""PromQL query latency: inferwatch's engine against a real Prometheus 2.42, same data.

Data: a fleet of model servers scraped every 15 s for 6 h 10 min, ending now: per
instance, 5 models x (``inferwatch_requests_total`` by 4 codes, 12 ``le`` buckets of
``inferwatch_request_duration_seconds`` with ``_sum`` and ``_count``, an in-flight and a
batch-size gauge) = 100 series; 10 instances make the 1k set, 100 the 10k set. Counters
are Poisson arrivals on top of a day's history, one instance in ten restarts (a reset)
once. Every sample lies at .437 s, off the query grid.

- **inferwatch**: a :class:`Store` in the state production leaves it: everything older
  than 2 h written with ``append_series``, the last 2 h appended scrape by scrape (its
  head cut every 30 minutes), then ``compact()``. Timed in process
  (``Engine.range_query`` / ``instant_query``; nothing serialised) and, served by
  ``inferwatch.server.api.PrometheusAPI`` under uvicorn in a child process, over HTTP
  like Prometheus, with the evaluation time it reports (``stats=all``).
- **Prometheus**: the same samples as OpenMetrics, one file per 2 h block window, made
  into blocks by ``promtool tsdb create-blocks-from openmetrics``, served by
  ``/usr/bin/prometheus`` with ``--storage.tsdb.max-block-duration=2h`` (no compaction
  starts during the run), queried over HTTP on loopback; its own ``evalTotalTime``
  (``stats=all``) is reported next to the HTTP latency.

Both get the same queries, a dashboard's and an alert's: requests by model, p99 latency
from the histogram, the 5xx ratio, the top 5 instances, and an alert on the per-model
error ratio. Each runs as an instant query at the end, and as range queries over the
last 1 h and 6 h at a 15 s step. The three sides take turns (the order rotating each
repetition) after one untimed run each, whose results are compared (same series, values
within 1e-6 relative); figures are medians.

The asymmetry to keep in mind: in-process figures skip HTTP and JSON, which
Prometheus's HTTP figures include; compare HTTP with HTTP, and evaluation time with
evaluation time. On a shared two-core machine the figures are noisy; the ratios, taken
from the same interleaved run, are steadier than the absolute numbers.

Usage: python bench/query.py [--quick]   (quick: 1k series, instant and 1 h only, 5 reps)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from inferwatch.promql import Engine, QueryResult, RangeSeries, Sample, Scalar
from inferwatch.tsdb.labels import Labels, make_labels
from inferwatch.tsdb.store import Store
from procs import free_port, stop_process, wait_ready

INTERVAL_MS = 15_000
SPAN_MS = (6 * 3600 + 600) * 1000  # 6 h of queries plus 10 min of history for [5m]
RECENT_MS = 2 * 3600 * 1000  # appended scrape by scrape, as in production
BLOCK_MS = 2 * 3600 * 1000
OFFSET_MS = 437  # sample times end in .437 s; query times in .000
MODELS = (  # name, requests/s per instance, median latency (s)
    ("resnet50", 12.0, 0.03),
    ("bert-base", 7.0, 0.08),
    ("llama-7b", 0.8, 1.2),
    ("whisper", 2.0, 0.4),
    ("t5-small", 5.0, 0.05),
)
CODES = ("200", "400", "500", "503")
CODE_SHARES = (0.95, 0.03, 0.015, 0.005)
LE = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf")
REQ = "inferwatch_requests_total"
BUCKET = "inferwatch_request_duration_seconds_bucket"
QUERIES = {
    "requests_by_model": f"sum by (model) (rate({REQ}[5m]))",
    "p99_latency": f"histogram_quantile(0.99, sum by (le) (rate({BUCKET}[5m])))",
    "error_ratio": f'sum(rate({REQ}{{code=~"5.."}}[5m])) / sum(rate({REQ}[5m]))',
    "top5_instances": f"topk(5, sum by (instance) (rate({REQ}[5m])))",
    "error_ratio_alert": (
        # Not 0.02: some ratios are exactly that, and the last bits decide which side.
        f'sum by (model) (rate({REQ}{{code=~"5.."}}[5m])) / sum by (model) (rate({REQ}[5m]))'
        " > 0.0213"
    ),
}
SIDES = ("ours_inprocess", "ours_http", "prometheus_http")
_START = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - _START:6.1f} s] {msg}", file=sys.stderr, flush=True)


# -- data -----------------------------------------------------------------------------------


def simulate(instances: int, steps: int, seed: int) -> tuple[list[Labels], npt.NDArray[Any]]:
    """Label sets and values (``values[i, j]``: series ``j`` at scrape ``i``)."""
    rng = np.random.default_rng(seed)
    labels: list[Labels] = []
    columns: list[npt.NDArray[np.float64]] = []
    scrape = np.arange(steps)
    for i in range(instances):
        base = {"instance": f"10.1.{i // 250}.{i % 250}:8000", "job": "inference"}
        restart = int(rng.integers(1, steps)) if i % 10 == 3 else steps
        load = 1 + 0.3 * np.sin(2 * np.pi * scrape / 960 + i)

        def counter(increments: npt.NDArray[Any], before: Any, r: int = restart) -> Any:
            total = np.cumsum(increments, axis=0, dtype=np.float64) + before
            total[r:] -= total[r - 1]
            return total

        for model, rate, median in MODELS:
            series = {**base, "model": model}
            n = rng.poisson(rate * 15 * load)
            history = rng.poisson(rate * 86_400)
            by_code = counter(
                rng.multinomial(n, CODE_SHARES), np.floor(history * np.array(CODE_SHARES))
            )
            for j, code in enumerate(CODES):
                labels.append(make_labels({"__name__": REQ, **series, "code": code}))
                columns.append(by_code[:, j])
            cdf = [0.5 * (1 + math.erf(math.log(float(b) / median) / 0.7071)) for b in LE[:-1]]
            shares = np.diff([0.0, *cdf, 1.0])
            buckets = counter(
                np.cumsum(rng.multinomial(n, shares), axis=1),
                np.cumsum(rng.multinomial(history, shares)),
            )
            for j, le in enumerate(LE):
                labels.append(make_labels({"__name__": BUCKET, **series, "le": le}))
                columns.append(buckets[:, j])
            mean = median * math.exp(0.125)
            sums = counter(n * mean * rng.lognormal(0, 0.1, steps), history * mean)
            for name, column in (
                ("inferwatch_request_duration_seconds_sum", sums),
                ("inferwatch_request_duration_seconds_count", buckets[:, -1]),
                ("inferwatch_inferences_in_flight", rng.poisson(rate * median * 2 * load)),
                ("inferwatch_inference_batch_size", rng.poisson(4, steps) + 1),
            ):
                labels.append(make_labels({"__name__": name, **series}))
                columns.append(np.asarray(column, dtype=np.float64))
    return labels, np.column_stack(columns)


def build_store(path: Path, labels: list[Labels], values: Any, times: Any) -> dict[str, float]:
    """The store as production leaves it (module docstring); seconds per phase."""
    old = int(np.searchsorted(times, times[-1] - RECENT_MS))
    out: dict[str, float] = {}
    with Store(path, retention_seconds=None, fsync="never") as store:
        t = time.perf_counter()
        for j, series in enumerate(labels):
            store.append_series(series, times[:old], np.ascontiguousarray(values[:old, j]))
        out["backfill_s"] = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(old, len(times)):
            row = values[i].tolist()
            store.append(int(times[i]), list(zip(labels, row, strict=True)))
        store.wait_for_cut()
        out["append_s"] = time.perf_counter() - t
        t = time.perf_counter()
        store.compact()
        out["compact_s"] = time.perf_counter() - t
    return out


def prometheus_blocks(
    tmp: Path, data: Path, labels: list[Labels], values: Any, times: Any
) -> float:
    """Write one OpenMetrics file per 2 h window and turn it into a block; seconds taken."""
    heads = [
        "{}{{{}}} ".format(
            dict(series)["__name__"],
            ",".join(f'{k}="{v}"' for k, v in series if k != "__name__"),
        )
        for series in labels
    ]
    windows = times // BLOCK_MS
    t = time.perf_counter()
    for window in np.unique(windows):
        rows = np.flatnonzero(windows == window)
        stamps = [f" {ms // 1000}.{ms % 1000:03d}\n" for ms in times[rows].tolist()]
        src = tmp / "window.om"
        with src.open("w") as out:
            for j, head in enumerate(heads):
                column = values[rows, j].tolist()
                out.write("".join([f"{head}{v!r}{s}" for v, s in zip(column, stamps, strict=True)]))
            out.write("# EOF\n")
        cmd = ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(src), str(data)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"promtool failed: {done.stdout}{done.stderr}")
        src.unlink()
    return time.perf_counter() - t


# -- servers ----------------------------------------------------------------------------------


@contextlib.contextmanager
def prometheus(tmp: Path, data: Path) -> Iterator[str]:
    config = tmp / "prometheus.yml"
    config.write_text("global:\n  evaluation_interval: 1m\n")
    port = free_port()
    log_path = tmp / "prometheus.log"
    cmd = [
        "/usr/bin/prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        "--storage.tsdb.retention.time=30d",
        "--storage.tsdb.max-block-duration=2h",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/-/ready", proc, log_path)
        yield url
    finally:
        stop_process(proc)


@contextlib.contextmanager
def inferwatch_server(tmp: Path, db: Path) -> Iterator[str]:
    """``PrometheusAPI`` over ``db`` under uvicorn in a child process."""
    port = free_port()
    log_path = tmp / "inferwatch-api.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", str(db), str(port)]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/api/v1/status/buildinfo", proc, log_path)
        yield url
    finally:
        stop_process(proc)


def serve(db: str, port: int) -> None:
    """Child mode: serve ``/api/v1`` over the store at ``db`` until terminated."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from inferwatch.server.api import PrometheusAPI

    store = Store(db, retention_seconds=None, fsync="never")
    api = PrometheusAPI(store, engine=Engine(store, timeout_s=600))
    app = Starlette(routes=[Mount("/api/v1", app=api)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- measuring -----------------------------------------------------------------------------


def values_by_time(rows: Rows) -> Rows:
    """The sorted values at each time, as one series per time."""
    found: dict[int, list[float]] = {}
    for ts, vs in rows.values():
        for t, v in zip(ts, vs, strict=True):
            found.setdefault(t, []).append(v)
    return {(("t", str(t)),): (list(range(len(vs))), sorted(vs)) for t, vs in found.items()}


Rows = dict[Labels, tuple[list[int], list[float]]]


def rows_of_result(result: QueryResult) -> Rows:
    value = result.value
    if isinstance(value, Scalar):
        return {(): ([value.t], [value.v])}
    out: Rows = {}
    for item in value if isinstance(value, list) else []:
        if isinstance(item, Sample):
            out[tuple(item.labels)] = ([item.t], [item.v])
        elif isinstance(item, RangeSeries):
            out[tuple(item.labels)] = (item.timestamps.tolist(), item.values.tolist())
    return out


def rows_of_json(data: dict[str, Any]) -> Rows:
    out: Rows = {}
    for r in data["result"]:
        labels = tuple(sorted(r["metric"].items()))
        points = r["values"] if "values" in r else [r["value"]]
        out[labels] = ([round(t * 1000) for t, _ in points], [float(v) for _, v in points])
    return out


def difference(ours: Rows, theirs: Rows, ties: bool = False) -> str:
    """The first difference between two results ("" if none): the same series, timestamps,
    and values within 1e-6 relative. ``ties``: the query is a ``topk``, which picks among
    equal values as it likes; the same values at each time will do."""
    if ties:
        ours, theirs = values_by_time(ours), values_by_time(theirs)
    if ours.keys() != theirs.keys():
        only_ours, only_theirs = ours.keys() - theirs.keys(), theirs.keys() - ours.keys()
        return f"series only in ours {only_ours}, only in Prometheus's {only_theirs}"
    for labels, (ta, va) in ours.items():
        tb, vb = theirs[labels]
        if ta != tb:
            extra, missing = sorted(set(ta) - set(tb))[:3], sorted(set(tb) - set(ta))[:3]
            return f"{labels}: points only in ours at {extra}, only in Prometheus's at {missing}"
        close = np.isclose(va, vb, rtol=1e-6, atol=1e-9, equal_nan=True)
        if not close.all():
            i = int(np.flatnonzero(~close)[0])
            return f"{labels} at {ta[i]}: ours {va[i]!r}, Prometheus {vb[i]!r}"
    return ""


class Sides:
    """Runs one query on each side; returns (seconds, server eval seconds, rows)."""

    def __init__(self, engine: Engine, ours_url: str, prom_url: str) -> None:
        self.engine = engine
        self.ours = httpx.Client(base_url=ours_url, timeout=900)
        self.prom = httpx.Client(base_url=prom_url, timeout=900)

    def close(self) -> None:
        self.ours.close()
        self.prom.close()

    def run(self, side: str, expr: str, window: tuple[int, int, int]) -> tuple[float, float, Rows]:
        start, end, step = window
        if side == "ours_inprocess":
            t = time.perf_counter()
            if start == end:
                result = self.engine.instant_query(expr, end)
            else:
                result = self.engine.range_query(expr, start, end, step)
            took = time.perf_counter() - t
            return took, took, rows_of_result(result)
        client = self.ours if side == "ours_http" else self.prom
        params = {"query": expr, "stats": "all"}
        if start == end:
            path = "/api/v1/query"
            params["time"] = f"{end / 1000:.3f}"
        else:
            path = "/api/v1/query_range"
            params.update(
                start=f"{start / 1000:.3f}", end=f"{end / 1000:.3f}", step=f"{step / 1000:g}"
            )
        t = time.perf_counter()
        response = client.post(path, data=params)
        took = time.perf_counter() - t
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"{side} failed on {expr!r}: {body}")
        evaluated = float(body["data"]["stats"]["timings"]["evalTotalTime"])
        return took, evaluated, rows_of_json(body["data"])


def measure(sides: Sides, expr: str, window: tuple[int, int, int], reps: int) -> dict[str, Any]:
    """One untimed run per side (results compared), then ``reps`` rotations; medians."""
    first = {side: sides.run(side, expr, window) for side in SIDES}
    rows = {side: r[2] for side, r in first.items()}
    out: dict[str, Any] = {"series": len(rows["prometheus_http"])}
    for side in ("ours_inprocess", "ours_http"):
        diff = difference(rows[side], rows["prometheus_http"], expr.startswith("topk"))
        out[f"agree_{side.removeprefix('ours_')}"] = not diff
        if diff:
            log(f"  {side} differs from Prometheus on {expr!r}: {diff}")
    slow = max(r[0] for r in first.values())
    reps = max(2, min(reps, int(120 / max(slow, 1e-3) / len(SIDES))))
    wall: dict[str, list[float]] = {side: [] for side in SIDES}
    evaluated: dict[str, list[float]] = {side: [] for side in SIDES}
    for rep in range(reps):
        for k in range(len(SIDES)):
            side = SIDES[(rep + k) % len(SIDES)]
            took, ev, _ = sides.run(side, expr, window)
            wall[side].append(took)
            evaluated[side].append(ev)
    out["reps"] = reps
    for side in SIDES:
        out[f"{side}_ms"] = round(float(np.median(wall[side])) * 1000, 2)
    out["ours_eval_ms"] = round(float(np.median(evaluated["ours_http"])) * 1000, 2)
    out["prometheus_eval_ms"] = round(float(np.median(evaluated["prometheus_http"])) * 1000, 2)
    prom = out["prometheus_http_ms"]
    out["ratio_http"] = round(out["ours_http_ms"] / prom, 2)
    out["ratio_inprocess_vs_prometheus_http"] = round(out["ours_inprocess_ms"] / prom, 2)
    out["ratio_eval"] = round(out["ours_eval_ms"] / max(out["prometheus_eval_ms"], 1e-3), 2)
    return out


def bench_size(tmp: Path, name: str, instances: int, spans: list[str], reps: int) -> dict[str, Any]:
    end_ms = (int(time.time() * 1000) // INTERVAL_MS - 1) * INTERVAL_MS
    steps = SPAN_MS // INTERVAL_MS + 1
    times = end_ms - SPAN_MS + np.arange(steps, dtype=np.int64) * INTERVAL_MS + OFFSET_MS
    times = times[times <= end_ms]
    t = time.perf_counter()
    labels, values = simulate(instances, len(times), seed=instances)
    samples = values.size
    made = time.perf_counter() - t
    log(f"{name}: {len(labels)} series, {samples:,} samples, made in {made:.1f} s")
    out: dict[str, Any] = {"series": len(labels), "samples": samples}
    db = tmp / f"{name}.db"
    phases = build_store(db, labels, values, times)
    log(f"{name}: inferwatch store " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()))
    data = tmp / f"{name}-prometheus"
    log(f"{name}: promtool blocks in {prometheus_blocks(tmp, data, labels, values, times):.1f} s")
    del values
    windows = {"instant": (end_ms, end_ms, 0)}
    for span in spans:
        hours = int(span.rstrip("h"))
        windows[f"range_{span}"] = (end_ms - hours * 3_600_000, end_ms, INTERVAL_MS)
    with (
        Store(db, retention_seconds=None, fsync="never") as store,
        prometheus(tmp, data) as prom_url,
        inferwatch_server(tmp, db) as ours_url,
    ):
        sides = Sides(Engine(store, timeout_s=600), ours_url, prom_url)
        try:
            for qname, expr in QUERIES.items():
                for wname, window in windows.items():
                    r = measure(sides, expr, window, reps)
                    for key, value in r.items():
                        out[f"{qname}_{wname}_{key}"] = value
                    log(
                        f"{name} {qname:<18} {wname:<9} ours {r['ours_inprocess_ms']:9.1f} ms "
                        f"(http {r['ours_http_ms']:9.1f}, eval {r['ours_eval_ms']:9.1f})  "
                        f"prometheus http {r['prometheus_http_ms']:8.1f} "
                        f"(eval {r['prometheus_eval_ms']:7.1f})  x{r['ratio_http']:<6} "
                        f"agree {r['agree_inprocess'] and r['agree_http']}"
                    )
        finally:
            sides.close()
    shutil.rmtree(data, ignore_errors=True)
    db.unlink(missing_ok=True)
    return out


def table(results: dict[str, Any], sizes: list[str], windows: list[str]) -> str:
    head = (
        f"{'set':<4} {'query':<18} {'window':<9} {'ours in-proc':>12} {'ours http':>10} "
        f"{'ours eval':>10} {'prom http':>10} {'prom eval':>10} {'http x':>7} {'eval x':>7} "
        f"{'agree':>5}"
    )
    lines = [head, "-" * len(head)]
    for size in sizes:
        for qname in QUERIES:
            for wname in windows:
                k = f"{size}_{qname}_{wname}"
                lines.append(
                    f"{size:<4} {qname:<18} {wname:<9} {results[k + '_ours_inprocess_ms']:12.1f} "
                    f"{results[k + '_ours_http_ms']:10.1f} {results[k + '_ours_eval_ms']:10.1f} "
                    f"{results[k + '_prometheus_http_ms']:10.1f} "
                    f"{results[k + '_prometheus_eval_ms']:10.1f} {results[k + '_ratio_http']:7.2f} "
                    f"{results[k + '_ratio_eval']:7.2f} "
                    f"{results[k + '_agree_http'] and results[k + '_agree_inprocess']!s:>5}"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k series, instant and 1 h, 5 reps")
    parser.add_argument("--serve", nargs=2, metavar=("DB", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    if shutil.which("promtool") is None or not os.path.exists("/usr/bin/prometheus"):
        sys.exit("needs /usr/bin/prometheus and promtool (Debian: apt-get install prometheus)")
    quick = args.quick
    sizes = {"1k": 10} if quick else {"1k": 10, "10k": 100}
    spans = ["1h"] if quick else ["1h", "6h"]
    reps = 5 if quick else 9
    results: dict[str, Any] = {"quick": quick, "step_s": INTERVAL_MS // 1000}
    tmp = Path(tempfile.mkdtemp(prefix="inferwatch-bench-query-"))
    try:
        for name, instances in sizes.items():
            for key, value in bench_size(tmp, name, instances, spans, reps).items():
                results[f"{name}_{key}"] = value
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    windows = ["instant", *(f"range_{s}" for s in spans)]
    ratios = [results[f"{s}_{q}_{w}_ratio_http"] for s in sizes for q in QUERIES for w in windows]
    results["ratio_http_median"] = round(float(np.median(ratios)), 2)
    results["all_results_agree"] = all(
        results[f"{s}_{q}_{w}_{a}"]
        for s in sizes
        for q in QUERIES
        for w in windows
        for a in ("agree_http", "agree_inprocess")
    )
    print(table(results, list(sizes), windows))
    print(
        "ours in-proc: Engine in this process, no HTTP/JSON; http: client-side latency over "
        "loopback; eval: the server's own evalTotalTime (stats=all). x: ours / Prometheus."
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
