"""The PromQL engine against a real Prometheus 2.42, query by query, on the same data.

The data: two hours of a simulated inference service scraped every 15 s with jitter
(request counters by code with restarts and a missed scrape, classic latency histograms,
in-flight, GPU and queue gauges, per-model drift scores with NaNs, an info metric and a
deploy timestamp), four instances of which one leaves and one joins midway, crossing
midnight into the 1st of March 2024 for the date functions. It is written once as
OpenMetrics, loaded into a :class:`Store` with ``import_openmetrics`` and into
Prometheus with ``promtool tsdb create-blocks-from openmetrics``.

Every query (a handwritten list covering the functions, aggregations and operators,
then queries drawn from a small seeded grammar over the same subset) runs on both as an
instant query at several times and as range queries at 60 s and 15 s steps. Results
must have the same type, the same label sets, the same timestamps, and values within a
relative 1e-6 (1e-9 absolute near zero; NaN equals NaN); where both fail, the error
types must agree. For ``sort``, ``sort_desc``, ``topk`` and ``bottomk`` at the top of an
instant query, the order must agree too (ties compared as sets).

Prometheus 2 closes range windows and the lookback window at both ends; Prometheus 3,
whose semantics the engine follows, leaves them open on the left. Every sample here
lies at a millisecond fraction (.280 to .930) that no window edge can hit: query times
end in .250, ranges, offsets and steps are whole seconds, and subquery steps are
aligned to whole seconds. So the two agree wherever the engines do.

Run: ``pytest tests/integration/test_promql_differential.py`` (needs ``prometheus`` and
``promtool`` on PATH, e.g. Debian's ``prometheus`` package).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from inferwatch._errors import QueryError
from inferwatch.promql import Engine, QueryResult, RangeSeries, Sample, Scalar, String
from inferwatch.tsdb.backfill import import_openmetrics
from inferwatch.tsdb.store import Store
from tests.support import free_port, stop_process

pytestmark = pytest.mark.integration

SEED = 20240229
T0_MS = 1_709_244_900_000  # 2024-02-29T22:15:00Z
INTERVAL_MS = 15_000
SCRAPES = 481  # two hours
REL_TOL = 1e-6
ABS_TOL = 1e-9
MAX_REPORTED = 25
GENERATED = 300

# Query times end in .250 s; samples never do (see the module docstring).
INSTANT_TIMES_MS = [
    T0_MS + round(s * 1000)
    for s in (
        607.25,  # 10 min in: the longer windows are only partly filled
        2617.25,  # instance 4 joined 3.5 min ago
        3017.25,  # instance 1 restarted 14 s ago
        4537.25,  # instance 2 has missed three scrapes (up == 0)
        5700.25,  # instance 3 left almost 5 min ago: still within the lookback
        6307.25,  # 00:00:07 on March 1st
        7335.25,  # after the last scrape, within the lookback
        7561.25,  # beyond the lookback; the 10 min and longer windows still see data
    )
]
RANGES_MS = [  # (start, end, step)
    (T0_MS + 307_250, T0_MS + 7_567_250, 60_000),
    (T0_MS + 5_407_250, T0_MS + 7_447_250, 15_000),
]

# -- the data set -----------------------------------------------------------------------------

JOB = "inference"
REGISTRY = ("registry", "registry:9100", 9_321)  # job, instance, scrape phase (ms)
GATEWAY = ("gateway", "10.0.1.1:9000", 1_888)
LE = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf")
CODES = ("200", "400", "500", "503")


@dataclass(frozen=True, slots=True)
class Instance:
    """One replica of the model server: when it answers scrapes, restarts, fails."""

    address: str
    phase_ms: int
    first: int
    last: int
    restarts: tuple[int, ...] = ()
    down: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    version: str
    requests_per_s: float
    median_latency_s: float
    framework: str
    code_shares: tuple[float, ...]


INSTANCES = (
    Instance("10.0.0.1:8000", 3_611, 0, SCRAPES - 1, restarts=(200, 390)),
    Instance("10.0.0.2:8000", 7_437, 0, SCRAPES - 1, restarts=(130,), down=(300, 301, 302)),
    Instance("10.0.0.3:8000", 11_583, 0, 360),  # scaled down at 1 h 30 min
    Instance("10.0.0.4:8000", 5_702, 160, SCRAPES - 1),  # scaled up at 40 min
)
STABLE = (0.95, 0.03, 0.015, 0.005)
MODELS = (
    Model("resnet50", "1", 12.0, 0.03, "torch", STABLE),
    Model("resnet50", "2", 4.0, 0.035, "torch", (0.90, 0.03, 0.06, 0.01)),  # a bad canary
    Model("bert-base", "3", 7.0, 0.08, "onnx", STABLE),
    Model("llama-7b", "1", 0.8, 1.2, "vllm", STABLE),
)
FEATURES = ("age", "income", "text_len")


@dataclass
class Family:
    """One OpenMetrics family: its type and series (sample name, labels, times, values)."""

    name: str
    type: str
    series: list[tuple[str, dict[str, str], npt.NDArray[np.int64], npt.NDArray[np.float64]]] = (
        field(default_factory=list)
    )


def scrape_times(
    rng: np.random.Generator, phase_ms: int, scrapes: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """When each scrape's samples were taken: the phase plus up to 40 ms of jitter."""
    jitter = rng.integers(-40, 41, scrapes.size)
    return T0_MS + scrapes * INTERVAL_MS + phase_ms + jitter


def counter(
    increments: npt.NDArray[Any], at: npt.NDArray[np.bool_], start: Any
) -> npt.NDArray[np.float64]:
    """``start`` plus the cumulative sums of ``increments``, from zero again where ``at`` is."""
    total = np.cumsum(increments, axis=0, dtype=np.float64) + start
    for i in np.flatnonzero(at):
        if i:
            total[i:] -= total[i - 1]
    return total


