"""A real Prometheus scrapes an instrumented FastAPI app and agrees with what was sent.

The latencies are known by construction: the tracked model sleeps delays spread
evenly in log scale from 5 ms to 200 ms, and the route times the tracked call itself
with ``perf_counter``, within microseconds of the SDK's own measurement. Those
measured durations are the ground truth; sleep precision does not matter.

The exact quantile is the nearest-rank one: the ``ceil(q*n)``-th smallest value.
That is the observation whose bucket ``histogram_quantile`` picks (the first ``le``
with a cumulative count of at least ``q*n``) before it interpolates linearly inside
the bucket, so the two differ by less than one bucket width, 0.995%: the 1% check
holds however the delays fall into buckets.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from inferwatch import Monitor, Registry, Rejected

pytestmark = pytest.mark.integration

N_REQUESTS = 2000
CONCURRENCY = 32
MIN_DELAY = 0.005
MAX_DELAY = 0.200
QUANTILES = (0.5, 0.9, 0.99)
QUANTILE_TOLERANCE = 0.01
SEED = 20240611


def isolated_monitor(model: str) -> Monitor:
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    return Monitor(model, "1", registry=registry)


def log_spaced_delays(n: int, low: float, high: float, seed: int) -> list[float]:
    """``n`` delays evenly spaced in log scale over ``[low, high]``, in a seeded order."""
    delays = [low * (high / low) ** ((i + 0.5) / n) for i in range(n)]
    random.Random(seed).shuffle(delays)
    return delays


def nearest_rank_quantile(values: Sequence[float], q: float) -> float:
    """The ``ceil(q*n)``-th smallest value (``q*n`` computed as Prometheus does)."""
    ordered = sorted(values)
    rank = max(math.ceil(q * len(ordered)), 1)
    return ordered[rank - 1]


def target(base_url: str) -> str:
    return httpx.URL(base_url).netloc.decode("ascii")


async def get_all(
    base_url: str, paths: Sequence[str], *, keep_alive: bool = True
) -> list[httpx.Response]:
    """GET every path, ``CONCURRENCY`` at a time; the responses in the order of ``paths``.

    Each of the ``CONCURRENCY`` workers has its own one-connection client: httpx's
    connection pool spends milliseconds per request once it holds dozens of connections.
    """
    responses: list[httpx.Response | None] = [None] * len(paths)
    pending = iter(range(len(paths)))
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=int(keep_alive))

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as client:
            for i in pending:
                responses[i] = await client.get(paths[i])

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    done = [r for r in responses if r is not None]
    assert len(done) == len(paths)
    return done


def latency_app(monitor: Monitor, delays: Sequence[float]) -> FastAPI:
    app = FastAPI()
    monitor.instrument(app)

    @monitor.track
    async def model(delay: float) -> float:
        await asyncio.sleep(delay)
        return delay

    @app.get("/predict/{item}")
    async def predict(item: int) -> dict[str, float]:
        start = time.perf_counter()
        await model(delays[item])
        return {"measured": time.perf_counter() - start}

    return app


def outcome_of(item: int) -> str:
    if item % 5 == 0:
        return "error"
    if item % 7 == 0:
        return "rejected"
    return "success"


def failing_app(monitor: Monitor) -> FastAPI:
    app = FastAPI()
    monitor.instrument(app)

    @monitor.track
    async def model(item: int) -> int:
        outcome = outcome_of(item)
        if outcome == "error":
            raise ValueError(f"item {item} is not valid input")
        if outcome == "rejected":
            raise Rejected("queue full")
        return item

    @app.get("/classify/{item}")
    async def classify(item: int) -> Any:
        try:
            return {"label": await model(item)}
        except Rejected as exc:
            return JSONResponse({"detail": exc.reason}, status_code=503)

    return app


def test_prometheus_counts_and_quantiles_match_the_requests_sent(
    asgi_server: Callable[[Any], str], prometheus: Callable[..., Any]
) -> None:
    delays = log_spaced_delays(N_REQUESTS, MIN_DELAY, MAX_DELAY, SEED)
    base_url = asgi_server(latency_app(isolated_monitor("latency-test"), delays))
    prom = prometheus([target(base_url)])
    prom.wait_until_up()  # so that it scrapes while the requests run, too

    responses = asyncio.run(get_all(base_url, [f"/predict/{i}" for i in range(N_REQUESTS)]))
    assert [r.status_code for r in responses] == [200] * N_REQUESTS
    measured = [r.json()["measured"] for r in responses]

    model = 'model="latency-test"'
    prom.wait_for_value(
        f'sum(inferwatch_inferences_total{{{model},outcome="success"}})', N_REQUESTS
    )
    http = 'inferwatch_http_requests_total{method="GET",route="/predict/{item}",status="200"}'
    prom.wait_for_value(f"sum({http})", N_REQUESTS)

    routes = {s["metric"]["route"] for s in prom.query("inferwatch_http_requests_total")}
    assert routes == {"/predict/{item}"}
    assert prom.value(f"inferwatch_inference_duration_seconds_count{{{model}}}") == N_REQUESTS
    duration_sum = prom.value(f"inferwatch_inference_duration_seconds_sum{{{model}}}")
    assert duration_sum == pytest.approx(sum(measured), rel=1e-3)

    errors = {}
    for q in QUANTILES:
        expr = (
            f"histogram_quantile({q}, "
            f"sum by (le) (inferwatch_inference_duration_seconds_bucket{{{model}}}))"
        )
        estimate = prom.value(expr)
        exact = nearest_rank_quantile(measured, q)
        assert estimate is not None
        errors[q] = (estimate - exact) / exact
        print(
            f"p{q * 100:g}: exact {exact * 1e3:.4f} ms, Prometheus {estimate * 1e3:.4f} ms, "
            f"relative error {errors[q]:+.4%}"
        )
    assert all(abs(e) <= QUANTILE_TOLERANCE for e in errors.values()), errors


def test_prometheus_counts_errors_and_rejections_by_outcome_and_status(
    asgi_server: Callable[[Any], str], prometheus: Callable[..., Any]
) -> None:
    items = range(210)
    expected = {o: sum(outcome_of(i) == o for i in items) for o in ("success", "error", "rejected")}
    base_url = asgi_server(failing_app(isolated_monitor("error-test")))
    prom = prometheus([target(base_url)])
    prom.wait_until_up()

    # uvicorn closes the connection after the 500 of an unhandled exception; a client
    # reusing it could race with the close, so every request gets its own connection.
    paths = [f"/classify/{i}" for i in items]
    responses = asyncio.run(get_all(base_url, paths, keep_alive=False))
    statuses = [r.status_code for r in responses]
    assert statuses.count(500) == expected["error"]
    assert statuses.count(503) == expected["rejected"]

    total = 'inferwatch_inferences_total{model="error-test"'
    prom.wait_for_value(f'sum({total},outcome="success"}})', expected["success"])
    prom.wait_for_value(
        f'sum({total},outcome="error",error_type="ValueError"}})', expected["error"]
    )
    prom.wait_for_value(f'sum({total},outcome="rejected"}})', expected["rejected"])
    http = 'inferwatch_http_requests_total{method="GET",route="/classify/{item}"'
    for status, outcome in (("200", "success"), ("500", "error"), ("503", "rejected")):
        prom.wait_for_value(f'sum({http},status="{status}"}})', expected[outcome])

    # Rejected requests never reached the model: only successes and errors are timed.
    timed = expected["success"] + expected["error"]
    assert prom.value('inferwatch_inference_duration_seconds_count{model="error-test"}') == timed
    assert prom.value("sum(inferwatch_http_requests_total)") == len(items)
