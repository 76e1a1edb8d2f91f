"""Alert latency: from a metric crossing a threshold to the webhook receiving the alert.

Two pipelines watch the same signal in the same run, each with its defaults:

- **inferwatch**: ``inferwatch server`` (scrape, rules, embedded Alertmanager) with a
  Prometheus config that sets no intervals and an Alertmanager config that sets no
  timers: inferwatch's defaults (scrape and evaluate every 1 s, rules evaluated as
  soon as a scrape lands, a new group notified at once when ``group_wait`` is unset).
- **Prometheus**: a real Prometheus 2.42 (scrape and evaluation every 1 m by default)
  sending to a real Alertmanager 0.25 (``group_wait`` 30 s by default), with the same
  rule file and the same routing.

The signal is a gauge ``bench_signal{trial="k"}`` served by a loopback HTTP target;
trial ``k`` moves it from 0 to 1 at a random moment (trials are spread so that their
phases against the scrape and evaluation clocks differ). The rule is
``bench_signal > 0.5`` with no ``for``. Both Alertmanagers group by
``[alertname, trial]``, so every trial is a new group, and deliver to one loopback
webhook receiver at different paths; the latency of a trial is the time from the
flip to the first firing notification for it.

Usage: python bench/alert_latency.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from procs import Procs, free_port, wait_ready

RULES = """\
groups:
  - name: bench
    rules:
      - alert: BenchSignalHigh
        expr: bench_signal > 0.5
        labels: {severity: page}
        annotations: {summary: "signal {{ $labels.trial }} is {{ $value }}"}
"""

ALERTMANAGER = """\
route:
  receiver: hook
  group_by: [alertname, trial]
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
"""

PROMETHEUS = """\
rule_files: [rules.yml]
scrape_configs:
  - job_name: signal
    static_configs: [{{targets: ["127.0.0.1:{target}"]}}]