def bucket_shares(median: float, bounds: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The share of log-normal (sigma 0.5) latencies in each bucket, +Inf last."""
    cdf = [0.5 * (1 + math.erf(math.log(b / median) / (0.5 * math.sqrt(2)))) for b in bounds]
    return np.diff([0.0, *cdf, 1.0])


def build_families(seed: int) -> list[Family]:
    """The whole data set, seeded."""
    rng = np.random.default_rng(seed)
    fam = {
        name: Family(name, kind)
        for name, kind in [
            ("inferwatch_requests", "counter"),
            ("inferwatch_request_duration_seconds", "histogram"),
            ("inferwatch_inferences_in_flight", "gauge"),
            ("inferwatch_gpu_utilization_ratio", "gauge"),
            ("inferwatch_gpu_memory_used_bytes", "gauge"),
            ("inferwatch_queue_depth", "gauge"),
            ("inferwatch_drift_score", "gauge"),
            ("inferwatch_model_calibration_offset", "gauge"),
            ("inferwatch_model_info", "gauge"),
            ("inferwatch_model_last_deploy_timestamp_seconds", "gauge"),
            ("up", "gauge"),
        ]
    }
    bounds = np.array([float(le) for le in LE[:-1]])
    for inst in INSTANCES:
        scrapes = np.arange(inst.first, inst.last + 1)
        times = scrape_times(rng, inst.phase_ms, scrapes)
        alive = ~np.isin(scrapes, inst.down)
        restart = np.isin(scrapes, inst.restarts)
        load = 1.0 + 0.3 * np.sin(2 * np.pi * scrapes / 240 + inst.phase_ms)
        base = {"instance": inst.address, "job": JOB}
        t = times[alive]
        up = alive.astype(np.float64)
        fam["up"].series.append(("up", base, times, up))
        for m in MODELS:
            labels = {**base, "model": m.name, "version": m.version}
            n = rng.poisson(m.requests_per_s * 15 * load)
            by_code = np.array([rng.multinomial(k, m.code_shares) for k in n])
            # Every process has been up for a day when the data begin, so no counter
            # starts near zero inside a window (see "Left out on purpose" below).
            before = rng.poisson(m.requests_per_s * 86_400)
            for j, code in enumerate(CODES):
                values = counter(by_code[:, j], restart, before * m.code_shares[j] // 1)[alive]
                series = ("inferwatch_requests_total", {**labels, "code": code}, t, values)
                fam["inferwatch_requests"].series.append(series)
            latency = rng.lognormal(math.log(m.median_latency_s), 0.5, int(n.sum()))
            scrape_of = np.repeat(np.arange(n.size), n)
            bucket = np.searchsorted(bounds, latency, side="left")
            counts = np.zeros((n.size, len(LE)))
            np.add.at(counts, (scrape_of, bucket), 1)
            earlier = np.cumsum(rng.multinomial(before, bucket_shares(m.median_latency_s, bounds)))
            cumulative = counter(np.cumsum(counts, axis=1), restart, earlier)[alive]
            hist = fam["inferwatch_request_duration_seconds"]
            for j, le in enumerate(LE):
                name = "inferwatch_request_duration_seconds_bucket"
                hist.series.append((name, {**labels, "le": le}, t, cumulative[:, j]))
            mean = m.median_latency_s * math.exp(0.125)
            increments = np.bincount(scrape_of, latency, minlength=n.size)
            sums = counter(increments, restart, earlier[-1] * mean)[alive]
            hist.series.append(("inferwatch_request_duration_seconds_sum", labels, t, sums))
            hist.series.append(
                ("inferwatch_request_duration_seconds_count", labels, t, cumulative[:, -1])
            )
            in_flight = rng.poisson(m.requests_per_s * m.median_latency_s * 2 * load)[alive]
            fam["inferwatch_inferences_in_flight"].series.append(
                ("inferwatch_inferences_in_flight", labels, t, in_flight.astype(np.float64))
            )
        for gpu in ("0", "1"):
            labels = {**base, "gpu": gpu}
            wave = 0.5 + 0.3 * np.sin(2 * np.pi * scrapes / 180 + int(gpu))
            util = (wave + rng.normal(0, 0.03, scrapes.size))[alive]
            used = (1.2e10 + np.cumsum(rng.normal(0, 5e7, scrapes.size))).round()[alive]
            fam["inferwatch_gpu_utilization_ratio"].series.append(
                ("inferwatch_gpu_utilization_ratio", labels, t, util)
            )
            fam["inferwatch_gpu_memory_used_bytes"].series.append(
                ("inferwatch_gpu_memory_used_bytes", labels, t, used)
            )
        queue = np.abs(np.cumsum(rng.integers(-2, 3, scrapes.size))).astype(np.float64)[alive]
        fam["inferwatch_queue_depth"].series.append(("inferwatch_queue_depth", base, t, queue))

    job, instance, phase = REGISTRY
    scrapes = np.arange(SCRAPES)
    t = scrape_times(rng, phase, scrapes)
    base = {"instance": instance, "job": job}
    fam["up"].series.append(("up", base, t, np.ones(t.size)))
    deploy_step = 240
    for i, m in enumerate(MODELS):
        labels = {**base, "model": m.name, "version": m.version}
        for feature in FEATURES:
            score = np.abs(rng.normal(0.1, 0.05, t.size))
            score[rng.random(t.size) < 0.03] = np.nan  # no traffic in the drift window
            fam["inferwatch_drift_score"].series.append(
                ("inferwatch_drift_score", {**labels, "feature": feature}, t, score)
            )
        offset = np.clip(np.cumsum(rng.normal(0, 0.02, t.size)), -0.5, 0.5)
        fam["inferwatch_model_calibration_offset"].series.append(
            ("inferwatch_model_calibration_offset", labels, t, offset)
        )
        info = {**labels, "framework": m.framework}
        fam["inferwatch_model_info"].series.append(
            ("inferwatch_model_info", info, t, np.ones(t.size))
        )
        deployed = np.full(t.size, T0_MS / 1000 - 86_400 * (i + 2) - 3_600.5 * i)
        if m.version == "2":
            deployed[deploy_step:] = t[deploy_step] / 1000
        fam["inferwatch_model_last_deploy_timestamp_seconds"].series.append(
            ("inferwatch_model_last_deploy_timestamp_seconds", labels, t, deployed)
        )
    job, instance, phase = GATEWAY
    t = scrape_times(rng, phase, scrapes)
    fam["up"].series.append(("up", {"instance": instance, "job": job}, t, np.ones(t.size)))
    return list(fam.values())


def om_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def write_openmetrics(families: Sequence[Family], path: Path) -> int:
    """Write ``families`` as OpenMetrics with timestamps; return the number of samples."""
    samples = 0
    with path.open("w") as out:
        for family in families:
            out.write(f"# TYPE {family.name} {family.type}\n")
            for name, labels, times, values in family.series:
                text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                head = f"{name}{{{text}}} "
                out.writelines(
                    f"{head}{om_value(v)} {t // 1000}.{t % 1000:03d}\n"
                    for t, v in zip(times.tolist(), values.tolist(), strict=True)
                )
                samples += times.size
        out.write("# EOF\n")
    return samples


# -- the two query back ends ------------------------------------------------------------------

Labelset = tuple[tuple[str, str], ...]


@dataclass
class Answer:
    """A query result of either back end, in one shape.

    ``kind`` is the result type, ``error`` (the query failed; of two errors only the
    types are compared) or ``crash`` (ours raised something other than a QueryError). ``rows`` are
    (labels, timestamps, values): one row for a scalar, one per sample of a vector (in
    result order), one per series of a matrix.
    """

    kind: str
    rows: list[tuple[Labelset, list[int], list[float]]] = field(default_factory=list)
    text: str = ""


class Prometheus:
    """A Prometheus server over a storage directory of promtool-built blocks."""

    def __init__(self, workdir: Path, data: Path) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("`prometheus` is not on PATH (Debian: apt-get install prometheus)")
        config = workdir / "prometheus.yml"
        # JSON is YAML. evaluation_interval is the default subquery step.
        config.write_text(json.dumps({"global": {"evaluation_interval": "1m"}}))
        self.log_path = workdir / "prometheus.log"
        self.port = free_port()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data}",
                    "--storage.tsdb.retention.time=100y",  # the blocks are from 2024
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60.0)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                self.fail("exited at start")
            try:
                if self.client.get("/-/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.fail("not ready after 30 s")
            time.sleep(0.05)

    def fail(self, why: str) -> None:
        self.stop()
        pytest.fail(f"Prometheus {why}; its log:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        self.client.close()
        stop_process(self.process)

    def instant(self, expr: str, time_ms: int) -> Answer:
        return self._answer("/api/v1/query", {"query": expr, "time": seconds(time_ms)})

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> Answer:
        params = {
            "query": expr,
            "start": seconds(start_ms),
            "end": seconds(end_ms),
            "step": seconds(step_ms),
        }
        return self._answer("/api/v1/query_range", params)

    def _answer(self, path: str, params: dict[str, str]) -> Answer:
        body = self.client.post(path, data=params).json()
        if body["status"] != "success":
            return Answer("error", text=f"{body['errorType']}: {body['error']}")
        kind, result = body["data"]["resultType"], body["data"]["result"]
        if kind == "scalar":
            return Answer(kind, [((), [millis(result[0])], [float(result[1])])])
        if kind == "string":
            return Answer(kind, [((), [millis(result[0])], [math.nan])], text=result[1])
        if kind == "vector":
            rows = [
                (labelset(r["metric"]), [millis(r["value"][0])], [float(r["value"][1])])
                for r in result
            ]
            return Answer(kind, rows)
        rows = [
            (
                labelset(r["metric"]),
                [millis(t) for t, _ in r["values"]],
                [float(v) for _, v in r["values"]],
            )
            for r in result
        ]
        return Answer(kind, rows)


def seconds(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def millis(t: float) -> int:
    return round(t * 1000)


def labelset(metric: dict[str, str]) -> Labelset:
    return tuple(sorted(metric.items()))


def ours(run: Any) -> Answer:
    """Our engine's result of ``run()`` as an :class:`Answer`."""
    try:
        result: QueryResult = run()
    except QueryError as exc:
        return Answer("error", text=f"{exc.error_type}: {exc}")
    except Exception as exc:  # a bug, whatever Prometheus says
        return Answer("crash", text=f"{type(exc).__name__}: {exc}")
    value = result.value
    if isinstance(value, Scalar):
        return Answer("scalar", [((), [value.t], [value.v])])
    if isinstance(value, String):
        return Answer("string", [((), [value.t], [math.nan])], text=value.v)
    rows: list[tuple[Labelset, list[int], list[float]]] = []
    for item in value:
        if isinstance(item, Sample):
            rows.append((tuple(item.labels), [item.t], [item.v]))
        elif isinstance(item, RangeSeries):
            rows.append((tuple(item.labels), item.timestamps.tolist(), item.values.tolist()))
    return Answer(result.result_type, rows)


# -- comparing ----------------------------------------------------------------------------


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return abs(a - b) <= max(ABS_TOL, REL_TOL * max(abs(a), abs(b)))


def when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]


