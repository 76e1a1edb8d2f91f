"""Rule evaluation cost: 100 rules over 10k series, milliseconds per evaluation cycle.

inferwatch against a real Prometheus 2.42 (``/usr/bin/prometheus``), in the same run:

- **Target**: a loopback HTTP server (this script with ``--serve-target``, a child
  process) exposing 10 metric families x 1,000 series: request, HTTP-request, token and
  error counters (``_total``), two histograms' ``_bucket`` series, and in-flight, queue,
  GPU-utilisation and GPU-memory gauges, labelled ``model``/``route``, ``pod``, ``code``,
  ``le``, ``gpu``, ``worker``. Values move every second: counters grow at per-model
  rates modulated by a slow sine (the same factor for every series of one model, so
  ratios and quantiles are steady and alert thresholds, placed between models, are never
  straddled), gauges wobble by a few percent around per-model levels.
- **Rules**: 100 rules in one file, four groups of 25 with ``interval`` 2 s (``--interval``):
  60 recording rules (``sum by (model) (rate(x_total[1m]))`` and its ``irate``,
  ``increase`` and per-pod forms, ``histogram_quantile`` of ``sum by (le, ...)`` rates,
  5xx and 4xx ratios, avg/max/sum of gauges, ``avg_over_time``) and 40 alerting rules
  (thresholds over raw expressions and recorded series, ``for`` from 0 s to 10 m, some
  with templated annotations, one ``absent``).
- **Prometheus** with that rule file scraping the target every 1 s, and ``inferwatch
  server --config prometheus.yml --db TMP/iw.db --port P`` with the same file (no
  Alertmanager config) scraping the same target.

After a warm-up (125 s, so 1 m rate windows are full and ``for`` clocks run; 40 s with
``--quick``), ``GET /api/v1/rules`` is polled on both every 0.2 s. Every distinct
``lastEvaluation`` of a group is one evaluation, with its ``evaluationTime``; cycle
``k`` is the sum over the groups of their ``k``-th evaluation in the window. Median and
p90 in ms over >= 30 cycles (quick: >= 12). inferwatch also evaluates early when a
scrape lands (at most 4 times per interval), so it runs more cycles per minute than
Prometheus: evaluations per minute and each process's CPU (cores, over the window) are
printed too. Sanity: ``count({__name__=~"rec:.*"})`` and its per-name counts, the
target's series count, and active/firing alerts (``/api/v1/alerts``) on both.

``--profile``: after the run, inferwatch's store is reopened in this process and one
cycle (every group, after one untimed cycle) is run under cProfile with a
:class:`RuleManager`; the top functions by own time and cumulative time are printed.

Both servers and the target share the machine's cores; on a small machine the
absolute numbers are noisy, the ratio from one interleaved run steadier.

Usage: python bench/rule_eval.py [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from procs import Procs, free_port, wait_ready

MODELS = tuple(f"model-{i}" for i in range(10))
ROUTES = tuple(f"/v1/route-{i}" for i in range(10))
PODS = tuple(f"pod-{i}" for i in range(10))
CODES = ("200", "201", "204", "400", "401", "404", "429", "500", "502", "503")
LE = ("0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf")
ERRORS = tuple(f"E{i}" for i in range(10))
GAUGES = {  # name, level of model-9 (model i sits at (i + 1) / 10 of it)
    "iw_inferences_in_flight": 40.0,
    "iw_queue_depth": 100.0,
    "iw_gpu_utilization_ratio": 1.0,
    "iw_gpu_memory_used_bytes": 80e9,
}
STEP_S = 1.0
POLL_S = 0.2
_START = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - _START:6.1f} s] {msg}", file=sys.stderr, flush=True)


# -- target ---------------------------------------------------------------------------------


class Target:
    """10k series whose values move once per step; the body is rendered once per step."""

    def __init__(self) -> None:
        self.heads: list[str] = []
        self.types: list[tuple[int, str]] = []  # (first row, TYPE line) per family
        rates: list[float] = []  # per-second increment of each counter row (0: gauge)
        levels: list[float] = []  # level of each gauge row
        groups: list[int] = []  # the model (or route) index: rows sharing a sine
        half = [(i, m, p) for i, m in enumerate(MODELS) for p in PODS]

        def family(name: str, kind: str | None) -> None:
            if kind is not None:
                self.types.append((len(self.heads), f"# TYPE {name} {kind}\n"))

        def row(head: str, rate: float, level: float, group: int) -> None:
            self.heads.append(head)
            rates.append(rate)
            levels.append(level)
            groups.append(group)

        family("iw_requests_total", "counter")
        for i, m, p in half:
            per_pod = 2.0 * (i + 1)
            five = 0.005 * (i + 1)
            shares = [0.5 - five / 2, 0.3, 0.18 - five / 2, 0.006, 0.004, 0.006, 0.004]
            shares += [five / 2, five / 4, five / 4]
            for code, share in zip(CODES, shares, strict=True):
                row(
                    f'iw_requests_total{{model="{m}",pod="{p}",code="{code}"}}',
                    per_pod * share,
                    0,
                    i,
                )
        for name, names, label in (
            ("iw_request_duration_seconds_bucket", MODELS, "model"),
            ("iw_http_request_duration_seconds_bucket", ROUTES, "route"),
        ):
            family(name, None)
            for i, m in enumerate(names):
                median = 0.02 * 1.5**i
                for p in PODS:
                    for le in LE:
                        cdf = 1.0 if le == "+Inf" else _lognormal_cdf(float(le), median, 0.5)
                        head = f'{name}{{{label}="{m}",pod="{p}",le="{le}"}}'
                        row(head, 2.0 * (i + 1) * cdf, 0, i)
        family("iw_http_requests_total", "counter")
        for i, r in enumerate(ROUTES):
            for p in PODS:
                for j, code in enumerate(CODES):
                    share = 0.002 * (i + 1) if j >= 7 else (1 - 0.006 * (i + 1)) / 7
                    head = f'iw_http_requests_total{{route="{r}",pod="{p}",status="{code}"}}'
                    row(head, 3.0 * (i + 1) * share, 0, i)
        family("iw_tokens_total", "counter")
        for i, m, p in half:
            for g in range(10):
                row(f'iw_tokens_total{{model="{m}",pod="{p}",gpu="{g}"}}', 50.0 * (i + 1), 0, i)
        family("iw_errors_total", "counter")
        for i, m, p in half:
            for j, e in enumerate(ERRORS):
                head = f'iw_errors_total{{model="{m}",pod="{p}",error_type="{e}"}}'
                row(head, 0.001 * (i + 1) * (j + 1), 0, i)
        for name, top in GAUGES.items():
            family(name, "gauge")
            sub = "gpu" if "gpu" in name else "worker"
            for i, m, p in half:
                pod_skew = 1 + 0.002 * int(p.rsplit("-", 1)[1])
                for k in range(10):
                    head = f'{name}{{model="{m}",pod="{p}",{sub}="{k}"}}'
                    row(head, 0, top * (i + 1) / 10 * pod_skew, i)
        self.rates = np.array(rates)
        self.levels = np.array(levels)
        self.groups = np.array(groups)
        self.is_counter = self.rates > 0
        self.values = np.where(self.is_counter, self.rates * 3600.0, self.levels)
        self.step = 0
        self.body = self.render()

    def advance(self) -> None:
        """One step: counters grow, gauges move (slow sine per model, phase per model)."""
        self.step += 1
        t = self.step * STEP_S
        phase = self.groups * 0.7
        factor = 1 + 0.1 * np.sin(2 * np.pi * t / 97 + phase)
        wobble = 1 + 0.03 * np.sin(2 * np.pi * t / 13 + phase + np.arange(len(self.heads)) * 0.01)
        self.values = np.where(
            self.is_counter, self.values + self.rates * factor * STEP_S, self.levels * wobble
        )
        self.body = self.render()

    def render(self) -> bytes:
        types = dict(self.types)
        parts: list[str] = []
        for j, (head, v) in enumerate(zip(self.heads, self.values.tolist(), strict=True)):
            if j in types:
                parts.append(types[j])
            parts.append(f"{head} {v!r}\n")
        return "".join(parts).encode()


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    return 0.5 * (1 + math.erf(math.log(x / median) / (sigma * math.sqrt(2))))


def serve_target() -> None:
    """Serve :class:`Target` on a free loopback port; print ``PORT <n>``; step each second."""
    target = Target()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = target.body
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"PORT {server.server_address[1]} SERIES {len(target.heads)}", flush=True)
    next_step = time.monotonic() + STEP_S
    while True:
        time.sleep(max(0.0, next_step - time.monotonic()))
        next_step += STEP_S
        target.advance()


# -- rules ----------------------------------------------------------------------------------


def rule_groups(interval: str) -> list[dict[str, Any]]:
    """100 rules: 60 recording, 40 alerting, four groups of 25 (recording rules first)."""
    rec: list[dict[str, Any]] = []

    def record(name: str, expr: str) -> None:
        rec.append({"record": f"rec:{name}", "expr": expr})

    counters = (
        ("iw_requests_total", "model", "requests"),
        ("iw_http_requests_total", "route", "http_requests"),
        ("iw_tokens_total", "model", "tokens"),
        ("iw_errors_total", "model", "errors"),
    )
    for metric, by, short in counters:
        record(f"{short}:rate1m:by_{by}", f"sum by ({by}) (rate({metric}[1m]))")
        record(f"{short}:rate1m:by_pod", f"sum by (pod) (rate({metric}[1m]))")
        record(f"{short}:rate1m:by_{by}_pod", f"sum by ({by}, pod) (rate({metric}[1m]))")
        record(f"{short}:rate1m", f"sum(rate({metric}[1m]))")
        record(f"{short}:irate1m:by_{by}", f"sum by ({by}) (irate({metric}[1m]))")
        record(f"{short}:increase2m:by_{by}", f"sum by ({by}) (increase({metric}[2m]))")
    for metric, by, short in (
        ("iw_request_duration_seconds_bucket", "model", "latency"),
        ("iw_http_request_duration_seconds_bucket", "route", "http_latency"),
    ):
        for q in ("0.5", "0.9", "0.99"):
            record(
                f"{short}:p{q[2:]}:by_{by}",
                f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}[1m])))",
            )
        record(
            f"{short}:p99:by_pod",
            f"histogram_quantile(0.99, sum by (le, pod) (rate({metric}[1m])))",
        )
        record(f"{short}:p99", f"histogram_quantile(0.99, sum by (le) (rate({metric}[1m])))")
        record(
            f"{short}:under_250ms:ratio_by_{by}",
            f'sum by ({by}) (rate({metric}{{le="0.25"}}[1m]))'
            f' / sum by ({by}) (rate({metric}{{le="+Inf"}}[1m]))',
        )
    record(
        "requests:5xx_ratio:by_model",
        'sum by (model) (rate(iw_requests_total{code=~"5.."}[1m]))'
        " / sum by (model) (rate(iw_requests_total[1m]))",
    )
    record(
        "requests:4xx_ratio:by_model",
        'sum by (model) (rate(iw_requests_total{code=~"4.."}[1m]))'
        " / sum by (model) (rate(iw_requests_total[1m]))",
    )
    record(
        "http_requests:5xx_ratio:by_route",
        'sum by (route) (rate(iw_http_requests_total{status=~"5.."}[1m]))'
        " / sum by (route) (rate(iw_http_requests_total[1m]))",
    )
    record(
        "errors:per_request:by_model",
        "sum by (model) (rate(iw_errors_total[1m])) / sum by (model) (rate(iw_requests_total[1m]))",
    )
    record(
        "tokens:per_request:by_model",
        "sum by (model) (rate(iw_tokens_total[1m])) / sum by (model) (rate(iw_requests_total[1m]))",
    )
    for g in GAUGES:
        short = g.removeprefix("iw_")
        record(f"{short}:avg:by_model", f"avg by (model) ({g})")
        record(f"{short}:max:by_model", f"max by (model) ({g})")
        record(f"{short}:max:by_pod", f"max by (pod) ({g})")
        record(f"{short}:sum:by_model", f"sum by (model) ({g})")
    record(
        "gpu_utilization:avg1m:by_model",
        "avg by (model) (avg_over_time(iw_gpu_utilization_ratio[1m]))",
    )
    record("queue_depth:max1m:by_model", "max by (model) (max_over_time(iw_queue_depth[1m]))")
    record(
        "inferences_in_flight:quantile90:by_model",
        "quantile by (model) (0.9, iw_inferences_in_flight)",
    )
    assert len(rec) == 60, len(rec)

    alerts: list[dict[str, Any]] = []
    fors = ("0s", "15s", "1m", "10m")

    def alert(name: str, expr: str, n: int, annotate: bool = False) -> None:
        a: dict[str, Any] = {
            "alert": name,
            "expr": expr,
            "for": fors[n % len(fors)],
            "labels": {"severity": "page" if n % 3 == 0 else "ticket"},
        }
        if annotate:
            a["annotations"] = {
                "summary": "{{ $labels.model }}{{ $labels.route }} at {{ $value | humanize }}",
                "description": "Rule {{ $labels.alertname }} over threshold on {{ $labels.pod }}",
            }
        alerts.append(a)

    n = 0
    for g, top in GAUGES.items():
        short = g.removeprefix("iw_")
        for frac in (0.35, 0.75):  # between models: (i + 1) / 10 never lands near these
            alert(
                f"{short}_avg_high_{int(frac * 100)}",
                f"avg by (model) ({g}) > {top * frac:g}",
                n,
                n % 2 == 0,
            )
            n += 1
        alert(f"{short}_max_by_pod_high", f"max by (model, pod) ({g}) > {top * 0.85:g}", n)
        n += 1
        alert(f"{short}_recorded_high", f"rec:{short}:max:by_model > {top * 0.55:g}", n, True)
        n += 1
    for by, metric, per in (
        ("model", "iw_requests_total", 20.0),
        ("route", "iw_http_requests_total", 30.0),
    ):
        short = metric.removeprefix("iw_").removesuffix("_total")
        for k in (1.5, 2.5):  # the +-10% swings of higher models overlap
            alert(f"{short}_rate_low_{k:g}", f"sum by ({by}) (rate({metric}[1m])) < {per * k:g}", n)
            n += 1
        alert(f"{short}_recorded_rate_high", f"rec:{short}:rate1m:by_{by} > {per * 3.5:g}", n, True)
        n += 1
    for k in (3.5, 7.5):
        alert(
            f"requests_5xx_ratio_high_{k:g}",
            'sum by (model) (rate(iw_requests_total{code=~"5.."}[1m]))'
            f" / sum by (model) (rate(iw_requests_total[1m])) > {0.005 * k:g}",
            n,
            True,
        )
        n += 1
    alert("requests_5xx_recorded_high", "rec:requests:5xx_ratio:by_model > 0.0275", n, True)
    n += 1
    alert("http_5xx_recorded_high", "rec:http_requests:5xx_ratio:by_route > 0.0135", n)
    n += 1
    for q, thr in (("0.99", 0.6), ("0.9", 0.3), ("0.5", 0.1)):
        alert(
            f"latency_p{q[2:]}_high",
            f"histogram_quantile({q}, sum by (le, model)"
            f" (rate(iw_request_duration_seconds_bucket[1m]))) > {thr}",
            n,
            True,
        )
        n += 1
    alert("http_latency_p99_recorded_high", "rec:http_latency:p99:by_route > 0.6", n)
    n += 1
    alert("latency_under_250ms_low", "rec:latency:under_250ms:ratio_by_model < 0.5", n)
    n += 1
    alert("errors_per_request_high", "rec:errors:per_request:by_model > 0.0125", n, True)
    n += 1
    alert("tokens_rate_total_high", "rec:tokens:rate1m > 1000", n)
    n += 1
    alert("errors_rate_by_pod_high", "sum by (pod) (rate(iw_errors_total[1m])) > 0.5", n)
    n += 1
    alert("target_down", "up == 0", n)
    n += 1
    alert("metric_absent", "absent(iw_model_loaded_info)", n)
    n += 1
    alert("queue_depth_growing", "max by (model) (max_over_time(iw_queue_depth[1m])) > 75", n)
    n += 1
    alert("gpu_memory_per_pod_high", "sum by (pod) (iw_gpu_memory_used_bytes) > 4e12", n)
    n += 1
    alert(
        "in_flight_skew",
        "max by (model) (iw_inferences_in_flight) / avg by (model) (iw_inferences_in_flight) > 1.5",
        n,
    )
    n += 1
    alert("gpu_idle", "avg by (model) (iw_gpu_utilization_ratio) < 0.15", n)
    n += 1
    assert len(alerts) == 40, len(alerts)
    rules = rec + alerts
    return [
        {"name": f"inference-{k}", "interval": interval, "rules": rules[k * 25 : (k + 1) * 25]}
        for k in range(4)
    ]


# -- servers --------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def query(url: str, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=30)
    r.raise_for_status()
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


def scalar_count(url: str, expr: str) -> int:
    result = query(url, expr)
    return int(float(result[0]["value"][1])) if result else 0


class Sampler:
    """Distinct evaluations of each group (and rule) seen by polling ``/api/v1/rules``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: dict[str, set[str]] = {}
        self.group_ms: dict[str, list[float]] = {}
        self.rule_ms: dict[str, list[float]] = {}
        self.polls = 0

    def poll(self, client: httpx.Client) -> None:
        groups = client.get(f"{self.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        self.polls += 1
        for g in groups:
            seen = self.seen.setdefault(g["name"], set())
            if g["lastEvaluation"] in seen or g["lastEvaluation"].startswith("0001-"):
                continue
            seen.add(g["lastEvaluation"])
            self.group_ms.setdefault(g["name"], []).append(g["evaluationTime"] * 1000)
            for rule in g["rules"]:
                self.rule_ms.setdefault(rule["name"], []).append(rule["evaluationTime"] * 1000)

    def cycles(self) -> list[float]:
        """Cycle ``k``: the sum over groups of each group's ``k``-th evaluation."""
        if not self.group_ms:
            return []
        n = min(len(v) for v in self.group_ms.values())
        return [sum(v[k] for v in self.group_ms.values()) for k in range(n)]

    def evaluations(self) -> int:
        return sum(len(v) for v in self.group_ms.values())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def profile_cycle(db: Path, rule_file: Path, interval_s: float) -> list[str]:
    """One cycle of every group under cProfile over the stopped server's store."""
    import cProfile
    import pstats

    from inferwatch.rules.manager import RuleManager
    from inferwatch.tsdb.store import Store

    lines: list[str] = []
    with Store(db, retention_seconds=None) as store:
        manager = RuleManager(store, evaluation_interval_s=interval_s)
        manager.load([rule_file])
        now = time.time()
        for group in manager.groups():  # untimed: warm caches
            group.eval(now - interval_s)
        t = time.perf_counter()
        profiler = cProfile.Profile()
        profiler.enable()
        for group in manager.groups():
            group.eval(now)
        profiler.disable()
        wall = (time.perf_counter() - t) * 1000
        lines.append(f"profiled cycle: {wall:.1f} ms wall under cProfile")
        stats = pstats.Stats(profiler)
        total = stats.total_tt  # type: ignore[attr-defined]
        entries = stats.stats  # type: ignore[attr-defined]
        for key, title in (("tottime", "own time"), ("cumulative", "cumulative")):
            idx = 2 if key == "tottime" else 3
            ranked = sorted(entries.items(), key=lambda kv: kv[1][idx], reverse=True)[:20]
            lines.append(f"top by {title} (of {total * 1000:.1f} ms profiled):")
            for (file, line, func), st in ranked:
                short = file.split("/src/", 1)[-1].split("site-packages/", 1)[-1]
                lines.append(
                    f"  {st[idx] * 1000:8.1f} ms  calls {st[1]:>7}  {short}:{line}({func})"
                )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="40 s warm-up, >= 10 cycles")
    ap.add_argument("--profile", action="store_true", help="cProfile one inferwatch cycle after")
    ap.add_argument("--interval", default="2s", help="rule group interval (default 2s)")
    ap.add_argument("--serve-target", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_target:
        serve_target()
        return
    warmup_s = 40.0 if args.quick else 125.0
    min_cycles = 12 if args.quick else 30
    interval_s = float(args.interval.removesuffix("s"))
    tmp = Path(tempfile.mkdtemp(prefix="inferwatch-bench-rules-"))
    procs = Procs()
    out: dict[str, Any] = {"bench": "rule_eval", "quick": args.quick, "cpus": os.cpu_count()}
    try:
        target = procs.start(
            [sys.executable, str(Path(__file__).resolve()), "--serve-target"],
            stdout=subprocess.PIPE,
        )
        assert target.stdout is not None
        line = target.stdout.readline().decode().split()
        if not line or line[0] != "PORT":
            raise RuntimeError(f"target did not start: {line!r}")
        target_port, series = int(line[1]), int(line[3])
        log(f"target on 127.0.0.1:{target_port}: {series} series")
        rule_file = tmp / "rules.yml"
        groups = rule_groups(args.interval)
        rule_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, width=1000))
        check = subprocess.run(
            ["promtool", "check", "rules", str(rule_file)], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise RuntimeError(f"promtool check rules failed: {check.stdout}{check.stderr}")
        config = tmp / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": "1s",
                        "scrape_timeout": "1s",
                        "evaluation_interval": args.interval,
                    },
                    "rule_files": [str(rule_file)],
                    "scrape_configs": [
                        {
                            "job_name": "bench",
                            "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                        }
                    ],
                },
                sort_keys=False,
            )
        )
        prom_port, iw_port = free_port(), free_port()
        prom_log, iw_log = tmp / "prometheus.log", tmp / "inferwatch.log"
        prom = procs.start(
            [
                "/usr/bin/prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
            log=prom_log,
        )
        inferwatch_bin = Path(sys.executable).parent / "inferwatch"
        db = tmp / "iw.db"
        iw = procs.start(
            [
                str(inferwatch_bin),
                "server",
                "--config",
                str(config),
                "--db",
                str(db),
                "--port",
                str(iw_port),
            ],
            log=iw_log,
        )
        prom_url, iw_url = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{iw_port}"
        wait_ready(f"{prom_url}/-/ready", prom, prom_log)
        wait_ready(f"{iw_url}/-/ready", iw, iw_log)
        log(f"prometheus on {prom_url}, inferwatch on {iw_url}; warming up {warmup_s:.0f} s")
        deadline = time.monotonic() + warmup_s
        while time.monotonic() < deadline:
            time.sleep(min(30.0, max(0.0, deadline - time.monotonic())))
            for name, url, proc in (("prometheus", prom_url, prom), ("inferwatch", iw_url, iw)):
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited during the warm-up")
                with contextlib.suppress(httpx.HTTPError, KeyError, IndexError):
                    n = scalar_count(url, 'count({__name__=~"rec:.*"})')
                    log(f"  {name}: {n} rec:* series")
        samplers = {"inferwatch": Sampler(iw_url), "prometheus": Sampler(prom_url)}
        pids = {"inferwatch": iw.pid, "prometheus": prom.pid}
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        t0 = time.monotonic()
        log(f"sampling /api/v1/rules every {POLL_S} s until >= {min_cycles} cycles each")
        next_log = t0 + 15
        with httpx.Client() as client:
            while True:
                for s in samplers.values():
                    s.poll(client)
                now = time.monotonic()
                done = min(len(s.cycles()) for s in samplers.values())
                if now >= next_log:
                    next_log = now + 15
                    log(
                        "  cycles: "
                        + ", ".join(f"{k} {len(s.cycles())}" for k, s in samplers.items())
                    )
                if done >= min_cycles or now - t0 > 600:
                    break
                time.sleep(POLL_S)
        window = time.monotonic() - t0
        cpu1 = {k: cpu_seconds(p) for k, p in pids.items()}
        out.update(
            {"series": series, "rules": 100, "groups": len(groups), "interval_s": interval_s}
        )
        out["sampling_window_s"] = round(window, 1)
        for name, s in samplers.items():
            cycles = s.cycles()
            out[f"{name}_cycle_ms_median"] = round(statistics.median(cycles), 3)
            out[f"{name}_cycle_ms_p90"] = round(pct(cycles, 0.9), 3)
            out[f"{name}_cycles"] = len(cycles)
            out[f"{name}_group_evaluations"] = s.evaluations()
            out[f"{name}_group_evaluations_per_min"] = round(s.evaluations() / window * 60, 1)
            out[f"{name}_cpu_cores"] = round((cpu1[name] - cpu0[name]) / window, 3)
            slow = sorted(s.rule_ms.items(), key=lambda kv: statistics.median(kv[1]), reverse=True)
            out[f"{name}_slowest_rules_ms"] = {
                k: round(statistics.median(v), 3) for k, v in slow[:5]
            }
            log(
                f"{name}: cycle median {out[f'{name}_cycle_ms_median']:.2f} ms, p90 "
                f"{out[f'{name}_cycle_ms_p90']:.2f} ms over {len(cycles)} cycles "
                f"({s.evaluations()} group evaluations, {s.polls} polls), CPU "
                f"{out[f'{name}_cpu_cores']} cores"
            )
        out["ratio_median"] = round(
            out["inferwatch_cycle_ms_median"] / out["prometheus_cycle_ms_median"], 2
        )
        out["ratio_p90"] = round(out["inferwatch_cycle_ms_p90"] / out["prometheus_cycle_ms_p90"], 2)
        # Sanity: the same recorded series and the same alerts on both.
        by_name: dict[str, dict[str, int]] = {}
        active: dict[str, set[tuple[str, str, str]]] = {}
        for name, url in (("inferwatch", iw_url), ("prometheus", prom_url)):
            out[f"{name}_target_series"] = scalar_count(url, 'count({__name__=~"iw_.*"})')
            out[f"{name}_rec_series"] = scalar_count(url, 'count({__name__=~"rec:.*"})')
            by_name[name] = {
                r["metric"]["__name__"]: int(float(r["value"][1]))
                for r in query(url, 'count by (__name__) ({__name__=~"rec:.*"})')
            }
            alerts = httpx.get(f"{url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
            out[f"{name}_alerts_active"] = len(alerts)
            active[name] = {
                (
                    a["labels"]["alertname"],
                    a["labels"].get("model", a["labels"].get("route", "")),
                    a["labels"].get("pod", ""),
                )
                for a in alerts
            }
            out[f"{name}_alerts_firing"] = sum(a["state"] == "firing" for a in alerts)
        differ = sorted(
            k
            for k in by_name["inferwatch"].keys() | by_name["prometheus"].keys()
            if by_name["inferwatch"].get(k) != by_name["prometheus"].get(k)
        )
        out["alerts_only_inferwatch"] = sorted(
            map(list, active["inferwatch"] - active["prometheus"])
        )[:10]
        out["alerts_only_prometheus"] = sorted(
            map(list, active["prometheus"] - active["inferwatch"])
        )[:10]
        out["rec_names"] = len(by_name["prometheus"])
        out["rec_series_per_name_differ"] = differ
        out["same_rec_series"] = (
            out["inferwatch_rec_series"] == out["prometheus_rec_series"] and not differ
        )
        out["same_alerts_active"] = (
            out["inferwatch_alerts_active"] == out["prometheus_alerts_active"]
        )
        out["same_alerts_firing"] = (
            out["inferwatch_alerts_firing"] == out["prometheus_alerts_firing"]
        )
        log(
            f"rec:* series inferwatch {out['inferwatch_rec_series']} / prometheus "
            f"{out['prometheus_rec_series']}; alerts active {out['inferwatch_alerts_active']} / "
            f"{out['prometheus_alerts_active']}, firing {out['inferwatch_alerts_firing']} / "
            f"{out['prometheus_alerts_firing']}" + (f"; differ: {differ}" if differ else "")
        )
        if args.profile:
            procs.stop(iw)
            for text in profile_cycle(db, rule_file, interval_s):
                log(text)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