"""


class Signal:
    """The served gauge: one value per trial, all 0 until flipped."""

    def __init__(self, trials: int) -> None:
        self.values = dict.fromkeys(range(trials), 0.0)
        self.flipped: dict[int, float] = {}
        self.lock = threading.Lock()

    def flip(self, trial: int) -> None:
        with self.lock:
            self.values[trial] = 1.0
            self.flipped[trial] = time.time()

    def body(self) -> bytes:
        with self.lock:
            lines = ["# TYPE bench_signal gauge"]
            lines += [f'bench_signal{{trial="{k}"}} {v}' for k, v in self.values.items()]
        return ("\n".join(lines) + "\n").encode()


class Received:
    """First firing notification per (pipeline, trial): its arrival time."""

    def __init__(self) -> None:
        self.first: dict[tuple[str, int], float] = {}
        self.count: dict[str, int] = {}
        self.lock = threading.Lock()

    def add(self, pipeline: str, payload: dict[str, Any]) -> None:
        now = time.time()
        with self.lock:
            self.count[pipeline] = self.count.get(pipeline, 0) + 1
            for alert in payload.get("alerts", []):
                if alert.get("status") == "firing":
                    key = (pipeline, int(alert["labels"]["trial"]))
                    self.first.setdefault(key, now)


def serve(signal: Signal, received: Received) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the scrape target
            body = signal.body()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # the webhook receiver
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            received.add(self.path.strip("/"), payload)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def start_pipelines(procs: Procs, tmp: Path, port: int) -> None:
    (tmp / "rules.yml").write_text(RULES)
    hook = f"http://127.0.0.1:{port}"
    # inferwatch: its own config dir (same rules, same routing, its own receiver path).
    iw = tmp / "inferwatch"
    iw.mkdir()
    (iw / "rules.yml").write_text(RULES)
    (iw / "prometheus.yml").write_text(PROMETHEUS.format(target=port))
    (iw / "alertmanager.yml").write_text(ALERTMANAGER.format(url=f"{hook}/inferwatch"))
    iw_port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "inferwatch",
        "server",
        "--config",
        str(iw / "prometheus.yml"),
        "--alertmanager-config",
        str(iw / "alertmanager.yml"),
        "--db",
        str(iw / "inferwatch.db"),
        "--port",
        str(iw_port),
    ]
    proc = procs.start(cmd, log=iw / "log.txt")
    wait_ready(f"http://127.0.0.1:{iw_port}/-/ready", proc, iw / "log.txt")
    # Prometheus + Alertmanager.
    am_port = free_port()
    (tmp / "alertmanager.yml").write_text(ALERTMANAGER.format(url=f"{hook}/prometheus"))
    am_cmd = [
        "/usr/bin/prometheus-alertmanager",
        f"--config.file={tmp / 'alertmanager.yml'}",
        f"--storage.path={tmp / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{am_port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    proc = procs.start(am_cmd, log=tmp / "am.log")
    wait_ready(f"http://127.0.0.1:{am_port}/-/ready", proc, tmp / "am.log")
    prom_config = PROMETHEUS.format(target=port) + (
        f"alerting:\n  alertmanagers:\n    - static_configs: "
        f'[{{targets: ["127.0.0.1:{am_port}"]}}]\n'
    )
    (tmp / "prometheus.yml").write_text(prom_config)
    prom_port = free_port()
    prom_cmd = [
        "/usr/bin/prometheus",
        f"--config.file={tmp / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp / 'prom-data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
        "--log.level=warn",
    ]
    proc = procs.start(prom_cmd, log=tmp / "prom.log")
    wait_ready(f"http://127.0.0.1:{prom_port}/-/ready", proc, tmp / "prom.log")


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(latencies), 3),
        "mean_s": round(statistics.fmean(latencies), 3),
        "max_s": round(max(latencies), 3),
        "min_s": round(min(latencies), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 trials instead of 6")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    trials = 2 if args.quick else 6
    gap = 15.0 if args.quick else 20.0
    rng = random.Random(args.seed)
    signal, received = Signal(trials), Received()
    server, port = serve(signal, received)
    procs = Procs()
    t0 = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f} s] {text}", flush=True)

    try:
        with tempfile.TemporaryDirectory(prefix="iw-alert-latency-") as tmpdir:
            start_pipelines(procs, Path(tmpdir), port)
            say("inferwatch, Prometheus and Alertmanager are ready; warming up 5 s")
            time.sleep(5)
            for k in range(trials):
                time.sleep(rng.uniform(0.0, gap))
                signal.flip(k)
                say(f"trial {k}: signal crossed the threshold")
            deadline = time.monotonic() + 300
            want = {(p, k) for p in ("inferwatch", "prometheus") for k in range(trials)}
            while time.monotonic() < deadline and not want <= set(received.first):
                time.sleep(0.05)
            missing = sorted(want - set(received.first))
            if missing:
                say(f"no notification within 300 s for: {missing}")
    finally:
        procs.stop_all()
        server.shutdown()
    out: dict[str, Any] = {"quick": args.quick, "trials": trials}
    for pipeline in ("inferwatch", "prometheus"):
        lat = [
            received.first[(pipeline, k)] - signal.flipped[k]
            for k in range(trials)
            if (pipeline, k) in received.first
        ]
        out[f"{pipeline}_latencies_s"] = [round(x, 3) for x in lat]
        out[f"{pipeline}_received"] = len(lat)
        out[f"{pipeline}_notifications"] = received.count.get(pipeline, 0)
        if lat:
            out |= {f"{pipeline}_{k}": v for k, v in summary(lat).items()}
        say(f"{pipeline}: latencies {out[f'{pipeline}_latencies_s']}")
    met = out.get("inferwatch_received") == trials and out.get("inferwatch_max_s", 1e9) <= 2.0
    out["goal"] = {"inferwatch_max_s": 2.0, "met": met}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
