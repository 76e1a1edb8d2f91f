"""Requests/s of a FastAPI app: plain, with inferwatch, and with prometheus-fastapi-instrumentator.

The app has ``POST /predict`` (a pydantic body, a small JSON answer) and
``GET /items/{item_id}``; the load alternates between them. Each variant runs in its own
uvicorn process (one worker, no access log, uvloop and httptools when installed, else
asyncio and h11; the same for all) on a free loopback port:

- ``plain``: the app alone;
- ``inferwatch``: ``Monitor("bench", "1").instrument(app)`` (default registry);
- ``instrumentator``: ``Instrumentator().instrument(app).expose(app)`` (defaults).

The load generator is ``wrk`` (``apt-get install wrk``; one thread, fixed keep-alive
connections, a Lua script for the request mix) in its own process; without wrk a
Python asyncio client with the same connection count stands in (compare its figures
only with each other, not with wrk's). With two or more CPUs the servers are pinned
to one CPU and the load generator and this driver to another.

While the load runs, the driver scrapes ``/metrics`` of the instrumented variants every
``--scrape-interval`` seconds, so the work deferred to collection time is paid inside
the measurement. Every run gets a fresh server and a warm-up, and the rotation (plain,
inferwatch, instrumentator) is repeated; the figures are medians over rotations, and
each ratio to plain is given both as the ratio of the medians and as the median of the
per-rotation ratios (steadier when other work shares the machine). At the
end the request count each instrumented server reports is compared with the count the
load generator saw (a sanity check: the server's count should be at least as large).

Usage: python bench/http_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from procs import free_port, pin

VARIANTS = ("plain", "inferwatch", "instrumentator")
CONNECTIONS = 32
PREDICT_BODY = b'{"x": [0.5, 1.5, 2.5, 3.5]}'

WRK_SCRIPT = """
local i = 0
local body = '@BODY@'
request = function()
  i = i + 1
  if i % 2 == 0 then
    return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, body)
  end
  return wrk.format("GET", "/items/" .. (i % 100))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {"requests": %d, "duration_us": %d, "errors": %d, "non_2xx": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99)))
end
""".replace("@BODY@", PREDICT_BODY.decode())


# -- the server side -------------------------------------------------------------------


class Features(BaseModel):
    x: list[float]


def build_app(variant: str) -> Any:
    """The benchmark app, instrumented as ``variant`` says."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/predict")
    async def predict(features: Features) -> dict[str, float]:
        xs = features.x
        return {"score": sum(xs) / len(xs), "n": float(len(xs))}

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "name": f"item-{item_id}"}

    if variant == "inferwatch":
        from inferwatch import Monitor

        Monitor("bench", "1").instrument(app)
    elif variant == "instrumentator":
        from prometheus_fastapi_instrumentator import Instrumentator

        Instrumentator().instrument(app).expose(app)
    return app


def server_options() -> dict[str, str]:
    """uvicorn's event loop and HTTP parser: the fast ones when installed."""
    has = importlib.util.find_spec
    return {
        "loop": "uvloop" if has("uvloop") else "asyncio",
        "http": "httptools" if has("httptools") else "h11",
    }


def serve(variant: str, port: int) -> None:
    import uvicorn

    uvicorn.run(
        build_app(variant),
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_level="warning",
        **server_options(),  # type: ignore[arg-type]
    )


# -- the load side ---------------------------------------------------------------------


