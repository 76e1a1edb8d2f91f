"""The synthetic model-serving target of ``bench/tsdb.py``, and its HTTP server.

:func:`simulate` runs simulated traffic through the real SDK (a :class:`Registry`
with one inference recorder and one HTTP recorder per model) and collects it once per
scrape step, so the series are exactly what a scrape of a model server would store:

- per model: ``inferwatch_inferences_total`` by outcome and error type, the latency
  histogram as the sketch exports it (every occupied 1.09%-wide bucket is an ``le``
  series, and new ones appear as traffic reaches them), ``_sum`` and ``_count``, the
  in-flight gauge, items; batched models add the batch-size histogram, explicit-form
  models the queue and compute histograms;
- per route: ``inferwatch_http_requests_total`` by status and the request histogram;
- process, system and GPU gauges and counters, with the value arithmetic of the
  collectors (psutil's two-decimal CPU seconds summed, percentages divided by 100,
  page-multiple memory sizes, NVML's integer percent and milliwatts).

Requests per step are Poisson around a per-model rate that drifts over the hour;
latencies are log-normal around a per-model median. :func:`nab_series` adds every
value column of ``realAWSCloudwatch`` (see ``bench/tsdb.py`` for how it is laid out).

Run as a script it serves pre-rendered bodies: ``python bench/tsdb_target.py
VALUES.npy PREFIXES.json`` prints ``PORT <n>`` and answers ``GET /metrics?r=<k>``
with step ``i`` of the data for the ``i``-th request of replica ``k`` (the last step
repeats once a replica has used them all), in the Prometheus text format.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import numpy.typing as npt

from inferwatch import Registry
from inferwatch.exposition.convert import float_to_go_string, histogram_buckets
from inferwatch.sdk.family import BucketCounts, FamilySnapshot
from inferwatch.sdk.sketch import QuantileSketch
from inferwatch.tsdb.labels import Labels, format_labels, make_labels

STEP_S = 5
NAB_DIR = Path(__file__).resolve().parents[2] / "shared/data/nab/data/realAWSCloudwatch"
_ERROR_TYPES = ("TimeoutError", "ValueError", "CUDAOutOfMemoryError")
_GPU_NAME = "NVIDIA A10G"


@dataclass
class Dataset:
    """Series (label sets and a kind each) and their values, one row per scrape step.

    ``values[i, j]`` is series ``j`` at step ``i``; NaN where the series does not
    exist yet (a histogram bucket first reached later) or any more (a NAB part ended).
    """

    labels: list[Labels]
    kinds: list[str]
    values: npt.NDArray[np.float64]

    @property
    def samples(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.values)))


class _Resources:
    """Process, system and GPU families of a simulated serving host."""

    def __init__(self, rng: np.random.Generator, gpus: int) -> None:
        self.rng = rng
        self.gpus = gpus
        self.user = 12.34
        self.system = 1.56
        self.rss_pages = 350_000
        self.gc = [0.0, 0.0, 0.0]
        self.load = np.array([1.2, 1.1, 1.0])
        self.gpu_mem = [int(x) for x in rng.integers(9_000, 15_000, gpus)]
        self.busy = 0.5

    def collect(self) -> list[FamilySnapshot]:
        rng = self.rng
        self.user = round(self.user + rng.uniform(1.0, 4.0) * self.busy, 2)
        self.system = round(self.system + rng.uniform(0.05, 0.3) * self.busy, 2)
        self.rss_pages += int(rng.integers(-200, 260))
        self.gc[0] += float(rng.poisson(40))
        self.gc[1] += float(rng.poisson(3))
        self.gc[2] += float(rng.poisson(0.1))
        self.load = np.round(self.load * 0.9 + rng.uniform(0.5, 2.5) * 0.1, 2)
        percent = round(float(np.clip(rng.normal(100 * self.busy, 8), 0, 100)), 1)
        mem_percent = round(float(rng.normal(41.5, 0.4)), 1)

        def one(name: str, kind: str, value: float, labelnames: tuple[str, ...] = ()) -> None:
            fam = FamilySnapshot(name, "", kind, labelnames)  # type: ignore[arg-type]
            fam.samples[()] = float(value)
            out.append(fam)

        out: list[FamilySnapshot] = []
        one("process_cpu_seconds_total", "counter", self.user + self.system)
        one("process_resident_memory_bytes", "gauge", self.rss_pages * 4096)
        one("process_virtual_memory_bytes", "gauge", (self.rss_pages + 2_900_000) * 4096)
        one("process_start_time_seconds", "gauge", 1700000123.45)
        one("process_threads", "gauge", 37 + int(rng.integers(0, 3)))
        one("process_open_fds", "gauge", 61 + int(rng.integers(0, 4)))
        one("process_max_fds", "gauge", 1048576)
        gc = FamilySnapshot("python_gc_collections_total", "", "counter", ("generation",))
        for gen, value in enumerate(self.gc):
            gc.samples[(str(gen),)] = value
        out.append(gc)
        one("system_cpu_utilization_ratio", "gauge", percent / 100.0)
        one("system_cpu_count", "gauge", 8)
        one("system_memory_total_bytes", "gauge", 33_324_052_480)
        available = int(rng.integers(19_000_000_000, 19_500_000_000)) // 4096 * 4096
        one("system_memory_available_bytes", "gauge", available)
        one("system_memory_used_ratio", "gauge", mem_percent / 100.0)
        load = FamilySnapshot("system_load_average", "", "gauge", ("period",))
        for period, value in zip(("1m", "5m", "15m"), self.load.tolist(), strict=True):
            load.samples[(period,)] = value
        out.append(load)
        one("system_swap_used_bytes", "gauge", 0)
        one("gpu_available", "gauge", 1)
        one("gpu_count", "gauge", self.gpus)
        names = ("gpu", "uuid", "name")
        fams = {
            n: FamilySnapshot(n, "", "gauge", names)
            for n in (
                "gpu_utilization_ratio",
                "gpu_memory_used_bytes",
                "gpu_memory_total_bytes",
                "gpu_memory_used_ratio",
                "gpu_temperature_celsius",
                "gpu_power_watts",
                "gpu_power_limit_watts",
            )
        }
        total = 24_146_608_128
        for g in range(self.gpus):
            key = (str(g), f"GPU-5f3c1a2e-0000-4000-8000-00000000000{g}", _GPU_NAME)
            self.gpu_mem[g] += int(rng.integers(-20, 21))
            used = self.gpu_mem[g] * 1024 * 1024
            util = int(np.clip(rng.normal(100 * self.busy, 10), 0, 100))
            fams["gpu_utilization_ratio"].samples[key] = util / 100.0
            fams["gpu_memory_used_bytes"].samples[key] = float(used)
            fams["gpu_memory_total_bytes"].samples[key] = float(total)
            fams["gpu_memory_used_ratio"].samples[key] = used / total
            fams["gpu_temperature_celsius"].samples[key] = float(45 + util // 5)
            milliwatts = int(60_000 + 2_400 * util + rng.integers(0, 3000))
            fams["gpu_power_watts"].samples[key] = milliwatts / 1000.0
            fams["gpu_power_limit_watts"].samples[key] = 300.0
        out.extend(fams.values())
        return out


def _advance(counter: itertools.count[int], n: int) -> None:
    if n > 0:
        next(itertools.islice(counter, n - 1, n), None)


def simulate(models: int, steps: int, seed: int = 0) -> Dataset:
    """``steps`` scrapes, ``STEP_S`` seconds apart, of a server with ``models`` models."""
    rng = np.random.default_rng(seed)
    resources = _Resources(rng, gpus=2)
    registry = Registry(collectors=[resources], include_default_registry=False, multiprocess=False)
    recs = [registry.inference_recorder(f"model-{i}", f"v{1 + i % 3}") for i in range(models)]
    routes = [registry.http_recorder("POST", f"/v1/models/{i}/predict") for i in range(models)]
    health = registry.http_recorder("GET", "/health")
    base_rate = rng.uniform(2.0, 60.0, models)
    median_s = rng.uniform(0.004, 0.25, models)
    phase = rng.uniform(0, 2 * np.pi, models)
    pending = [0] * models
    columns: dict[tuple[str, tuple[str, ...], str], int] = {}
    labels: list[Labels] = []
    kinds: list[str] = []
    rows: list[dict[int, float]] = []

    def put(
        row: dict[int, float],
        name: str,
        fam: FamilySnapshot,
        key: tuple[str, ...],
        le: str,
        kind: str,
        value: float,
    ) -> None:
        ck = (name, key, le)
        col = columns.get(ck)
        if col is None:
            col = columns[ck] = len(labels)
            pairs = [*zip(fam.labelnames, key, strict=True), ("__name__", name)]
            if le:
                pairs.append(("le", le))
            labels.append(make_labels(pairs))
            kinds.append(kind)
        row[col] = value

    go_strings: dict[float, str] = {}

    def buckets(value: QuantileSketch | BucketCounts) -> list[tuple[str, float]]:
        """``histogram_buckets``, with the ``le`` strings memoised (they dominate)."""
        if isinstance(value, BucketCounts):
            return histogram_buckets(value)
        out = []
        for le, count in value.cumulative_buckets():
            text = go_strings.get(le)
            if text is None:
                text = go_strings[le] = float_to_go_string(le)
            out.append((text, count))
        return out

    for step in range(steps):
        load = 0.0
        for i, rec in enumerate(recs):
            rate = base_rate[i] * (1 + 0.4 * np.sin(2 * np.pi * step / 720 + phase[i]))
            n = int(rng.poisson(rate * STEP_S))
            load += rate / base_rate.sum()
            ns = (rng.lognormal(np.log(median_s[i]), 0.35, n) * 1e9).astype(np.int64)
            n_err = int(rng.binomial(n, 0.004))
            ok, bad = ns[n_err:].tolist(), ns[:n_err].tolist()
            if i % 3 == 0:  # batched calls
                rec.ok_batched.extend(ok)
                rec.batches.extend(np.minimum(rng.geometric(0.15, len(ok)), 64).tolist())
            else:
                rec.ok.extend(ok)
            if i % 4 == 1:  # explicit form: queue and compute parts
                queue = (ns * rng.uniform(0.05, 0.4, n)).astype(np.int64)
                rec.queue.extend(queue.tolist())
                rec.compute.extend((ns - queue).tolist())
            types = rng.choice(len(_ERROR_TYPES), n_err, p=[0.6, 0.3, 0.1]).tolist()
            rec.errors.extend((d, _ERROR_TYPES[t]) for d, t in zip(bad, types, strict=True))
            rejected = int(rng.poisson(0.3)) if rng.random() < 0.05 else 0
            rec.rejected.extend([0] * rejected)
            in_flight = int(rng.poisson(rate * median_s[i]))
            _advance(rec.started, max(n + rejected + in_flight - pending[i], 0))
            pending[i] = in_flight
            http = ((ns + 900_000) * 1000).tolist()
            status = [200] * (n - n_err) + [500] * n_err
            routes[i].done.extend(d + s for d, s in zip(http, status, strict=True))
            routes[i].done.extend([1_500_000 * 1000 + 429] * rejected)
        health.done.extend(int(x) * 1000 + 200 for x in rng.lognormal(np.log(4e5), 0.2, STEP_S))
        resources.busy = min(0.5 * load, 1.0)
        row: dict[int, float] = {}
        for fam in registry.snapshot():
            for key, value in fam.samples.items():
                if isinstance(value, QuantileSketch | BucketCounts):
                    for le, count in buckets(value):
                        put(row, fam.name + "_bucket", fam, key, le, "bucket", count)
                    total = 0.0 if np.isnan(value.sum) else value.sum
                    put(row, fam.name + "_sum", fam, key, "", "histogram_sum", total)
                    put(row, fam.name + "_count", fam, key, "", "counter", value.count)
                else:
                    put(row, fam.name, fam, key, "", fam.type, float(value))
        rows.append(row)
    values = np.full((steps, len(labels)), np.nan)
    for i, row in enumerate(rows):
        values[i, list(row)] = list(row.values())
    return Dataset(labels, kinds, values)


def nab_series(steps: int) -> Dataset:
    """Every value of ``realAWSCloudwatch``: each file cut into parts of ``steps`` values,
    one series per part, laid on the scrape grid (part ``k`` holds values ``k*steps`` on)."""
    labels: list[Labels] = []
    cols: list[npt.NDArray[np.float64]] = []
    for path in sorted(NAB_DIR.glob("*.csv")):
        with path.open(newline="") as f:
            vals = np.array([float(r["value"]) for r in csv.DictReader(f)])
        for part, start in enumerate(range(0, vals.size, steps)):
            pairs = {"__name__": "aws_cloudwatch_value", "file": path.stem, "part": str(part)}
            labels.append(make_labels(pairs))
            col = np.full(steps, np.nan)
            piece = vals[start : start + steps]
            col[: piece.size] = piece
            cols.append(col)
    values = np.stack(cols, axis=1) if cols else np.empty((steps, 0))
    return Dataset(labels, ["nab"] * len(labels), values)


def combine(a: Dataset, b: Dataset) -> Dataset:
    return Dataset(a.labels + b.labels, a.kinds + b.kinds, np.concatenate([a.values, b.values], 1))


def prefixes(labels: list[Labels]) -> list[str]:
    """Each series as the text format prints it: ``name{a="1",...}``."""
    return [format_labels(lab) for lab in labels]


def render(prefix: list[str], row: npt.NDArray[np.float64]) -> bytes:
    """One scrape body (Prometheus text format) of the series present in ``row``."""
    present = np.flatnonzero(~np.isnan(row)).tolist()
    vals = row[present].tolist()
    return "".join([f"{prefix[j]} {v!r}\n" for j, v in zip(present, vals, strict=True)]).encode()


def serve(values_path: str, prefixes_path: str) -> None:
    values = np.load(values_path)
    prefix = json.loads(Path(prefixes_path).read_text())
    bodies = [render(prefix, row) for row in values]
    served: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            replica = parse_qs(urlsplit(self.path).query).get("r", ["0"])[0]
            with lock:
                i = served.get(replica, 0)
                served[replica] = i + 1
            body = bodies[min(i, len(bodies) - 1)]
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
