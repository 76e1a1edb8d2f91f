"""``inferwatch loadtest`` beside ``wrk``: the fastest rate each drives, and the percentiles.

One fast endpoint runs for the whole benchmark: a minimal HTTP/1.1 keep-alive server on
bare asyncio (uvloop when installed) in its own process, answering every request with
the same small JSON body. Both load generators run against it, in turn, in their own
processes:

1. **Closed loop, as fast as it goes**: ``wrk -t2 -c64 -d{T}s --latency`` and
   ``inferwatch loadtest --concurrency 64 --workers W`` (W: one per CPU left to the load
   side), each after its own warm-up. Repeated ``--rotations`` times; the figures are
   medians. On a small machine the server itself may be the limit; then both show the
   same rate and the ratio says only that inferwatch keeps up with it.
2. **A fixed rate both sustain** (half the slower one's closed-loop rate): inferwatch
   in open loop (``--rate R --connections 16``), wrk paced by a Lua ``delay()`` so that
   its 64 connections together send about R requests/s (Debian's wrk has no open-loop
   mode, so its figures are service times, the same kind as inferwatch's uncorrected
   ones). p50/p90/p99 of both; inferwatch's corrected figures are given as well.

With two or more CPUs the server is pinned to one CPU and the load generators to the
others. The last line of output is one JSON object with every figure.

Usage: python bench/loadgen.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from procs import free_port, pin

BODY = b'{"label": 7, "score": 0.93}'
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)
CONNECTIONS = 64
OPEN_CONNECTIONS = 64


# -- the endpoint ----------------------------------------------------------------------


class Endpoint(asyncio.Protocol):
    """Answers each request (a GET without a body) with RESPONSE, keeping the connection."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        n = buf.count(b"\r\n\r\n")
        if n:
            buf = buf[buf.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * n)
        self.buf = buf