def show(labels: Labelset) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


def compare(
    where: str, prom: Answer, mine: Answer, order: Sequence[str] | None, ties: bool = False
) -> list[str]:
    """Every difference between Prometheus's answer and ours, one line each.

    ``ties``: the query's outermost operation is ``topk``/``bottomk``, which pick among
    equal values by the workings of Go's heap; a result with other series but the same
    values at every time (in the same order, where ``order`` is given) is as right.
    """
    if mine.kind == "crash":
        return [f"{where}: ours raised {mine.text}; prometheus: {prom.kind} {prom.text}"]
    if prom.kind != mine.kind:
        return [f"{where}: prometheus {prom.kind} {prom.text}; ours {mine.kind} {mine.text}"]
    if prom.kind == "error":
        theirs, our = prom.text.split(":", 1)[0], mine.text.split(":", 1)[0]
        if theirs != our:
            return [f"{where}: error types differ: prometheus {prom.text}; ours {mine.text}"]
        return []
    if prom.kind == "string":
        return [] if prom.text == mine.text else [f"{where}: {prom.text!r} != {mine.text!r}"]
    out: list[str] = []
    theirs_by = {labels: (ts, vs) for labels, ts, vs in prom.rows}
    ours_by: dict[Labelset, tuple[list[int], list[float]]] = {}
    for labels, ts, vs in mine.rows:
        if labels in ours_by:  # reported, then compared merged
            out.append(f"{where}: ours has {show(labels)} twice")
            before = ours_by[labels]
            merged = sorted(zip([*before[0], *ts], [*before[1], *vs], strict=True))
            ts, vs = [t for t, _ in merged], [v for _, v in merged]
        ours_by[labels] = (ts, vs)
    for labels in theirs_by.keys() - ours_by.keys():
        ts, vs = theirs_by[labels]
        out.append(f"{where}: missing in ours: {show(labels)} = {points(ts, vs)}")
    for labels in ours_by.keys() - theirs_by.keys():
        ts, vs = ours_by[labels]
        out.append(f"{where}: only in ours: {show(labels)} = {points(ts, vs)}")
    for labels in theirs_by.keys() & ours_by.keys():
        (pt, pv), (ot, ov) = theirs_by[labels], ours_by[labels]
        if pt != ot:
            out.append(
                f"{where}: {show(labels)}: timestamps differ: prometheus "
                f"{points(pt, pv)}; ours {points(ot, ov)}"
            )
            continue
        bad = [i for i, (a, b) in enumerate(zip(pv, ov, strict=True)) if not same(a, b)]
        for i in bad[:3]:
            out.append(
                f"{where} at {when(pt[i])}: {show(labels)}: prometheus {pv[i]!r}, ours {ov[i]!r}"
            )
        if len(bad) > 3:
            out.append(f"{where}: {show(labels)}: {len(bad) - 3} more points differ")
    if out and ties and values_by_time(prom, order) == values_by_time(mine, order):
        return []
    if order is not None and not out:
        out.extend(compare_order(where, prom, mine, order))
    return out


def values_by_time(answer: Answer, order: Sequence[str] | None) -> dict[Any, list[Any]]:
    """The values at each time (and group of ``order`` labels): in result order where
    ``order`` is given, else sorted.

    Each value is rounded to 9 significant digits, NaN written as such, so that two
    engines' values compare equal within about the tolerance.
    """
    found: dict[Any, list[Any]] = {}
    for labels, ts, vs in answer.rows:
        group = tuple(dict(labels).get(name, "") for name in order or ())
        for t, v in zip(ts, vs, strict=True):
            value = "NaN" if math.isnan(v) else float(f"{v:.9g}")
            found.setdefault((t, group), []).append(value)
    if order is None:
        for values in found.values():
            values.sort(key=str)
    return found


def points(ts: list[int], vs: list[float]) -> str:
    shown = ", ".join(f"{when(t)} {v!r}" for t, v in zip(ts[:4], vs[:4], strict=True))
    return f"[{shown}{', ...' if len(ts) > 4 else ''}] ({len(ts)} points)"


def compare_order(where: str, prom: Answer, mine: Answer, group: Sequence[str]) -> list[str]:
    """Whether the series come in the same order within each group of ``group`` labels.

    Runs of equal values (Prometheus's order among ties is not defined) compare as sets.
    """

    def key(labels: Labelset) -> tuple[str, ...]:
        found = dict(labels)
        return tuple(found.get(name, "") for name in group)

    out: list[str] = []
    for g in {key(labels) for labels, _, _ in prom.rows}:
        theirs = [(labels, vs[0]) for labels, _, vs in prom.rows if key(labels) == g]
        our = [(labels, vs[0]) for labels, _, vs in mine.rows if key(labels) == g]
        runs: list[tuple[set[Labelset], set[Labelset]]] = []
        for i, ((pl, pv), (ol, ov)) in enumerate(zip(theirs, our, strict=True)):
            if not same(pv, ov):
                out.append(
                    f"{where}: order differs at position {i} of group {g}: prometheus "
                    f"{show(pl)} {pv!r}, ours {show(ol)} {ov!r}"
                )
                break
            if runs and i and same(theirs[i - 1][1], pv):
                runs[-1][0].add(pl)
                runs[-1][1].add(ol)
            else:
                runs.append(({pl}, {ol}))
        else:
            for pls, ols in runs:
                if pls != ols:
                    out.append(f"{where}: order differs in group {g}: prometheus {pls}, ours {ols}")
    return out