async def _client(
    port: int, stop_at: float, latencies: list[float], errors: list[int], i0: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    get_head = "GET /items/{} HTTP/1.1\r\nHost: bench\r\n\r\n"
    post = (
        b"POST /predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(PREDICT_BODY), PREDICT_BODY)
    )
    i = i0
    perf = time.perf_counter
    try:
        while perf() < stop_at:
            i += 1
            req = post if i % 2 == 0 else get_head.format(i % 100).encode()
            t0 = perf()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(perf() - t0)
            if not head.startswith(b"HTTP/1.1 2"):
                errors[1] += 1
    except (OSError, asyncio.IncompleteReadError):
        errors[0] += 1
    finally:
        writer.close()


async def _python_load(port: int, seconds: float, connections: int) -> dict[str, int]:
    latencies: list[float] = []
    errors = [0, 0]
    t0 = time.perf_counter()
    stop_at = t0 + seconds
    await asyncio.gather(
        *(_client(port, stop_at, latencies, errors, c) for c in range(connections))
    )
    elapsed = time.perf_counter() - t0
    lat = sorted(latencies) or [0.0]
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "errors": errors[0],
        "non_2xx": errors[1],
        "p50_us": int(lat[len(lat) // 2] * 1e6),
        "p99_us": int(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6),
    }


def python_load(port: int, seconds: float, connections: int) -> None:
    result = asyncio.run(_python_load(port, seconds, connections))
    print("RESULT " + json.dumps(result))


# -- the driver ------------------------------------------------------------------------


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return int(r.status), bytes(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, b""


@contextlib.contextmanager
def server(variant: str, cpus: set[int] | None) -> Iterator[int]:
    """Start one variant's server, wait until it answers, and stop it afterwards."""
    port = free_port()
    cmd = [sys.executable, os.path.abspath(__file__), "--serve", variant, "--port", str(port)]
    proc = subprocess.Popen(cmd, preexec_fn=pin(cpus))
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{variant} server exited with {proc.returncode}")
            with contextlib.suppress(OSError):
                if http_get(port, "/items/1", timeout=1.0)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{variant} server not ready after 30 s")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Load:
    """Runs the load generator (wrk, else the Python client) against one port."""

    def __init__(self, cpus: set[int] | None, connections: int, scrape_interval: float):
        self.cpus = cpus
        self.connections = connections
        self.scrape_interval = scrape_interval
        self.wrk = shutil.which("wrk")
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(WRK_SCRIPT)
        self.script = f.name

    @property
    def name(self) -> str:
        return "wrk" if self.wrk else "python-asyncio"

    def close(self) -> None:
        os.unlink(self.script)

    def run(self, port: int, seconds: float, scrape: bool) -> dict[str, Any]:
        if self.wrk:
            cmd = [
                self.wrk,
                "-t1",
                f"-c{self.connections}",
                f"-d{seconds:g}s",
                "-s",
                self.script,
                f"http://127.0.0.1:{port}",
            ]
        else:
            cmd = [sys.executable, os.path.abspath(__file__), "--load", str(port)]
            cmd += ["--seconds", str(seconds), "--connections", str(self.connections)]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=pin(self.cpus)
        )
        try:
            next_scrape = time.monotonic() + self.scrape_interval
            while proc.poll() is None:
                time.sleep(0.05)
                if scrape and self.scrape_interval > 0 and time.monotonic() >= next_scrape:
                    http_get(port, "/metrics")
                    next_scrape += self.scrape_interval
            out, err = proc.communicate()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for line in out.decode().splitlines():
            if line.startswith("RESULT "):
                result: dict[str, Any] = json.loads(line[len("RESULT ") :])
                return result
        raise RuntimeError(f"load generator gave no result: {out.decode()} {err.decode()}")


def reported_requests(port: int, metric: str) -> float:
    """The sum of ``metric`` over all its series on the server's ``/metrics``."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = http_get(port, "/metrics")
    if status != 200:
        return float("nan")
    total = 0.0
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == metric:
                total += sample.value
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up, 3 rotations")
    parser.add_argument("--rotations", type=int, help="rotations (default 5; --quick: 3)")
    parser.add_argument("--seconds", type=float, help="seconds measured per run")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--scrape-interval", type=float, default=2.0, help="0: no scrapes")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.load:
        python_load(args.load, args.seconds, args.connections)
        return

    seconds = args.seconds or (3.0 if args.quick else 10.0)
    warmup = 1.0 if args.quick else 2.0
    rotations = args.rotations or (3 if args.quick else 5)

    server_cpus: set[int] | None = None
    load_cpus: set[int] | None = None
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            server_cpus, load_cpus = {cpus[0]}, set(cpus[1:])
            os.sched_setaffinity(0, load_cpus)

    load = Load(load_cpus, args.connections, args.scrape_interval)
    print(
        f"load: {load.name}, {args.connections} connections, {seconds:g} s runs after "
        f"{warmup:g} s warm-up, {rotations} rotations; server: {server_options()}; "
        f"server CPUs {server_cpus}, load CPUs {load_cpus}",
        file=sys.stderr,
    )
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    # Per instrumented variant: (requests its last server reported, requests sent to it).
    checks: dict[str, tuple[float, int]] = {}
    try:
        for rotation in range(rotations):
            for variant in VARIANTS:
                with server(variant, server_cpus) as port:
                    scrape = variant != "plain"
                    warm = load.run(port, warmup, scrape)
                    result = load.run(port, seconds, scrape)
                    if rotation == rotations - 1 and scrape:
                        metric = {
                            "inferwatch": "inferwatch_http_requests_total",
                            "instrumentator": "http_requests_total",
                        }[variant]
                        sent = warm["requests"] + result["requests"]
                        checks[variant] = (reported_requests(port, metric), sent)
                rps = result["requests"] / (result["duration_us"] / 1e6)
                result["rps"] = round(rps, 1)
                runs[variant].append(result)
                print(
                    f"rotation {rotation + 1}/{rotations} {variant:15s} {rps:9.1f} req/s  "
                    f"p50 {result['p50_us'] / 1000:.2f} ms  p99 {result['p99_us'] / 1000:.2f} ms"
                    f"  errors {result['errors']} non-2xx {result['non_2xx']}",
                    file=sys.stderr,
                )
    finally:
        load.close()

    results: dict[str, Any] = {
        "load_generator": load.name,
        "connections": args.connections,
        "seconds_per_run": seconds,
        "warmup_seconds": warmup,
        "rotations": rotations,
        "scrape_interval_s": args.scrape_interval,
        "server": server_options(),
        "pinned": server_cpus is not None,
    }
    median: dict[str, float] = {}
    for variant in VARIANTS:
        median[variant] = statistics.median(r["rps"] for r in runs[variant])
        results[f"{variant}_rps"] = round(median[variant], 1)
        results[f"{variant}_rps_runs"] = [r["rps"] for r in runs[variant]]
        results[f"{variant}_p99_ms"] = round(
            statistics.median(r["p99_us"] for r in runs[variant]) / 1000, 3
        )
        results[f"{variant}_errors"] = sum(r["errors"] + r["non_2xx"] for r in runs[variant])
    for variant in ("inferwatch", "instrumentator"):
        ratio = median[variant] / median["plain"]
        # Each run against the plain run of its own rotation: steadier on a busy machine.
        paired = statistics.median(
            r["rps"] / p["rps"] for r, p in zip(runs[variant], runs["plain"], strict=True)
        )
        results[f"{variant}_vs_plain"] = round(ratio, 4)
        results[f"{variant}_vs_plain_paired_median"] = round(paired, 4)
        print(
            f"{variant:15s} vs plain: {ratio:.4f} (median of per-rotation ratios {paired:.4f})",
            file=sys.stderr,
        )
        reported, sent = checks[variant]
        verdict = "ok" if reported >= sent else "LOW"
        print(
            f"{variant:15s} last server's /metrics counts {reported:.0f} requests; "
            f"the load generator completed {sent} against it ({verdict})",
            file=sys.stderr,
        )
        results[f"{variant}_last_server_metrics_count"] = reported
        results[f"{variant}_last_server_load_count"] = sent
    results["goal_ratio_vs_plain"] = 0.97
    print(json.dumps(results))


if __name__ == "__main__":
    main()