def serve(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Endpoint, "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


# -- the driver ------------------------------------------------------------------------


@contextlib.contextmanager
def endpoint(cpus: set[int] | None) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, os.path.abspath(__file__), "--serve", str(port)]
    proc = subprocess.Popen(cmd, preexec_fn=pin(cpus))
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"endpoint exited with {proc.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("endpoint not ready after 30 s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/predict"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(cmd: list[str], cpus: set[int] | None) -> str:
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, preexec_fn=pin(cpus), check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def inferwatch(url: str, args: list[str], cpus: set[int] | None) -> dict[str, Any]:
    """Run ``inferwatch loadtest URL ARGS --json``; its report as a dict."""
    cmd = [sys.executable, "-m", "inferwatch", "loadtest", url, *args, "--json"]
    report: dict[str, Any] = json.loads(run(cmd, cpus).strip().splitlines()[-1])
    return report


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, errors and the ``--latency`` percentiles (ms) from wrk's output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+),", output)
    if rps is None or total is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    out: dict[str, Any] = {"rps": float(rps.group(1)), "requests": int(total.group(1))}
    for pct, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M):
        out[f"p{pct}_ms"] = round(float(value) * _UNITS[unit], 3)
    errors = 0
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sock:
        errors += sum(int(g) for g in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        errors += int(non2xx.group(1))
    out["errors"] = errors
    return out


def wrk(
    url: str, seconds: float, connections: int, cpus: set[int] | None, script: str | None = None
) -> dict[str, Any]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", url]
    if script is not None:
        cmd[1:1] = ["-s", script]
    return parse_wrk(run(cmd, cpus))


def paced_script(rate: float, connections: int) -> str:
    """A wrk Lua script whose connections wait between requests so that together they
    send about ``rate`` requests/s (a paced closed loop: wrk has no open loop)."""
    delay_ms = connections * 1000.0 / rate
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f"function delay()\n  return {delay_ms:.3f}\nend\n")
    return f.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s runs, one rotation (~20 s)")
    parser.add_argument("--seconds", type=float, help="seconds measured per run")
    parser.add_argument("--rotations", type=int, help="closed-loop rotations (default 3)")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    seconds = args.seconds or (4.0 if args.quick else 10.0)
    warmup = 1.0
    rotations = args.rotations or (1 if args.quick else 3)

    server_cpus: set[int] | None = None
    load_cpus: set[int] | None = None
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            server_cpus, load_cpus = {cpus[0]}, set(cpus[1:])
    workers = max(1, len(load_cpus or ())) if load_cpus else 1
    print(
        f"endpoint: bare asyncio server, CPUs {server_cpus}; load CPUs {load_cpus}; "
        f"{seconds:g} s runs, {rotations} rotation(s); inferwatch --workers {workers}",
        file=sys.stderr,
    )
    timing = ["--duration", f"{seconds:g}", "--warmup", f"{warmup:g}"]
    ours_closed: list[dict[str, Any]] = []
    wrk_closed: list[dict[str, Any]] = []
    with endpoint(server_cpus) as url:
        for rotation in range(rotations):
            wrk(url, warmup, CONNECTIONS, load_cpus)
            w = wrk(url, seconds, CONNECTIONS, load_cpus)
            o = inferwatch(
                url,
                ["--concurrency", str(CONNECTIONS), "--workers", str(workers), *timing],
                load_cpus,
            )
            wrk_closed.append(w)
            ours_closed.append(o)
            print(
                f"closed loop {rotation + 1}/{rotations}: inferwatch {o['throughput']:.0f} req/s "
                f"(p50 {o['latency']['p50_ms']} ms, p99 {o['latency']['p99_ms']} ms, "
                f"errors {o['error_count']}); wrk {w['rps']:.0f} req/s (p50 {w['p50_ms']} ms, "
                f"p99 {w['p99_ms']} ms, errors {w['errors']})",
                file=sys.stderr,
            )
        ours_max = statistics.median(o["throughput"] for o in ours_closed)
        wrk_max = statistics.median(w["rps"] for w in wrk_closed)
        rate = max(100, round(min(ours_max, wrk_max) * 0.5, -2))

        script = paced_script(rate, OPEN_CONNECTIONS)
        try:
            wrk(url, warmup, OPEN_CONNECTIONS, load_cpus, script)
            w_open = wrk(url, seconds, OPEN_CONNECTIONS, load_cpus, script)
        finally:
            os.unlink(script)
        o_open = inferwatch(
            url,
            ["--rate", f"{rate:g}", "--connections", str(OPEN_CONNECTIONS), *timing],
            load_cpus,
        )
    lat, svc = o_open["latency"], o_open["service_time"]
    print(
        f"open loop at {rate:g} req/s: inferwatch achieved {o_open['throughput']:.0f} "
        f"(fell behind: {o_open['fell_behind']}), corrected p50/p90/p99 "
        f"{lat['p50_ms']}/{lat['p90_ms']}/{lat['p99_ms']} ms, service time "
        f"{svc['p50_ms']}/{svc['p90_ms']}/{svc['p99_ms']} ms; wrk (paced) achieved "
        f"{w_open['rps']:.0f}, p50/p90/p99 {w_open['p50_ms']}/{w_open['p90_ms']}/"
        f"{w_open['p99_ms']} ms",
        file=sys.stderr,
    )
    results: dict[str, Any] = {
        "endpoint": "bare asyncio HTTP/1.1 server, one process",
        "seconds_per_run": seconds,
        "warmup_seconds": warmup,
        "rotations": rotations,
        "pinned": server_cpus is not None,
        "connections": CONNECTIONS,
        "inferwatch_workers": workers,
        "inferwatch_max_rps": round(ours_max, 1),
        "wrk_max_rps": round(wrk_max, 1),
        "inferwatch_max_rps_runs": [round(o["throughput"], 1) for o in ours_closed],
        "wrk_max_rps_runs": [w["rps"] for w in wrk_closed],
        "inferwatch_vs_wrk_max_rps": round(ours_max / wrk_max, 4),
        "inferwatch_closed_p50_ms": ours_closed[-1]["latency"]["p50_ms"],
        "inferwatch_closed_p90_ms": ours_closed[-1]["latency"]["p90_ms"],
        "inferwatch_closed_p99_ms": ours_closed[-1]["latency"]["p99_ms"],
        "wrk_closed_p50_ms": wrk_closed[-1].get("p50_ms"),
        "wrk_closed_p90_ms": wrk_closed[-1].get("p90_ms"),
        "wrk_closed_p99_ms": wrk_closed[-1].get("p99_ms"),
        "inferwatch_closed_errors": sum(o["error_count"] for o in ours_closed),
        "wrk_closed_errors": sum(w["errors"] for w in wrk_closed),
        "open_rate": rate,
        "open_connections": OPEN_CONNECTIONS,
        "inferwatch_open_achieved_rps": o_open["throughput"],
        "inferwatch_open_fell_behind": o_open["fell_behind"],
        "inferwatch_open_p50_ms": lat["p50_ms"],
        "inferwatch_open_p90_ms": lat["p90_ms"],
        "inferwatch_open_p99_ms": lat["p99_ms"],
        "inferwatch_open_service_p50_ms": svc["p50_ms"],
        "inferwatch_open_service_p90_ms": svc["p90_ms"],
        "inferwatch_open_service_p99_ms": svc["p99_ms"],
        "inferwatch_open_errors": o_open["error_count"],
        "wrk_open_achieved_rps": w_open["rps"],
        "wrk_open_p50_ms": w_open.get("p50_ms"),
        "wrk_open_p90_ms": w_open.get("p90_ms"),
        "wrk_open_p99_ms": w_open.get("p99_ms"),
        "wrk_open_errors": w_open["errors"],
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