# -- the queries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """A query; ``order``: the labels within whose groups the instant result is ordered.

    ``ties``: whether its outermost operation is ``topk``/``bottomk`` (see :func:`compare`).
    """

    expr: str
    order: tuple[str, ...] | None = None

    @property
    def ties(self) -> bool:
        return self.expr.startswith(("topk", "bottomk"))


REQ = "inferwatch_requests_total"
BUCKET = "inferwatch_request_duration_seconds_bucket"
HSUM = "inferwatch_request_duration_seconds_sum"
HCOUNT = "inferwatch_request_duration_seconds_count"
FLIGHT = "inferwatch_inferences_in_flight"
UTIL = "inferwatch_gpu_utilization_ratio"
MEM = "inferwatch_gpu_memory_used_bytes"
QUEUE = "inferwatch_queue_depth"
DRIFT = "inferwatch_drift_score"
CALIB = "inferwatch_model_calibration_offset"
INFO = "inferwatch_model_info"
DEPLOY = "inferwatch_model_last_deploy_timestamp_seconds"
ERR = f'{REQ}{{code=~"5.."}}'
UNORDERED = ("model", "version", "instance", "code", "le", "gpu", "feature")

# Left out on purpose, as Prometheus 2.42 and 3 differ (the engine follows 3):
# - holt_winters: removed in 3 (double_exponential_smoothing, behind a feature flag).
# - functions 2.42 lacks: sort_by_label(_desc), limitk, limit_ratio, mad_over_time,
#   first_over_time, info, the ts_of_* functions, native-histogram functions.
# - atan2 keeps __name__ in 2.42 and drops it in 3 (prometheus/prometheus#12595): its
#   cases drop the name before.
# - the last bits of sums and averages: 3 sums with Kahan compensation and averages as
#   sum / count, 2.42 sums plainly and averages incrementally (an average of integers
#   that is 2 can be 1.9999999999999998). So count_values runs on raw samples or one
#   correctly rounded operation of them, and generated comparisons are against numbers
#   no such average hits, never between two computed vectors.
# - regular expressions where "." would meet a newline (3 matches it; no label has one).
# - window edges (closed in 2, left-open in 3): no sample can sit on one (docstring).
# - rate/increase of a counter whose series starts inside the window, near zero: 2.42
#   limits the extrapolation to the counter's zero point before it decides whether the
#   series starts in the window, 3 decides first (prometheus/prometheus#13725). So every
#   counter starts at a day's worth of requests (a restart inside a window is no series
#   start), and subqueries, whose first points have no such history, get no rate().
# - stddev/stdvar of a group of one NaN or infinite value: 0 in 2.42, NaN in 3
#   (prometheus/prometheus#14941). Their cases aggregate finite values only.
# - which of equal values topk/bottomk keep is the work of Go's heap: see compare().
HANDWRITTEN: list[Case] = [
    # selectors
    Case(FLIGHT),
    Case(f'{REQ}{{code="500"}}'),
    Case(f'{REQ}{{code!="200",model=~"res.*"}}'),
    Case(f'{REQ}{{code=~"4..|5..",instance!~"10.0.0.[12]:8000"}}'),
    Case('up{job=~"gate.*|reg.*"}'),
    Case('{__name__=~"inferwatch_gpu_.*",gpu="1"}'),
    Case(f'{{__name__="{QUEUE}"}}'),
    Case("nonexistent_metric"),
    Case(f"{FLIGHT}[2m]"),
    Case(f'{REQ}{{code="503"}}[1m]'),
    Case(f"{DRIFT}[1m]"),
    # offset and @
    Case(f"{FLIGHT} offset 10m"),
    Case(f"{FLIGHT} offset -5m"),
    Case(f"rate({REQ}[5m] offset 1h)"),
    Case(f"{UTIL} @ 1709250000.250"),
    Case(f"rate({REQ}[5m] @ end())"),
    Case(f"sum({FLIGHT} @ start())"),
    Case(f"{QUEUE} offset 5m @ 1709249400.250"),
    # counters
    Case(f"rate({REQ}[5m])"),
    Case(f"rate({REQ}[1m])"),
    Case(f'rate({REQ}{{code="503"}}[1h])'),
    Case(f"irate({REQ}[5m])"),
    Case(f"irate({REQ}[1m])"),
    Case(f"increase({REQ}[10m])"),
    Case(f'increase({REQ}{{model="bert-base"}}[1h])'),
    Case(f"resets({REQ}[30m])"),
    Case(f'resets({BUCKET}{{le="+Inf"}}[1h])'),
    Case(f"changes({REQ}[10m])"),
    Case(f"rate({HSUM}[5m]) / rate({HCOUNT}[5m])"),
    Case(f'rate({REQ}{{code="500"}}[2m]) > 0'),
    Case(f"rate({MEM}[5m])"),  # not a counter: resets everywhere
    # gauges over time
    Case(f"delta({QUEUE}[10m])"),
    Case(f"delta({UTIL}[5m])"),
    Case(f"idelta({UTIL}[5m])"),
    Case(f"idelta({FLIGHT}[2m])"),
    Case(f"deriv({MEM}[10m])"),
    Case(f"deriv({CALIB}[30m])"),
    Case(f"predict_linear({MEM}[30m], 3600)"),
    Case(f"predict_linear({QUEUE}[10m], 600)"),
    Case(f"changes({FLIGHT}[15m])"),
    Case(f"changes({DEPLOY}[2h])"),
    Case(f"avg_over_time({FLIGHT}[5m])"),
    Case(f"min_over_time({UTIL}[10m])"),
    Case(f"max_over_time({UTIL}[10m])"),
    Case(f"sum_over_time({QUEUE}[5m])"),
    Case(f"count_over_time({REQ}[5m])"),
    Case('count_over_time(up{instance="10.0.0.2:8000"}[5m])'),
    Case(f"quantile_over_time(0.9, {FLIGHT}[10m])"),
    Case(f"quantile_over_time(0, {UTIL}[5m])"),
    Case(f"quantile_over_time(1, {UTIL}[5m])"),
    Case(f"quantile_over_time(1.5, {UTIL}[5m])"),
    Case(f"quantile_over_time(-1, {UTIL}[5m])"),
    Case(f"stddev_over_time({UTIL}[10m])"),
    Case(f"stdvar_over_time({FLIGHT}[10m])"),
    Case(f"stddev_over_time({INFO}[10m])"),
    Case(f"last_over_time({QUEUE}[10m])"),
    Case(f"present_over_time({QUEUE}[1m])"),
    Case(f"absent_over_time({QUEUE}[5m])"),
    Case('absent_over_time(nonexistent{job="x"}[5m])'),
    Case(f"avg_over_time({DRIFT}[5m])"),
    Case(f"max_over_time({DRIFT}[5m])"),
    Case(f"min_over_time({DRIFT}[2m])"),
    Case(f"sum_over_time({DRIFT}[10m])"),
    Case(f"quantile_over_time(0.5, {DRIFT}[10m])"),
    Case(f"stddev_over_time({DRIFT}[10m])"),
    Case(f"deriv({DRIFT}[10m])"),
    # histograms
    Case(f"histogram_quantile(0.99, sum by (le) (rate({BUCKET}[5m])))"),
    Case(f"histogram_quantile(0.5, sum by (le, model) (rate({BUCKET}[5m])))"),
    Case(f"histogram_quantile(0.9, rate({BUCKET}[10m]))"),
    Case(f"histogram_quantile(0.95, sum without (instance) (rate({BUCKET}[1m])))"),
    Case(f"histogram_quantile(0.99, sum by (le) ({BUCKET}))"),
    Case(f"histogram_quantile(0, sum by (le, model) (rate({BUCKET}[5m])))"),
    Case(f"histogram_quantile(1, sum by (le, model) (rate({BUCKET}[5m])))"),
    Case(f"histogram_quantile(1.5, sum by (le) (rate({BUCKET}[5m])))"),
    Case(f"histogram_quantile(-0.1, sum by (le) (rate({BUCKET}[5m])))"),
    Case(f'histogram_quantile(0.9, sum by (le) (rate({BUCKET}{{le!="+Inf"}}[5m])))'),
    Case(f'histogram_quantile(0.5, rate({BUCKET}{{model="llama-7b"}}[1m]))'),
    Case(f"histogram_quantile(scalar(min({UTIL})), sum by (le) (rate({BUCKET}[5m])))"),
    # aggregations
    Case(f"sum by (model) (rate({REQ}[5m]))"),
    Case(f"sum(rate({REQ}[5m])) by (model, code)"),
    Case(f"sum without (code, instance) (rate({REQ}[5m]))"),
    Case(f"sum({REQ})"),
    Case(f"avg by (model, version) ({FLIGHT})"),
    Case(f"min by (instance) ({UTIL})"),
    Case(f"max without (gpu) ({MEM})"),
    Case(f"count by (code) ({REQ})"),
    Case('count({__name__=~".+"})'),
    Case(f'count by (__name__) ({{job="{JOB}"}})'),
    Case('sum by (__name__) ({__name__=~"inferwatch_gpu.*"})'),
    Case(f"group by (model) ({REQ})"),
    Case(f"group({FLIGHT})"),
    Case(f"stddev by (model) ({FLIGHT})"),
    Case(f"stdvar without (instance) ({FLIGHT})"),
    Case(f"stddev({MEM})"),
    Case(f"stddev by (model, version) ({INFO})"),
    Case(f"quantile by (model) (0.9, {FLIGHT})"),
    Case(f"quantile(0.5, {UTIL})"),
    Case(f"quantile(0.99, rate({REQ}[5m]))"),
    Case(f"quantile(-1, {FLIGHT})"),
    Case(f"quantile(2, {FLIGHT})"),
    Case(f"avg({DRIFT})"),
    Case(f"max by (model) ({DRIFT})"),
    Case(f"min({DRIFT})"),
    Case(f"sum by (feature) ({DRIFT})"),
    Case(f"quantile(0.5, {DRIFT})"),
    Case(f"topk(3, rate({REQ}[5m]))", order=()),
    Case(f"bottomk(2, {FLIGHT})", order=()),
    Case(f"topk by (model) (1, {FLIGHT})", order=("model",)),
    Case(f"bottomk by (instance) (2, {UTIL})", order=("instance",)),
    Case(f"topk(0, {FLIGHT})"),
    Case(f"bottomk(100, {QUEUE})", order=()),
    Case(f"topk(3, {DRIFT})", order=()),
    Case(f"topk(scalar(count(up)), {QUEUE})", order=()),
    Case(f'count_values("value", {FLIGHT})'),
    Case(f'count_values by (model) ("n", {FLIGHT})'),
    Case(f'count_values("code", {QUEUE})'),  # the new label replaces nothing: no code
    Case(f'count_values("gpu", {MEM})'),
    Case(f'sum(count_values("v", {QUEUE}))'),
    # arithmetic and comparisons
    Case(f"sum by (model) (rate({ERR}[5m])) / sum by (model) (rate({REQ}[5m]))"),
    Case(f"sum(rate({ERR}[5m])) / sum(rate({REQ}[5m]))"),
    Case(f'rate({REQ}{{code="500"}}[5m]) / ignoring(code) rate({REQ}{{code="200"}}[5m])'),
    Case(
        f"sum by (model, instance) (rate({REQ}[5m])) / on(model) group_left "
        f"sum by (model) (rate({REQ}[5m]))"
    ),
    Case(f"{FLIGHT} * on(model, version) group_left(framework) {INFO}"),
    Case(f"{INFO} * on(model, version) group_right(framework) {FLIGHT}"),
    Case(f"{FLIGHT} / on(instance) group_left {QUEUE}"),
    Case(f"{FLIGHT} + ignoring(model, version) group_left {QUEUE}"),
    Case(f"{FLIGHT} > 5"),
    Case(f"{FLIGHT} > bool 5"),
    Case(f"{FLIGHT} == bool 3"),
    Case(f"{FLIGHT} != 0"),
    Case(f"3 < {FLIGHT}"),
    Case(f"3 >= bool {FLIGHT}"),
    Case(f"{UTIL} <= 0.5"),
    Case(f"{UTIL} > on(instance) group_left avg by (instance) ({UTIL})"),
    Case(f"{FLIGHT} >= bool on(instance) group_left {QUEUE}"),
    Case(f"{DRIFT} > 0.1"),
    Case(f"{DRIFT} > bool 0.1"),
    Case(f"{DRIFT} != {DRIFT}"),
    Case(f"{FLIGHT} % 3"),
    Case(f"{FLIGHT} ^ 2"),
    Case(f"2 ^ {FLIGHT}"),
    Case(f"-{FLIGHT}"),
    Case(f"{CALIB} * -1"),
    Case(f"{FLIGHT} / 0"),
    Case(f"-{FLIGHT} / 0"),
    Case(f"{CALIB} % 0.25"),
    Case(f"-{CALIB} % 0.1"),
    Case(f"1 - {CALIB}"),
    Case(f"{MEM} / 2^30"),
    Case(f"abs({UTIL}) atan2 0.5"),  # 2.42 keeps the name, 3 drops it (#12595)
    Case(f"{UTIL} atan2 on(instance, gpu) {UTIL}"),
    Case("1 + 2 * 3 - 4 / 8"),
    Case("2 ^ 3 ^ 2"),
    Case("-2 ^ 2"),
    Case("5 % 3 + 7 % -3"),
    Case("5 > bool 3"),
    Case("0 / 0"),
    Case("1 / 0 - 1 / 0"),
    Case("time() - 100"),
    Case(f"time() - {DEPLOY}"),
    Case(f"(time() - {DEPLOY}) / 3600 > bool 1"),
    Case("vector(1) + vector(2)"),
    Case(f"count({FLIGHT}) > bool count({UTIL})"),
    Case(f"sum({FLIGHT}) / scalar(count(up))"),
    Case(f"{FLIGHT} * scalar({QUEUE})"),
    # logical
    Case(f"{UTIL} > 0.5 and on(instance) {QUEUE} > 3"),
    Case(f"{FLIGHT} and {FLIGHT} > 3"),
    Case(f"{FLIGHT} or up"),
    Case(f"{FLIGHT} > 5 or {FLIGHT} < 1"),
    Case(f"up unless on(instance) {QUEUE} > 5"),
    Case(f"{FLIGHT} unless ignoring(model, version) group_left {QUEUE}"),
    Case(f"sum by (model) ({FLIGHT}) or vector(0)"),
    Case(f"up == 0 or {QUEUE} == bool 0"),
    Case(f"{REQ} and ignoring(code) {FLIGHT}"),
    # errors that both must raise
    Case(f"{FLIGHT} + ignoring(model) {FLIGHT}"),  # many-to-many
    Case('abs({__name__=~"inferwatch_gpu_.*"})'),  # same label set twice
    Case(f'label_replace({FLIGHT}, "model", "x", "model", ".*")'),  # same label set twice
    Case(f"rate({FLIGHT})"),
    Case("sum(1)"),
    Case(f"{FLIGHT} * on(instance) {UTIL}"),  # many-to-many
    # functions
    Case(f"abs({CALIB})"),
    Case(f"ceil({UTIL} * 10)"),
    Case(f"floor({UTIL} * 10)"),
    Case(f"round({UTIL}, 0.1)"),
    Case(f"round({CALIB})"),
    Case(f"round({FLIGHT} / 2)"),
    Case(f"round({CALIB}, 0.3)"),
    Case(f"clamp({CALIB}, -0.1, 0.1)"),
    Case(f"clamp_min({FLIGHT}, 3)"),
    Case(f"clamp_max({FLIGHT}, 3)"),
    Case(f"clamp({FLIGHT}, 5, 1)"),
    Case(f"exp({CALIB})"),
    Case(f"exp({MEM})"),
    Case(f"ln({UTIL})"),
    Case(f"ln({CALIB})"),
    Case(f"log2({MEM})"),
    Case(f"log10({MEM})"),
    Case(f"sqrt({FLIGHT})"),
    Case(f"sqrt({CALIB})"),
    Case(f"sgn({CALIB})"),
    Case(f"sin({UTIL}) + cos({CALIB}) - tan({CALIB})"),
    Case(f"asin({CALIB}) * acos({UTIL}) + atan({CALIB})"),
    Case(f"sinh({CALIB}) + cosh({CALIB}) + tanh({CALIB})"),
    Case(f"deg(atanh({CALIB})) + rad({FLIGHT})"),
    Case("pi()"),
    Case(f"abs({DRIFT})"),
    Case(f"clamp_max({DRIFT}, 0.1)"),
    Case("time()"),
    Case(f"timestamp({FLIGHT})"),
    Case(f"timestamp({UTIL} offset 5m)"),
    Case(f"timestamp(sum({FLIGHT}))"),
    Case(f"{UTIL} - timestamp({UTIL})"),
    Case("vector(time())"),
    Case('scalar(sum(up{job="gateway"}))'),
    Case(f"scalar({FLIGHT})"),
    Case("scalar(nonexistent)"),
    Case(f"sort({FLIGHT})", order=()),
    Case(f"sort_desc(rate({REQ}[5m]))", order=()),
    Case(f"sort({DRIFT})", order=()),
    Case(f"sort_desc({DRIFT})", order=()),
    Case(f'label_replace({FLIGHT}, "host", "$1", "instance", "(.*):.*")'),
    Case(f'label_replace({FLIGHT}, "host", "$1", "instance", "(9.*)")'),
    Case('label_replace(up, "foo", "bar", "nonexistent", "")'),
    Case('label_replace(up, "job", "", "job", "gate.*")'),
    Case(f'label_replace(rate({REQ}[5m]), "class", "${{1}}xx", "code", "(.).*")'),
    Case(f'label_join({FLIGHT}, "id", "/", "model", "version")'),
    Case(f'label_join({FLIGHT}, "instance", "-", "model")'),
    Case('label_join(up, "empty", ",")'),
    Case('label_join(up, "x", "", "nonexistent", "job")'),
    Case("absent(nonexistent)"),
    Case('absent(nonexistent{job="x", instance=~"a.*", model="m"})'),
    Case("absent(up)"),
    Case("absent(sum(nonexistent))"),
    Case(f"absent({FLIGHT} > 1000)"),
    # dates: the data cross midnight into March 1st 2024 (a leap year)
    Case("year()"),
    Case("month()"),
    Case("day_of_month()"),
    Case("day_of_week()"),
    Case("day_of_year()"),
    Case("days_in_month()"),
    Case("hour()"),
    Case("minute()"),
    Case(f"hour({DEPLOY})"),
    Case(f"minute({DEPLOY})"),
    Case(f"day_of_month({DEPLOY})"),
    Case(f"days_in_month({DEPLOY})"),
    Case(f"day_of_year({DEPLOY})"),
    Case("month(timestamp(up))"),
    Case("year(vector(0))"),
    Case(f"day_of_week({DEPLOY} + 86400 * 3)"),
    # subqueries
    Case(f"max_over_time(rate({REQ}[5m])[30m:1m])"),
    Case(f"avg_over_time(sum by (model) ({FLIGHT})[10m:15s])"),
    Case(f"min_over_time({FLIGHT}[20m:])"),
    Case(f"rate(sum({REQ})[10m:30s])"),
    Case(f"deriv(sum({MEM})[15m:1m])"),
    Case(f"quantile_over_time(0.9, sum(rate({REQ}[1m]))[30m:2m])"),
    Case(f"max_over_time({DRIFT}[30m:1m] offset 10m)"),
    Case(f"count_over_time({QUEUE}[5m:45s])"),
    Case(f"last_over_time(sum by (instance) ({FLIGHT})[7m:1m])"),
    Case(f"changes((sum({QUEUE}) > 20)[1h:1m])"),
    Case(f"max_over_time(max_over_time({UTIL}[5m])[20m:5m])"),
    Case(f"avg_over_time(({FLIGHT} @ end())[10m:1m])"),
    Case(f"{FLIGHT}[5m:1m]"),
    Case(f"sum({FLIGHT})[5m:]"),
    Case(f"increase(sum({REQ})[30m:1m])"),
    Case(f"max_over_time(rate({REQ}[5m])[10m:1m] @ 1709250000.250)"),
    Case(f"avg_over_time(rate({REQ}[5m] offset 10m)[20m:2m] offset 5m)"),
    Case(f"count_over_time({FLIGHT}[5m:])"),
    Case(f"sum_over_time(({DRIFT} > 0.05)[10m:30s])"),
    # more edges
    Case(f"rate({REQ}[1h30m])"),
    Case(f"{FLIGHT}[5m] offset 1h"),
    Case(f"-{FLIGHT} offset 5m"),
    Case(f"{FLIGHT} @ 1709250000.250 offset 5m"),
    Case(f"timestamp({FLIGHT} @ 1709250000.250)"),
    Case(f"timestamp(last_over_time({FLIGHT}[5m]))"),
    Case(f"{FLIGHT} * 0x10 + 1e2"),
    Case(f"{FLIGHT} > Inf or {FLIGHT} < -Inf"),
    Case("NaN"),
    Case("-Inf"),
    Case('"a string"'),
    Case('up{job=~"gate\\w+"}'),
    Case(f'count({{job="{JOB}"}})'),
    Case('{__name__=~"inferwatch_model_.*"}'),
    Case(f"sort(sum by (model) (rate({REQ}[5m])))", order=()),
    Case(f"sort_desc({FLIGHT})", order=()),
    Case(f"changes({DRIFT}[10m])"),
    Case(f"resets({DRIFT}[30m])"),
    Case(f"irate({DRIFT}[5m])"),
    Case(f"idelta({DRIFT}[5m])"),
    Case(f"last_over_time({DRIFT}[1m])"),
    Case(f"stddev({DRIFT})"),
    Case(f"sum({FLIGHT}) / count({FLIGHT}) - avg({FLIGHT})"),
    Case(f'absent_over_time({FLIGHT}{{model="none"}}[5m])'),
    Case(f'label_replace({FLIGHT}, "x", "$1", "model", "(")'),  # invalid regular expression
    Case(f"histogram_quantile(NaN, sum by (le) (rate({BUCKET}[5m])))"),
    Case(f"quantile(NaN, {FLIGHT})"),
    Case(f"quantile_over_time(NaN, {FLIGHT}[5m])"),
    Case(f"{FLIGHT} and on() vector(1)"),
    Case(f"vector(1) and on() (sum({FLIGHT}) > 1000)"),
    Case(
        f"sum by (model) ({FLIGHT}) * on(model) group_left(framework) "
        f"max by (model, framework) ({INFO})"
    ),
    Case(f"{FLIGHT} * on(model) group_left {INFO}"),  # many on the "one" side
    Case(f"{FLIGHT} > on(instance) group_left {QUEUE}"),
    Case(f"sum by (le) ({BUCKET}) / ignoring(le) group_left sum({HCOUNT})"),
    Case(f"count by (le) ({BUCKET})"),
    Case(f'label_join({FLIGHT}, "name", "", "__name__")'),
    Case(f'label_replace({FLIGHT}, "__name__", "renamed", "", "")'),
    Case(f"sum without () ({FLIGHT})"),
    Case(f"avg without (code) (rate({REQ}[5m]))"),
    Case(f"predict_linear({FLIGHT}[5m], -600)"),
    Case(f"round({FLIGHT}, 0)"),
    Case(f"clamp({FLIGHT}, NaN, 5)"),
    Case(f"sqrt(-{FLIGHT})"),
    Case(f"{FLIGHT} ^ 0.5 ^ 2"),
    Case(f"({FLIGHT} > 5) + 1"),
    Case("time() > bool 0"),
    Case("1 > 2"),  # comparisons between scalars need bool
    Case("scalar(time())"),
    Case(f"clamp_min({FLIGHT}, NaN)"),
    Case(f"clamp_max({FLIGHT}, NaN)"),
    Case(f'count_values("v", {DRIFT})'),
    Case(f'count_values("v", {UTIL})'),
    Case(f'count_values("v", {UTIL} / 1e6)'),  # one IEEE operation: the same bits in both
    Case(f'count_values("v", {MEM} * 1e20)'),
    Case(f'count_values("v", -{CALIB})'),
    Case(f'label_replace({FLIGHT}, "x", "$host", "instance", "(?P<host>.*):.*")'),
    Case(f'label_replace({FLIGHT}, "x", "$1", "model", "res(.*)")'),
    Case(f'label_replace({FLIGHT}, "x", "$1", "model", "(.)")'),
    Case(f'label_replace({REQ}, "class", "$1xx", "code", "(.).*")'),  # group "1xx": empty
    Case('up{instance=~"[[:digit:].]+:8000"}'),
    Case('up{job=~"(?i)GATEWAY"}'),
    Case(f'{FLIGHT}{{model=~"resnet50|bert"}}'),
    Case(f'{FLIGHT}{{model=~"res"}}'),
    Case(f'{FLIGHT}{{model!~"res.*",version=~"\\d"}}'),
    Case(f"rate({REQ}[1d])"),
    Case(f"{FLIGHT} offset 1d"),
    Case(f"+{FLIGHT}"),
    Case(f"-(-{FLIGHT})"),
    Case(f"-{FLIGHT} ^ 2"),
    Case(f"2 * {FLIGHT} ^ 2 % 7"),
    Case(f"5 < bool {FLIGHT}"),
    Case(f"{FLIGHT} == bool {FLIGHT}"),
    Case(f"{FLIGHT} > 3 and {FLIGHT} < 8 or {QUEUE} unless up == 0"),
    Case(f'absent({FLIGHT}{{model="x",version=~"1"}})'),
    Case(f"sum by (nonexistent) ({FLIGHT})"),
    Case(f"sum without (__name__) ({FLIGHT})"),
    Case(f"topk(2, {UTIL}) by (instance)", order=("instance",)),
    Case(f"vector(time()) - on() group_right timestamp({FLIGHT})"),
    Case(f"rate({FLIGHT}[1m:15s])"),
]


class QueryGenerator:
    """Queries from a small random grammar over the handwritten subset, seeded.

    Each expression comes with the names of the labels its result can have (without
    ``__name__``), so that binary operators match one-to-one or many-to-one and
    aggregations group by labels that exist.
    """

    GAUGES = {
        FLIGHT: ("instance", "job", "model", "version"),
        UTIL: ("gpu", "instance", "job"),
        MEM: ("gpu", "instance", "job"),
        QUEUE: ("instance", "job"),
        DRIFT: ("feature", "instance", "job", "model", "version"),
        CALIB: ("instance", "job", "model", "version"),
    }
    COUNTERS = {
        REQ: ("code", "instance", "job", "model", "version"),
        HCOUNT: ("instance", "job", "model", "version"),
        HSUM: ("instance", "job", "model", "version"),
    }
    MATCHERS = {
        "model": ('model="resnet50"', 'model!="bert-base"', 'model=~"res.*|llama.*"'),
        "code": ('code=~"5.."', 'code="200"', 'code!~"4.."'),
        "instance": ('instance!="10.0.0.3:8000"', 'instance=~"10.0.0.[12]:8000"'),
        "gpu": ('gpu="0"',),
        "feature": ('feature!="age"',),
    }
    RANGES = ("1m", "2m", "5m", "10m", "30m")
    OVER_TIME = ("avg", "min", "max", "sum", "count", "stddev", "stdvar", "last", "present")
    # No stddev/stdvar: over one NaN or infinite value they give 0 in 2.42, NaN in 3.
    AGGREGATIONS = ("sum", "avg", "min", "max", "count", "group", "quantile")
    UNARY = ("abs", "ceil", "floor", "round", "sqrt", "ln", "log2", "log10", "sgn", "exp", "-")
    NUMBERS = ("0", "0.5", "1", "2", "3", "10", "100", "-1", "0.25")
    THRESHOLDS = ("-0.0137", "0.4937", "1.0137", "2.0137", "4.9731", "9.8713")

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def query(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.08:
            expr, _ = self.vector(2, subquery=False)
            return f"scalar(sum({expr})) * {rng.choice(self.NUMBERS)}"
        expr, labels = self.vector(rng.choice((1, 2, 2, 3)), subquery=True)
        if r < 0.18:
            # Only on top: below, which of equal values it picks would change the result.
            clause, _ = self.grouping(labels)
            op = rng.choice(("topk", "bottomk"))
            return f"{op}{clause} ({rng.choice(('1', '2', '5'))}, {expr})"
        return expr

    def vector(self, depth: int, *, subquery: bool) -> tuple[str, frozenset[str]]:
        if depth <= 0:
            return self.rng.choice((self.selector, self.range_function))()
        kinds = [
            "selector", "range", "range", "aggregate", "aggregate", "aggregate", "unary",
            "scalar_op", "scalar_op", "vector_op", "vector_op", "group_left", "label",
        ]  # fmt: skip
        if subquery:
            kinds += ["subquery", "subquery"]
        kind = self.rng.choice(kinds)
        if kind == "selector":
            return self.selector()
        if kind == "range":
            return self.range_function()
        if kind == "aggregate":
            return self.aggregate(depth, subquery)
        if kind == "unary":
            return self.unary(depth, subquery)
        if kind == "scalar_op":
            return self.scalar_op(depth, subquery)
        if kind == "vector_op":
            return self.vector_op(depth, subquery)
        if kind == "group_left":
            return self.group_left(depth, subquery)
        if kind == "label":
            inner, labels = self.vector(depth - 1, subquery=subquery)
            source = self.rng.choice(sorted(labels)) if labels else "job"
            expr = f'label_replace({inner}, "dst", "x$1", "{source}", "(.*)[0-9]")'
            return expr, labels | {"dst"}
        return self.subquery(depth)

    def selector(
        self, names: dict[str, tuple[str, ...]] | None = None
    ) -> tuple[str, frozenset[str]]:
        rng = self.rng
        pool = names or {**self.GAUGES, **self.COUNTERS}
        name = rng.choice(sorted(pool))
        labels = pool[name]
        matchers = [
            rng.choice(self.MATCHERS[label])
            for label in labels
            if label in self.MATCHERS and rng.random() < 0.3
        ]
        expr = f"{name}{{{','.join(matchers)}}}" if matchers else name
        return expr, frozenset(labels)

    def offset(self) -> str:
        return self.rng.choice(("", "", "", "", " offset 5m", " offset 1h", " offset -2m"))

    def range_function(self) -> tuple[str, frozenset[str]]:
        rng = self.rng
        window = f"[{rng.choice(self.RANGES)}]{self.offset()}"
        if rng.random() < 0.4:
            expr, labels = self.selector(self.COUNTERS)
            fn = rng.choice(("rate", "rate", "irate", "increase", "resets"))
            return f"{fn}({expr}{window})", labels
        expr, labels = self.selector(self.GAUGES)
        choice = rng.choice((*self.OVER_TIME, "quantile", "delta", "idelta", "deriv", "changes"))
        if choice == "quantile":
            q = rng.choice(("0", "0.5", "0.9", "1"))
            return f"quantile_over_time({q}, {expr}{window})", labels
        if choice in ("delta", "idelta", "deriv", "changes"):
            return f"{choice}({expr}{window})", labels
        if rng.random() < 0.1:
            return f"predict_linear({expr}{window}, 600)", labels
        return f"{choice}_over_time({expr}{window})", labels

    def grouping(self, labels: frozenset[str]) -> tuple[str, frozenset[str] | None]:
        """A ``by``/``without`` clause and the labels it leaves (None: the clause is absent)."""
        rng = self.rng
        r = rng.random()
        names = sorted(labels)
        if r < 0.25 or not names:
            return "", frozenset()
        chosen = rng.sample(names, min(len(names), rng.choice((1, 1, 2))))
        if r < 0.8:
            return f" by ({', '.join(chosen)})", frozenset(chosen)
        return f" without ({', '.join(chosen)})", labels - set(chosen)

    def aggregate(self, depth: int, subquery: bool) -> tuple[str, frozenset[str]]:
        rng = self.rng
        inner, labels = self.vector(depth - 1, subquery=subquery)
        op = rng.choice(self.AGGREGATIONS)
        clause, left = self.grouping(labels)
        param = ""
        if op == "quantile":
            param = rng.choice(("0", "0.5", "0.9", "0.99", "1")) + ", "
        return f"{op}{clause} ({param}{inner})", left or frozenset()

    def unary(self, depth: int, subquery: bool) -> tuple[str, frozenset[str]]:
        rng = self.rng
        inner, labels = self.vector(depth - 1, subquery=subquery)
        r = rng.random()
        if r < 0.15:
            return f"clamp_min({inner}, {rng.choice(self.NUMBERS)})", labels
        if r < 0.25:
            return f"clamp({inner}, -1, {rng.choice(('0.5', '3', '100'))})", labels
        if r < 0.3:
            return f"round({inner}, 0.5)", labels
        fn = rng.choice(self.UNARY)
        return (f"-({inner})" if fn == "-" else f"{fn}({inner})"), labels

    def scalar_op(self, depth: int, subquery: bool) -> tuple[str, frozenset[str]]:
        rng = self.rng
        inner, labels = self.vector(depth - 1, subquery=subquery)
        number = rng.choice(self.NUMBERS)
        op = rng.choice(("+", "-", "*", "/", "%", "^", ">", "<", ">=", "<=", "> bool", "< bool"))
        if op == "^":
            number = rng.choice(("2", "0.5"))
        elif op[0] in "<>":
            number = rng.choice(self.THRESHOLDS)
        if rng.random() < 0.3:
            return f"{number} {op} ({inner})", labels
        return f"({inner}) {op} {number}", labels

    def both_sides(self, depth: int, subquery: bool) -> tuple[str, str, frozenset[str]]:
        """Two vectors aggregated by the same labels, so that they match one-to-one."""
        rng = self.rng
        (lhs, left), (rhs, right) = (self.vector(depth - 1, subquery=subquery) for _ in "lr")
        common = sorted(left & right)
        group = rng.sample(common, min(len(common), rng.choice((0, 1, 1, 2))))
        by = ", ".join(group)
        ops = [rng.choice(("sum", "avg", "max", "min", "count")) for _ in "lr"]
        return f"{ops[0]} by ({by}) ({lhs})", f"{ops[1]} by ({by}) ({rhs})", frozenset(group)

    def vector_op(self, depth: int, subquery: bool) -> tuple[str, frozenset[str]]:
        lhs, rhs, labels = self.both_sides(depth, subquery)
        # No %: between two computed values it turns a last-bit difference into any other.
        op = self.rng.choice(("+", "-", "*", "/", "and", "or", "unless"))
        return f"({lhs}) {op} ({rhs})", labels

    def group_left(self, depth: int, subquery: bool) -> tuple[str, frozenset[str]]:
        rng = self.rng
        (lhs, labels), (rhs, right) = (self.vector(depth - 1, subquery=subquery) for _ in "lr")
        common = sorted(labels & right)
        if not common:
            return lhs, labels
        on = rng.sample(common, min(len(common), rng.choice((1, 2))))
        op = rng.choice(("/", "*", "-", "+"))
        agg = rng.choice(("sum", "max", "avg"))
        by = ", ".join(on)
        return f"({lhs}) {op} on({by}) group_left {agg} by ({by}) ({rhs})", labels

    def subquery(self, depth: int) -> tuple[str, frozenset[str]]:
        rng = self.rng
        inner, labels = self.vector(depth - 1, subquery=False)
        window = rng.choice(("5m", "10m", "30m"))
        step = rng.choice(("15s", "30s", "1m", "2m", ""))
        fn = rng.choice((*self.OVER_TIME, "delta", "deriv", "changes"))
        name = fn if fn in ("delta", "deriv", "changes") else f"{fn}_over_time"
        return f"{name}(({inner})[{window}:{step}]{self.offset()})", labels


def all_cases() -> list[tuple[str, Case]]:
    generator = QueryGenerator(SEED)
    unique = dict.fromkeys(generator.query() for _ in range(GENERATED * 2))
    chosen = [expr for expr in unique if expr not in {c.expr for c in HANDWRITTEN}][:GENERATED]
    return [(f"hand-{i:03d}", case) for i, case in enumerate(HANDWRITTEN)] + [
        (f"gen-{i:03d}", Case(expr)) for i, expr in enumerate(chosen)
    ]


CASES = all_cases()


# -- fixtures and the test --------------------------------------------------------------------


@dataclass
class Backends:
    prometheus: Prometheus
    engine: Engine
    samples: int


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("`promtool` is not on PATH (Debian: apt-get install prometheus)")
    tmp = tmp_path_factory.mktemp("promql-differential")
    source = tmp / "history.om"
    samples = write_openmetrics(build_families(SEED), source)
    data = tmp / "prometheus-data"
    created = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    store = Store(tmp / "inferwatch.db", retention_seconds=None, fsync="never")
    imported = import_openmetrics(store, source)
    assert imported.samples == samples
    prometheus = Prometheus(tmp, data)
    try:
        yield Backends(prometheus, Engine(store), samples)
    finally:
        prometheus.stop()
        store.close()


def test_the_data_are_the_same_in_both(backends: Backends) -> None:
    expr = '{__name__=~".+"}[3h]'
    at = T0_MS + 3 * 3_600_000
    theirs = backends.prometheus.instant(expr, at)
    mine = ours(lambda: backends.engine.instant_query(expr, at))
    assert sum(len(ts) for _, ts, _ in theirs.rows) == backends.samples
    assert compare("instant", theirs, mine, None) == []


@pytest.mark.parametrize("case", [case for _, case in CASES], ids=[name for name, _ in CASES])
def test_the_engine_answers_like_prometheus(backends: Backends, case: Case) -> None:
    prom, engine = backends.prometheus, backends.engine
    problems: list[str] = []
    for at in INSTANT_TIMES_MS:
        theirs = prom.instant(case.expr, at)
        mine = ours(lambda at=at: engine.instant_query(case.expr, at))
        problems += compare(f"instant {when(at)}", theirs, mine, case.order, case.ties)
    for start, end, step in RANGES_MS:
        theirs = prom.range(case.expr, start, end, step)
        mine = ours(lambda s=start, e=end, st=step: engine.range_query(case.expr, s, e, st))
        where = f"range {when(start)}-{when(end)}/{step // 1000}s"
        problems += compare(where, theirs, mine, None, case.ties)
    shown = problems[:MAX_REPORTED]
    more = f"\n... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
    assert not problems, f"{case.expr}\n" + "\n".join(shown) + more
